"""What ``semprior enhance`` and ``semprior eval`` share for long batches: exit codes, Ctrl-C, the failure report.

Exit statuses (documented in each command's ``--help`` and in docs/reliability.md):

- ``0``: every input was processed.
- ``1``: nothing was processed: a usage or setup error (bad option, missing folder, bad
  checkpoint), or the first failure with ``--fail-fast``.
- ``3``: some inputs failed; the others were processed, and each failure is listed with its reason.
- ``130``: interrupted with Ctrl-C; what was done and what was not is printed.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

EXIT_OK = 0
EXIT_SOME_FAILED = 3
EXIT_INTERRUPTED = 130

EXIT_STATUS_HELP = (
    "exit status: 0 all inputs done; 1 usage/setup error, or the first failure with --fail-fast; "
    f"{EXIT_SOME_FAILED} some inputs failed (the rest were done; failures listed with reasons); "
    f"{EXIT_INTERRUPTED} interrupted with Ctrl-C (stops after the current file; a second Ctrl-C stops at once)."
)


class StopAfterCurrent:
    """Context manager: the first Ctrl-C (SIGINT) only sets `requested`; a second one raises.

    The batch loop checks ``requested`` between files, so the file being processed is finished
    and written (atomically) before the run stops. Outside the main thread (where signal handlers
    cannot be installed) it does nothing and Ctrl-C raises ``KeyboardInterrupt`` as usual.
    """

    def __init__(self, what: str = "file") -> None:
        self.what = what
        self.requested = False
        self._previous = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(f"\nsemprior: stopping after the current {self.what} (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> StopAfterCurrent:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
            self._installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def __call__(self) -> bool:
        return self.requested


def printable(text: str) -> str:
    r"""``text`` with line breaks, tabs and other control characters escaped (``\n``, ``\x1b``), so a
    file name cannot split a one-line report or move the cursor.

    Examples:
        >>> printable("night\nshot.jpg")
        'night\\nshot.jpg'
    """
    if text.isprintable():
        return text
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    return "".join(c if c.isprintable() else named.get(c, f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}")
                   for c in text)


def one_line_reason(exc: BaseException, path: Path | None = None) -> str:
    """The exception's first line (file names escaped by `printable`), without a repeated ``cannot read PATH:`` prefix."""
    text = str(exc).strip()
    if path is not None:
        text = text.replace(str(path), printable(str(path)))
    line = text.splitlines()[0] if text else type(exc).__name__
    if path is not None:
        shown = printable(str(path))
        for prefix in (f"cannot read {shown}: ", f"{shown}: "):
            if line.startswith(prefix):
                line = line[len(prefix) :]
    return printable(line)


def show_names(paths: Sequence[Path], limit: int = 10) -> str:
    names = [printable(str(p)) for p in paths[:limit]]
    more = f" (+{len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(names) + more
