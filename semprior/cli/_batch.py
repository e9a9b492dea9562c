"""What ``semprior enhance`` and ``semprior eval`` share for long batches: exit codes, Ctrl-C, the failure
report, and the background threads that read the next input and write the last output while the model runs.

Exit statuses (documented in each command's ``--help`` and in docs/reliability.md):

- ``0``: every input was processed.
- ``1``: nothing was processed: a usage or setup error (bad option, missing folder, bad
  checkpoint), or the first failure with ``--fail-fast``.
- ``3``: some inputs failed; the others were processed, and each failure is listed with its reason.
- ``130``: interrupted with Ctrl-C; what was done and what was not is printed.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

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
        self._previous: Callable[[int, FrameType | None], Any] | int | None = None
        self._installed = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\nsemprior: stopping after the current {self.what} (Ctrl-C again to stop at once)",
            file=sys.stderr,
            flush=True,
        )

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
    return "".join(
        c if c.isprintable() else named.get(c, f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}") for c in text
    )


def one_line_reason(exc: BaseException, path: Path | None = None) -> str:
    """The exception's first line (file names escaped by `printable`), without a repeated ``cannot read PATH:``
    prefix."""
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


class Prefetched(Generic[T]):
    """``load(item)`` for the items of a batch, run in a background thread up to ``ahead`` items early.

    A context manager; iterating yields ``(item, value, error)`` in the items' order: ``error`` is
    the exception ``load`` raised for that item (``value`` is then ``None``), so one bad file does
    not stop the batch. ``KeyboardInterrupt`` and other non-``Exception`` errors are re-raised.
    Leaving the ``with`` block cancels the loads not started and waits for the running one.

    Examples:
        >>> with Prefetched([1, 2, 3], lambda i: 10 // (2 - i)) as items:
        ...     [(i, v, type(e).__name__ if e else None) for i, v, e in items]
        [(1, 10, None), (2, None, 'ZeroDivisionError'), (3, -10, None)]
    """

    def __init__(self, items: Iterable[T], load: Callable[[T], Any], ahead: int = 1) -> None:
        self._items, self._load, self._ahead = iter(items), load, max(1, ahead)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="semprior-read")
        self._pending: deque[tuple[T, Future[tuple[Any, Exception | None]]]] = deque()

    def _run(self, item: T) -> tuple[Any, Exception | None]:
        try:
            return self._load(item), None
        except Exception as exc:  # reported per item by the caller
            return None, exc

    def _fill(self) -> None:
        while len(self._pending) <= self._ahead:
            try:
                item = next(self._items)
            except StopIteration:
                return
            self._pending.append((item, self._pool.submit(self._run, item)))

    def __iter__(self) -> Iterator[tuple[T, Any, Exception | None]]:
        self._fill()
        while self._pending:
            item, fut = self._pending.popleft()
            value, exc = fut.result()
            self._fill()  # the next load starts before the caller works on this item
            yield item, value, exc

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        for _, fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=True)


class Cancelled(Exception):
    """Raised inside a `Workers` thread at its next module call after `Workers.cancel`."""


class Workers:
    """``jobs`` threads that run submitted calls, each thread with ``threads`` torch intra-op threads; with
    ``jobs=1`` the calls run in the caller's thread, with its threads, when they are submitted.

    Two images at once with one thread each keep two cores busier than one image with two threads
    (small images split poorly across threads; ``benchmarks/results/folder_throughput.md``).
    `submit` returns a ``Future``. A context manager: leaving it lets the threads finish the calls
    already queued and waits for them. After `cancel` (a second Ctrl-C) a call running in a worker
    stops at its next ``nn.Module`` call (it raises `Cancelled`), and leaving waits at most
    `CANCEL_WAIT_S` for it: the threads are daemons, so a call that does not stop (no module calls)
    ends with the process; its output is never written (writes are atomic).

    Examples:
        >>> with Workers(2, threads=1) as w:
        ...     [f.result() for f in [w.submit(pow, 2, 10), w.submit(pow, 3, 2)]]
        [1024, 9]
    """

    #: seconds `__exit__` waits for the running calls after `cancel`
    CANCEL_WAIT_S = 5.0

    def __init__(self, jobs: int, threads: int) -> None:
        self._cancelled = threading.Event()
        self._queue: queue.SimpleQueue[tuple[Future, Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._loop, args=(threads,), name=f"semprior-model-{i}", daemon=True)
            for i in range(jobs if jobs > 1 else 0)
        ]
        self._ours = set(self._threads)
        self._hook: Any = None  # registered by `cancel` only: a global hook costs every module call
        for t in self._threads:
            t.start()

    def _check(self, module: object, args: object) -> None:
        if self._cancelled.is_set() and threading.current_thread() in self._ours:
            raise Cancelled("cancelled (Ctrl-C)")

    def _loop(self, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)  # a per-thread setting: the main thread keeps its own
        while (job := self._queue.get()) is not None:
            fut, fn, args = job
            if self._cancelled.is_set():
                fut.cancel()  # dropped: its future says so rather than staying pending
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
                fut.set_exception(exc)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        fut: Future[T] = Future()
        if not self._threads:  # one job: run it here (Ctrl-C interrupts it as any code of the caller's)
            try:
                fut.set_result(fn(*args))
            except Exception as exc:  # handed to the caller through the future, as from a worker
                fut.set_exception(exc)
            return fut
        self._queue.put((fut, fn, args))
        return fut

    def cancel(self) -> None:
        """Stop: calls not started are dropped, running ones raise `Cancelled` at their next module call."""
        from torch.nn.modules.module import register_module_forward_pre_hook

        self._cancelled.set()
        if self._threads and self._hook is None:
            self._hook = register_module_forward_pre_hook(self._check)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self._threads:
            self._queue.put(None)
        wait = self.CANCEL_WAIT_S if self._cancelled.is_set() else None
        for t in self._threads:
            t.join(wait)
        if self._hook is not None:
            self._hook.remove()


class OrderedWriter:
    """Runs ``write(*args)`` calls in one background thread, in submission order, at most ``depth`` waiting.

    `submit` blocks while ``depth`` writes are queued (bounded memory); `finished` returns the
    writes completed so far as ``(key, error)`` in order (``error`` is ``None`` on success), `drain`
    waits for all of them. A context manager: leaving it drains the queue, so every output whose
    write was submitted is complete (written atomically by ``write``) before the batch reports.

    Examples:
        >>> out = []
        >>> with OrderedWriter(out.append) as w:
        ...     done = w.submit("a", 1) + w.submit("b", 2) + w.drain()
        >>> out, done
        ([1, 2], [('a', None), ('b', None)])
    """

    def __init__(self, write: Callable[..., Any], depth: int = 2) -> None:
        self._write, self._depth = write, max(1, depth)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="semprior-write")
        self._pending: deque[tuple[Any, Future]] = deque()

    def submit(self, key: Any, *args: Any) -> list[tuple[Any, BaseException | None]]:
        """Queue one write; returns the writes that completed meanwhile (as `finished`)."""
        done = []
        while len(self._pending) >= self._depth:
            done.append(self._settle())
        self._pending.append((key, self._pool.submit(self._write, *args)))
        return done + self.finished()

    def _settle(self) -> tuple[Any, BaseException | None]:
        key, fut = self._pending.popleft()
        return key, fut.exception()

    def finished(self) -> list[tuple[Any, BaseException | None]]:
        done = []
        while self._pending and self._pending[0][1].done():
            done.append(self._settle())
        return done

    def drain(self) -> list[tuple[Any, BaseException | None]]:
        return [self._settle() for _ in range(len(self._pending))]

    def __enter__(self) -> OrderedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)
