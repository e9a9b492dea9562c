"""YAML <-> frozen dataclasses, 1:1 and strict: an unknown key is an error naming the valid ones.

A low-layer module (no imports from ``semprior.engine`` or ``semprior.models``): configs of every
layer are built with [`from_dict`][semprior._config.from_dict] (``semprior.engine.run_config`` re-exports it with
`load_yaml`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ConfigError", "from_dict", "load_yaml"]

T = TypeVar("T")

#: most values a YAML file may expand to once its aliases are followed (a 1 KB alias bomb reaches 1e9)
MAX_YAML_VALUES = 1_000_000


class ConfigError(ValueError):
    """A config value of the wrong shape or type: one line naming the key (and, from the CLI, the file)."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from a mapping; nested dataclass fields accept nested mappings.

    Raises ``ValueError`` for unknown keys (listing the valid ones) and wraps type/validation
    errors with the key path.

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
    if data is not None and not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__} {_short(data)}")
    if data is not None and not all(isinstance(k, str) for k in data):
        raise ConfigError(
            f"{where} has non-string keys {[k for k in data if not isinstance(k, str)][:3]}; keys are field names"
        )
    data = dict(data or {})
    names = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown key(s) {unknown} in {where}; valid keys: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        tp = hints.get(key)
        candidates = (
            typing.get_args(tp) if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union else (tp,)
        )
        sub = next((c for c in candidates if _is_dataclass_type(c)), None)
        if sub is not None and isinstance(value, dict):
            value = from_dict(sub, value, f"{where}.{key}")
        elif sub is not None and not isinstance(value, sub) and not (value is None and type(None) in candidates):
            raise ConfigError(
                f"{where}.{key} must be a mapping of {sub.__name__} fields (e.g. {key}: {{...}}), "
                f"got {_short(value)} ({type(value).__name__})"
            )
        else:
            value = _coerce(value, tp, f"{where}.{key}")
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {where}: {exc}") from exc


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _union_members(tp: Any) -> tuple[Any, ...] | None:
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return typing.get_args(tp)
    return None


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against annotation ``tp`` (and converted where YAML is loose); a ``ConfigError`` naming
    ``where`` otherwise.

    YAML 1.1 reads ``1e-4`` (no dot) as a string: strings become the field's number type. Lists
    become tuples. ``bool`` is not an ``int`` (``steps: true`` is refused), numbers must be finite,
    and a field whose annotation is unknown here is passed through for the class to check.
    """
    import math

    members = _union_members(tp)
    if members is not None:
        if value is None and type(None) in members:
            return None
        options = [m for m in members if m is not type(None)]
        errors = []
        for m in options:
            try:
                return _coerce(value, m, where)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{where} got {_short(value)} ({type(value).__name__}), which fits none of {tp}")
    if tp is Any or tp is None or isinstance(tp, TypeVar):
        return _tuples(value) if isinstance(value, list) else value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {_short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{where} must be an integer, got {value!r} (a boolean)")
        if isinstance(value, int):
            return value
        if isinstance(value, (float, str)):
            try:
                as_float = float(value)
            except ValueError:
                raise ConfigError(f"{where} must be an integer, got {_short(value)}") from None
            if not math.isfinite(as_float) or not as_float.is_integer():
                raise ConfigError(f"{where} must be an integer, got {_short(value)}")
            return int(as_float)
        raise ConfigError(f"{where} must be an integer, got {_short(value)} ({type(value).__name__})")
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ConfigError(f"{where} must be a number, got {_short(value)} ({type(value).__name__})")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{where} must be a number, got {_short(value)}; write e.g. 0.0003 or 3.0e-4") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where} must be a finite number, got {_short(value)}")
        return number
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {_short(value)} ({type(value).__name__}); quote it")
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where} must be one of {list(args)}, got {_short(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            example = "[1, 1, 1]" if args and args[0] is int else "[...]"
            raise ConfigError(f"{where} must be a list (e.g. {example}), got {_short(value)} ({type(value).__name__})")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if args and args != ((),):
            if len(value) != len(args):
                raise ConfigError(f"{where} must be a list of {len(args)} values, got {len(value)}: {_short(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        return _tuples(list(value))
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {_short(value)} ({type(value).__name__})")
        if len(args) == 2:
            return {_coerce(k, args[0], f"{where} key"): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
        return dict(value)
    if _is_dataclass_type(tp):
        if isinstance(value, (tp, dict)):
            return value
        raise ConfigError(
            f"{where} must be a mapping of {tp.__name__} fields, got {_short(value)} ({type(value).__name__})"
        )
    return _tuples(value) if isinstance(value, list) else value


def _tuples(v: Any) -> Any:
    return tuple(_tuples(x) for x in v) if isinstance(v, list) else v


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (``yaml.safe_load``'s loader), bounded.

    Aliases are followed before anything is built: a file whose values, with every alias
    expanded, exceed [`MAX_YAML_VALUES`][semprior._config.MAX_YAML_VALUES] (an "alias bomb": a
    1 KB file of nested aliases reaches 1e9) or that refers to itself is refused in
    milliseconds with one line naming the file. Errors are ``ValueError``s naming the file.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    try:
        loader = yaml.SafeLoader(path.read_text())
        try:
            node = loader.get_single_node()
            if node is not None:
                _check_expansion(node, path)
            data = (loader.construct_document(node) if node is not None else None) or {}
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(
            f"{path} is not valid YAML{where}: {problem}; fix the syntax (e.g. unclosed brackets or quotes)"
        ) from exc
    except RecursionError:
        raise ValueError(f"{path} nests YAML lists or mappings too deeply; a config needs a few levels") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not a UTF-8 text file ({exc.reason}); give a YAML config file") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a YAML mapping at the top level, got {type(data).__name__}")
    return data


def _check_expansion(root: Any, path: Path) -> None:
    """Refuse a YAML node graph whose alias-expanded size exceeds `MAX_YAML_VALUES`, or that refers to itself."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ValueError(f"{path} has a YAML alias that refers to itself; write the values out")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        active.discard(key)
        if total > MAX_YAML_VALUES:
            raise ValueError(
                f"{path} expands to more than {MAX_YAML_VALUES:,} values once its YAML aliases (*name) are "
                "followed; a config needs a few hundred: write the values out instead of nesting aliases"
            )
        sizes[key] = total
        return total

    size(root)
