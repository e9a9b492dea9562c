"""YAML <-> frozen dataclasses, 1:1 and strict: an unknown key is an error naming the valid ones.

A low-layer module (no imports from ``semprior.engine`` or ``semprior.models``): configs of every
layer are built with [`from_dict`][semprior._config.from_dict]; ``semprior.engine.config`` re-exports both names.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["from_dict", "load_yaml", "rename_fields"]

T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _caller_outside_semprior() -> int:
    """The ``stacklevel`` (for a ``warnings.warn`` in the caller) of the first frame outside semprior.

    Python shows a ``DeprecationWarning`` by default only when it is attributed to ``__main__``:
    pointing at the user's script (or at ``python -m semprior`` / the ``semprior`` command, whose
    module is ``__main__``) makes it visible there, and names the line to change.
    """
    frame, level = sys._getframe(1), 1  # level 1 = the caller of this function, the one that warns
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] == "semprior":
        frame, level = frame.f_back, level + 1
    return level


def rename_fields(cls: type, data: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
    """``data`` with the renamed fields of ``cls`` under their current names (a new dict).

    A config class lists the names it used before in ``RENAMED_FIELDS: ClassVar[dict[str, str]]``
    (old name -> field), so configs, checkpoints and YAML files written with an old name still
    load. Each old key found gives a ``DeprecationWarning`` naming the new key; an old and a new
    key with different values are a ``ValueError`` (equal values are accepted, with the warning).

    Examples:
        >>> import warnings
        >>> from dataclasses import dataclass
        >>> import typing
        >>> @dataclass(frozen=True)
        ... class Net:
        ...     RENAMED_FIELDS: typing.ClassVar[dict[str, str]] = {"channels": "width"}
        ...     width: int = 32
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     rename_fields(Net, {"channels": 8})
        {'width': 8}
        >>> print(caught[0].message)
        Net: 'channels' was renamed to 'width'; write 'width' instead (configs and checkpoints with 'channels' still load)
    """
    where = where or cls.__name__
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    out = dict(data or {})
    for old, new in (getattr(cls, "RENAMED_FIELDS", None) or {}).items():
        if old not in out:
            continue
        value = out.pop(old)
        if new in out and _tuples(out[new]) != _tuples(value):
            raise ValueError(
                f"{where} has both {old!r}: {value!r} (the old name) and {new!r}: {out[new]!r}; they differ. "
                f"{old!r} was renamed to {new!r}: keep only {new!r}"
            )
        warnings.warn(f"{where}: {old!r} was renamed to {new!r}; write {new!r} instead (configs and checkpoints "
                      f"with {old!r} still load)", DeprecationWarning, stacklevel=_caller_outside_semprior())
        out[new] = value
    return out


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; nested dataclass fields accept nested mappings.

    Raises ``ValueError`` for unknown keys (listing the valid ones) and wraps type/validation
    errors with the key path. Old field names listed in ``cls.RENAMED_FIELDS`` are mapped to the
    current ones first (`rename_fields`: a ``DeprecationWarning``; an error when the
    old and the new name disagree).

    Examples:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Opt:
        ...     lr: float = 1e-3
        ...     betas: tuple[float, float] = (0.9, 0.999)
        >>> from_dict(Opt, {"lr": "3e-4", "betas": [0.9, 0.99]})
        Opt(lr=0.0003, betas=(0.9, 0.99))
    """
    where = where or cls.__name__
    data = rename_fields(cls, data, where)
    names = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        tp = hints.get(key)
        candidates = typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
        sub = next((c for c in candidates if _is_dataclass_type(c)), None)
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value, f"{where}.{key}")
        elif isinstance(value, list):
            value = _tuples(value)
        else:
            value = _coerce_scalar(value, tp, f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid {where}: {exc}") from exc


def _coerce_scalar(value: Any, tp: Any, where: str) -> Any:
    """YAML 1.1 reads ``1e-4`` (no dot) as a string: turn strings into the field's number type.

    Only plain ``int`` / ``float`` / ``bool`` fields (optionally ``| None``) are coerced; a value
    that cannot be converted raises a ``ValueError`` naming the key, the value and the type.
    """
    candidates = set(typing.get_args(tp)) if (isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union) else {tp}
    numeric = candidates - {type(None)}
    if value is None or len(numeric) != 1:
        return value
    (target,) = numeric
    if target is float and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where} must be a number, got {value!r}; write e.g. 0.0003 or 3.0e-4") from None
    if target is int and isinstance(value, (float, str)) and not isinstance(value, bool):
        try:
            as_float = float(value)
        except ValueError:
            raise ValueError(f"{where} must be an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise ValueError(f"{where} must be an integer, got {value!r}")
        return int(as_float)
    if target is bool and not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (``yaml.safe_load``)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"{path} is not valid YAML{where}: {problem}; fix the syntax (e.g. unclosed brackets or quotes)") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text file ({exc.reason}); give a YAML config file") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping at the top level, got {type(data).__name__}")
    return data
