"""A run folder is never overwritten by accident, and a resumed run is the run it says it is.

[`check_run_folder`][semprior.engine.run_folder.check_run_folder] refuses to start a fresh run in a
folder that already holds one (``last.pt``, ``best.pt`` or ``log.jsonl``) unless the caller resumes
it or says ``overwrite``; [`changed_fields`][semprior.engine.run_folder.changed_fields] lists what a
resumed run changes compared with the configuration its checkpoint recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["RUN_FILES", "RunFolderError", "changed_fields", "check_run_folder", "clear_run_folder", "INCIDENTAL_FIELDS"]

#: the files that make a folder a run folder
RUN_FILES = ("last.pt", "best.pt", "log.jsonl")

#: train-config fields that change neither the weights nor the data order (free to change on resume)
INCIDENTAL_FIELDS = frozenset({"progress", "num_workers", "ckpt_every", "log_every", "log_file", "loss_curve"})


class RunFolderError(FileExistsError):
    """A fresh run was pointed at a folder that holds a run, or a resume changes the run's config."""


def existing_run_files(out_dir: str | Path | None) -> list[str]:
    """The [`RUN_FILES`][semprior.engine.run_folder.RUN_FILES] present in ``out_dir``."""
    if out_dir is None:
        return []
    out = Path(out_dir)
    return [f for f in RUN_FILES if (out / f).exists()]


def check_run_folder(out_dir: str | Path | None, *, resume: bool = False, overwrite: bool = False) -> None:
    """Refuse a fresh run in a folder holding a run, unless ``resume`` or ``overwrite``.

    Raises:
        RunFolderError: one line naming the folder, the files found and both ways out
            (``--resume DIR/last.pt`` or ``--overwrite``, or another ``--out``).
    """
    found = existing_run_files(out_dir)
    if not found or resume or overwrite:
        return
    last = Path(out_dir) / "last.pt"  # type: ignore[arg-type]
    again = f"--resume {last}" if last.exists() else "--resume CHECKPOINT"
    raise RunFolderError(
        f"{out_dir} already holds a run ({', '.join(found)}); continue it with {again}, replace it with "
        f"--overwrite (Python: overwrite=True), or choose another --out"
    )


def clear_run_folder(out_dir: str | Path) -> None:
    """Remove the files of the run in ``out_dir`` (an explicit ``overwrite``), so no old file outlives it."""
    out = Path(out_dir)
    for name in (*RUN_FILES, "log.superseded.jsonl", "loss_curve.png"):
        (out / name).unlink(missing_ok=True)


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return tuple(_plain(x) for x in v)
    return v


def changed_fields(saved: Mapping[str, Any], now: Mapping[str, Any], ignore: frozenset[str] = frozenset()) -> list[str]:
    """``["train.lr: 0.001 -> 0.0003", ...]``: the fields present in both (flattened) whose values differ.

    Keys present on one side only (a field added in a later version) are not compared; keys whose
    last part is in ``ignore`` are skipped.

    Examples:
        >>> changed_fields({"train": {"lr": 1e-3, "progress": True}}, {"train": {"lr": 3e-4, "progress": False}},
        ...                ignore=frozenset({"progress"}))
        ['train.lr: 0.001 -> 0.0003']
    """
    a, b = _flat(saved), _flat(now)
    return [f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if k in b and k.rsplit(".", 1)[-1] not in ignore and a[k] != b[k]]
