"""Atomic file output: the one helper every writer in semprior uses (images, tables, grids, curves, checkpoints).

`atomic_write` writes into a temporary file **in the destination folder**, flushes and
``fsync``-s it, then ``os.replace``-s it onto the final name (and ``fsync``-s the folder so the
rename survives a power cut). A process killed at any moment therefore leaves either the old
file, or the new complete one, under the final name, never a torn one. The temporary file of a
killed process stays behind under a recognisable hidden name::

    .<final name>.semprior-<host>-<pid>-<random>.tmp

`remove_stale_temps` deletes such files in a folder when the process that wrote them is no
longer running on this host (and only files with this exact pattern, so nothing else is ever
touched). Writers call it at the start of a run (``semprior enhance``/``eval``, every checkpoint
save).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "remove_stale_temps", "is_temp_name", "temp_name"]

_TAG = "semprior"
#: ``.<name>.semprior-<host>-<pid>-<token>.tmp``; host is sanitised to ``[A-Za-z0-9_.]``
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.semprior-(?P<host>[A-Za-z0-9_.]+)-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})\.tmp$")
# temp names written by save_checkpoint before this module existed (tempfile.mkstemp, 8 random chars)
_LEGACY_CKPT_RE = re.compile(r"^\.(?P<name>.+\.(?:pt|pth|ckpt|safetensors))\.[a-z0-9_]{8}\.tmp$")
_LEGACY_AGE_S = 600  # an old-style temp untouched this long has no live writer
_NAME_KEEP = 96  # characters of the final name kept in the temp name (file names are limited to 255 bytes)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40] or "host"


def temp_name(final_name: str, pid: int | None = None) -> str:
    """The hidden temporary name `atomic_write` uses for ``final_name`` (this host, ``pid``).

    Examples:
        >>> temp_name("a.png").startswith(".a.png.semprior-")
        True
    """
    pid = os.getpid() if pid is None else int(pid)
    return f".{final_name[:_NAME_KEEP]}.{_TAG}-{_host()}-{pid}-{secrets.token_hex(4)}.tmp"


def is_temp_name(name: str) -> bool:
    """True for the hidden temporary names `atomic_write` uses (and old checkpoint temp names).

    Examples:
        >>> is_temp_name(".a.png.semprior-box-12-0a1b2c3d.tmp"), is_temp_name("a.png")
        (True, False)
    """
    return bool(_TEMP_RE.match(name) or _LEGACY_CKPT_RE.match(name))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems cannot fsync a directory
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on a clean exit, fsync it and rename it onto ``path``.

    If the ``with`` block raises (or the process is interrupted), the temporary file is removed
    and ``path`` is left as it was. Parent folders are created.

    Args:
        path: final file name.
        mode: ``"wb"`` (default) or ``"w"`` (text, ``encoding`` defaults to UTF-8).

    Examples:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "t.txt")
        >>> with atomic_write(p, "w") as f:
        ...     _ = f.write("done")
        >>> open(p).read()
        'done'
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(temp_name(path.name))
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    f = open(tmp, "xb" if mode == "wb" else "x", encoding=encoding)  # noqa: SIM115 - closed below
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see `atomic_write`); returns the path."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (see `atomic_write`); returns the path."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True  # cannot tell: keep the file
    return True


def remove_stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temporary files left in ``folder`` by killed writers; returns what was removed.

    Only hidden files whose names match `atomic_write`'s pattern are candidates, and only
    when the process that wrote them (host and pid are in the name) is no longer running on this
    host, so a concurrent writer's file is never touched. Temp files of old checkpoint saves
    (``.<name>.pt.<8 chars>.tmp``, no pid in the name) are removed once untouched for 10 minutes. ``name`` restricts the
    sweep to one final file name. A missing folder is not an error.

    Examples:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> dead = temp_name("a.png", pid=2**31 - 1)  # no process has this id
        >>> open(os.path.join(d, dead), "w").close()
        >>> [p.name for p in remove_stale_temps(d)] == [dead]
        True
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    host = _host()
    for e in entries:
        if not e.name.startswith(".") or not e.name.endswith(".tmp"):
            continue
        m = _TEMP_RE.match(e.name)
        if m is not None:
            if name is not None and m["name"] != name[:_NAME_KEEP]:
                continue
            if m["host"] != host or _pid_alive(int(m["pid"])):
                continue
        else:
            legacy = _LEGACY_CKPT_RE.match(e.name)
            if legacy is None or (name is not None and legacy["name"] != name):
                continue
            with contextlib.suppress(OSError):  # its writer is unknown: only when untouched for a while
                if time.time() - e.stat(follow_symlinks=False).st_mtime < _LEGACY_AGE_S:
                    continue
        try:
            if e.is_file(follow_symlinks=False):
                os.unlink(e.path)
                removed.append(Path(e.path))
        except FileNotFoundError:  # removed by someone else meanwhile
            pass
    return removed
