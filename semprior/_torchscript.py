"""Read the tensors of a TorchScript archive without running any of its code.

``torch.jit.load`` compiles and runs the archive's code (a module's ``__setstate__`` runs while it
loads), so a crafted file can do anything the process can.
[`read_torchscript_state`][semprior._torchscript.read_torchscript_state] never calls it: it unpickles the archive's
``data.pkl`` with a restricted unpickler that resolves only torch's tensor-rebuild function, ``OrderedDict``, the
storage types, the identity list builders of ``torch.jit._pickle`` and inert placeholders for
the archive's own ``__torch__.*`` classes (no method of theirs exists, so none can run), and reads
which attributes are parameters and buffers from the class headers in ``code/`` as text.
"""

from __future__ import annotations

import ast
import contextlib
import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["TorchScriptReadError", "is_torchscript", "read_torchscript_state"]


class TorchScriptReadError(ValueError):
    """The archive cannot be read as plain tensors (it names the file and the reason)."""


def is_torchscript(path: str | Path) -> bool:
    """True for a TorchScript zip archive (it has a ``code/`` folder), e.g. OpenAI's ``ViT-B-16.pt``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())


class _ScriptObject:
    """An inert stand-in for one ``__torch__.*`` object: it only keeps the state the pickle gives it."""

    qualname = ""

    def __setstate__(self, state: Any) -> None:
        self.state = state


#: storage class name in a pickle -> dtype of its elements
_STORAGES = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
    "ComplexFloatStorage": torch.complex64,
    "ComplexDoubleStorage": torch.complex128,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


#: ``torch.jit._pickle`` helpers that return their argument (typed lists, type tags)
_JIT_LIST_BUILDERS = {"build_intlist", "build_tensorlist", "build_doublelist", "build_boollist", "restore_type_tag"}


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, root: str, path: Path) -> None:
        super().__init__(io.BytesIO(data))
        self.zf, self.root, self.path = zf, root, path
        self.classes: dict[str, type] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "__torch__" or module.startswith("__torch__."):
            qual = f"{module}.{name}"
            if qual not in self.classes:
                self.classes[qual] = type(name, (_ScriptObject,), {"qualname": qual})
            return self.classes[qual]
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return torch._utils._rebuild_tensor_v2  # noqa: SLF001 - what torch.load(weights_only=True) allows too
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        if module == "torch.jit._pickle" and name in _JIT_LIST_BUILDERS:  # identity functions on plain values
            import torch.jit._pickle as jp

            return getattr(jp, name)
        if module == "torch" and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        raise TorchScriptReadError(
            f"refusing {self.path}: its data.pkl references {module}.{name}, which is not a tensor, a storage or a "
            "TorchScript module; semprior reads only plain weights from TorchScript archives"
        )

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise TorchScriptReadError(f"refusing {self.path}: unexpected persistent id {str(pid)[:80]} in data.pkl")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise TorchScriptReadError(f"refusing {self.path}: storage {key!r} has no known element type")
        dtype = storage_type.dtype
        try:
            raw = self.zf.read(f"{self.root}/data/{key}")
        except KeyError:
            raise TorchScriptReadError(f"{self.path} is truncated or damaged: storage {key!r} is missing") from None
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(raw) < int(numel) * itemsize:
            raise TorchScriptReadError(f"{self.path} is truncated or damaged: storage {key!r} is short")
        untyped = torch.frombuffer(bytearray(raw), dtype=torch.uint8).untyped_storage()
        return torch.storage.TypedStorage(wrap_storage=untyped, dtype=dtype, _internal=True)


def _class_members(zf: zipfile.ZipFile, root: str) -> dict[str, set[str]]:
    """``{qualified class name: parameter and buffer names}`` from the ``class X(Module):`` headers in ``code/``."""
    out: dict[str, set[str]] = {}
    prefix = f"{root}/code/"
    for name in zf.namelist():
        if not (name.startswith(prefix) and name.endswith(".py")):
            continue
        module = name[len(prefix) : -3].replace("/", ".")
        cls = None
        for line in zf.read(name).decode("utf-8", "replace").splitlines():
            m = re.match(r"class ([\w.]+)\(Module\):", line)
            if m:
                cls = f"{module}.{m.group(1)}"
                out[cls] = set()
                continue
            m = re.match(r"\s+__(parameters|buffers)__ = (\[.*\])\s*$", line)
            if cls is not None and m:
                with contextlib.suppress(ValueError, SyntaxError):
                    out[cls] |= {str(v) for v in ast.literal_eval(m.group(2))}
    return out


def read_torchscript_state(path: str | Path) -> dict[str, Tensor]:
    """The state dict (parameters and buffers, dotted names) of a TorchScript module archive; no code runs.

    Equals ``torch.jit.load(path).state_dict()`` for plain modules. An object whose state is
    restored by its own ``__setstate__`` (TorchScript code) is refused, since reading it faithfully
    would mean running that code. A class whose header is not found keeps every tensor attribute.

    Raises:
        TorchScriptReadError: not a TorchScript archive, a reference to anything beyond tensors and
            modules, custom state, or a damaged file (one line naming the file).
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise TorchScriptReadError(f"{path} is not a TorchScript archive ({exc})") from exc
    with zf:
        pkls = [n for n in zf.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pkls) != 1:
            raise TorchScriptReadError(f"{path} is not a TorchScript archive (no top-level data.pkl)")
        root = pkls[0].split("/", 1)[0]
        members = _class_members(zf, root)
        try:
            obj = _Unpickler(zf.read(pkls[0]), zf, root, path).load()
        except TorchScriptReadError:
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed pickle: one line naming the file
            raise TorchScriptReadError(f"{path}: data.pkl cannot be read ({type(exc).__name__}: {exc})") from exc
    out: dict[str, Tensor] = {}

    def walk(o: Any, prefix: str) -> None:
        if not isinstance(o, _ScriptObject):
            return
        state = getattr(o, "state", None)
        if not isinstance(state, dict):
            raise TorchScriptReadError(
                f"refusing {path}: {o.qualname} restores its state with its own code (__setstate__); semprior reads "
                "only plain module weights from TorchScript archives"
            )
        keep = members.get(o.qualname)
        for k, v in state.items():
            if isinstance(v, Tensor) and (keep is None or k in keep):
                out[prefix + k] = v
            elif isinstance(v, _ScriptObject):
                walk(v, f"{prefix}{k}.")

    if not isinstance(obj, _ScriptObject):
        raise TorchScriptReadError(f"{path} holds no TorchScript module (data.pkl is a {type(obj).__name__})")
    walk(obj, "")
    return out
