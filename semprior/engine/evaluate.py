"""Evaluate enhancers on paired images: PSNR/SSIM with and without GT-mean, a markdown table, a grid.

Every number is computed under an explicit [`MetricProtocol`][semprior.metrics.protocol.MetricProtocol], and the
protocol is printed under the table. Each method is scored twice: as is, and with GT-mean
correction (the prediction rescaled so its mean grey level matches the reference's), which
removes the overall-brightness ambiguity of low-light enhancement.

Methods are any callables ``(1, 3, H, W) -> (1, 3, H, W)``; ``nn.Module`` methods run through
[`enhance_image`][semprior.engine.tiling.enhance_image], so they get padding to their ``required_multiple``
and optional tiling.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import torch
from torch import Tensor, nn

from semprior._checks import check_image
from semprior.engine.tiling import enhance_image
from semprior.metrics import MetricProtocol, ReferenceScorer

__all__ = [
    "EvalResult",
    "evaluate_methods",
    "paired_items",
]

Enhancer = Callable[[Tensor], Tensor]


class IndexedPairs(Protocol):
    """A paired set read by index, like [`PairedFolder`][semprior.data.datasets.PairedFolder] or a list of items."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> dict: ...


#: what `evaluate_methods` scores: items ``{"low", "high", "name"}`` by index, or any iterable of them
Pairs = IndexedPairs | Iterable[dict]
_KEYS = ("psnr", "ssim", "psnr_gtmean", "ssim_gtmean")


@dataclass
class EvalResult:
    """Per-image scores of several methods on one set of pairs.

    Attributes:
        protocol: the protocol of the plain columns; the GT-mean columns use the same protocol
            with ``gt_mean=True``.
        names: image names, in evaluation order.
        scores: ``method -> {"psnr", "ssim", "psnr_gtmean", "ssim_gtmean"} -> per-image list``.
        seconds: ``method -> total enhancement seconds`` (metrics excluded).
        samples: ``(name, [low, out_1, ..., out_M, high])`` for the first images (for a grid).
        failed: ``(pair, reason)`` for every pair that could not be read or scored (only with
            ``on_error="skip"``); none of its scores is in the means.
        total: number of pairs in the set (``None`` when the set has no length).
        interrupted: the run was stopped early (``should_stop``); the means cover ``names`` only.
        extra: names of the extra reference metrics scored besides PSNR/SSIM (e.g. ``"lpips"``).
    """

    protocol: MetricProtocol
    names: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    samples: list[tuple[str, list[Tensor]]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    total: int | None = None
    interrupted: bool = False
    extra: list[str] = field(default_factory=list)

    @property
    def keys(self) -> tuple[str, ...]:
        return (*_KEYS, *self.extra)

    @property
    def methods(self) -> list[str]:
        return list(self.scores)

    def mean(self, method: str, key: str = "psnr") -> float:
        """Mean over images of one score (``psnr``, ``ssim``, ``psnr_gtmean``, ``ssim_gtmean``)."""
        if method not in self.scores:
            raise KeyError(f"no method {method!r}; evaluated: {self.methods}")
        if key not in self.keys:
            raise KeyError(f"no score {key!r}; choose from {self.keys}")
        vals = self.scores[method][key]
        return sum(vals) / len(vals) if vals else float("nan")

    def protocol_lines(self) -> list[str]:
        return [
            f"Protocol: {self.protocol}; GT-mean columns: {replace(self.protocol, gt_mean=True)}.",
            "SSIM: Gaussian 11x11 window, sigma 1.5, 'valid' positions, mean over RGB channels "
            "(MATLAB/skimage style); scores are means of per-image values over "
            f"{len(self.names)} image(s).",
        ]

    def coverage_lines(self) -> list[str]:
        """How many pairs the means cover, and every pair left out with its reason (empty when all were scored)."""
        total = self.total if self.total is not None else len(self.names) + len(self.failed)
        if not self.failed and not self.interrupted and total == len(self.names):
            return []
        line = f"Averaged over {len(self.names)} of {total} pair(s)"
        parts = []
        if self.failed:
            parts.append(f"{len(self.failed)} could not be scored (listed below)")
        if self.interrupted:
            parts.append(f"interrupted: {total - len(self.names) - len(self.failed)} not evaluated")
        lines = [line + ("; " + "; ".join(parts) if parts else "") + "."]
        lines += [f"- not scored: {name}: {reason}" for name, reason in self.failed]
        return lines

    def to_markdown(self, digits: int = 2) -> str:
        """A markdown table (one row per method) followed by the protocol lines.

        Examples:
            >>> r = EvalResult(MetricProtocol(), names=["a"], scores={"id": {k: [1.0] for k in _KEYS}})
            >>> print(r.to_markdown().splitlines()[0])
            | method | PSNR (dB) | SSIM | PSNR GT-mean (dB) | SSIM GT-mean |
        """
        lines = [
            "| method | PSNR (dB) | SSIM | PSNR GT-mean (dB) | SSIM GT-mean |"
            + "".join(f" {k.upper()} ↓ |" for k in self.extra),
            "|---|---:|---:|---:|---:|" + "---:|" * len(self.extra),
        ]
        for m in self.methods:
            p, s, pg, sg = (self.mean(m, k) for k in _KEYS)
            lines.append(
                f"| {m} | {p:.{digits}f} | {s:.3f} | {pg:.{digits}f} | {sg:.3f} |"
                + "".join(f" {self.mean(m, k):.4f} |" for k in self.extra)
            )
        cover = self.coverage_lines()
        return "\n".join(lines + [""] + (cover + [""] if cover else []) + self.protocol_lines())

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": str(self.protocol),
            "protocol_gtmean": str(replace(self.protocol, gt_mean=True)),
            "images": list(self.names),
            "pairs_total": self.total if self.total is not None else len(self.names) + len(self.failed),
            "failed": [{"pair": n, "reason": r} for n, r in self.failed],
            "interrupted": self.interrupted,
            "means": {m: {k: self.mean(m, k) for k in self.keys} for m in self.methods},
            "per_image": self.scores,
            "enhance_seconds": self.seconds,
        }

    def save(self, folder: str | Path, grid_height: int = 160) -> dict[str, Path]:
        """Write ``metrics.md``, ``metrics.json`` and (when samples were kept) ``grid.png``, each atomically.

        Temporary files left in ``folder`` by a killed earlier run are removed first.
        """
        from semprior._atomic import atomic_write_text, remove_stale_temps
        from semprior.engine.grid import save_grid

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(folder)
        out = {"markdown": folder / "metrics.md", "json": folder / "metrics.json"}
        atomic_write_text(out["markdown"], self.to_markdown() + "\n")
        atomic_write_text(out["json"], json.dumps(self.to_dict(), indent=1, allow_nan=True) + "\n")
        if self.samples:
            labels = ["input"] + self.methods + ["reference"]
            out["grid"] = save_grid(
                folder / "grid.png", [row for _, row in self.samples], labels, cell_height=grid_height
            )
        return out


def paired_items(
    low: str | Path | None = None, high: str | Path | None = None, lol: str | Path | None = None, split: str = "eval15"
) -> IndexedPairs:
    """A paired dataset from ``low``/``high`` folders or a LOL-v1 root (``lol/<split>/{low,high}``)."""
    from semprior.data.datasets import LOLv1, PairedFolder

    if lol is not None:
        if low is not None or high is not None:
            raise ValueError("give either a LOL root or --low/--high folders, not both")
        return LOLv1(lol, split)
    if low is None or high is None:
        raise ValueError("give both --low and --high folders (or a LOL-v1 root with --lol)")
    return PairedFolder(low, high)


def _run(
    method: Enhancer, low: Tensor, tile: int | None, max_memory_mb: float | None, precision: str = "fp32"
) -> Tensor:
    if isinstance(method, nn.Module):
        return enhance_image(method, low, tile=tile, max_memory_mb=max_memory_mb, precision=precision)
    with torch.no_grad():
        return method(low)


def _pair_label(pairs: Any, i: int) -> str:
    """``low.png / high.png`` for a [`PairedFolder`][semprior.data.datasets.PairedFolder], else the pair's index."""
    entries = getattr(pairs, "pairs", None)
    if isinstance(entries, Sequence) and i < len(entries):
        entry = entries[i]
        if isinstance(entry, tuple) and all(isinstance(p, Path) for p in entry):
            return " / ".join(p.name for p in entry)
    return f"pair {i}"


def _reason(exc: BaseException) -> str:
    """One line: the decoder's own message for an unreadable file, else the exception's first line."""
    from semprior.data.io import ImageReadError

    if isinstance(exc, ImageReadError) and isinstance(exc.__cause__, ImageReadError):
        exc = exc.__cause__  # drop the dataset's library hint (skip_corrupt=...)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text or type(exc).__name__


def _given(item: dict) -> dict:
    return item


def _items(pairs: Pairs) -> Iterator[tuple[int, Callable[[], dict]]]:
    """``(index, load)``: an indexable set loads each item on its own, so one bad item can be skipped."""
    if isinstance(pairs, (Sequence, torch.utils.data.Dataset)) and hasattr(pairs, "__len__"):
        indexed = cast(IndexedPairs, pairs)
        for i in range(len(indexed)):
            yield i, functools.partial(indexed.__getitem__, i)
    else:
        for i, item in enumerate(cast(Iterable[dict], pairs)):
            yield i, functools.partial(_given, item)


def _default_scoring_workers() -> int:
    """Two scoring threads where the process may use two or more cores, else one."""
    from semprior._memory import usable_cores

    return 2 if usable_cores() >= 2 else 1


#: pairs scored at once in worker threads while the main thread enhances the next pair
#: (two where the process may use two or more cores: measured in benchmarks/results/eval_split.md)
SCORING_WORKERS = _default_scoring_workers()


def _scoring_thread(threads: int) -> None:
    """Runs once in each scoring worker: its tensor operations use ``threads`` intra-op threads (a
    per-thread setting; the main thread keeps its own for the enhancement)."""
    torch.set_num_threads(threads)


def _enhance_pair(
    item: dict,
    i: int,
    methods: Mapping[str, Enhancer],
    tile: int | None,
    max_memory_mb: float | None,
    precision: str = "fp32",
) -> tuple[dict[str, Tensor], dict[str, float]]:
    """Every method's clamped output `(1, 3, H, W)` for one pair, and its enhancement time."""
    low, high = item["low"].unsqueeze(0), item["high"].unsqueeze(0)
    check_image(low, f"low image {item.get('name', i)}")
    check_image(high, f"reference image {item.get('name', i)}")
    outs: dict[str, Tensor] = {}
    seconds: dict[str, float] = {}
    for name, method in methods.items():
        t0 = time.perf_counter()
        out = _run(method, low, tile, max_memory_mb, precision)
        seconds[name] = time.perf_counter() - t0
        if out.shape != low.shape:
            raise ValueError(f"method {name!r} returned shape {tuple(out.shape)} for input {tuple(low.shape)}")
        outs[name] = out.clamp(0, 1)
    return outs, seconds


#: the scoring workers call the extra metrics one at a time
_EXTRA_METRICS_LOCK = threading.Lock()


def _score_outputs(
    item: dict,
    outs: Mapping[str, Tensor],
    protocol: MetricProtocol,
    extra_metrics: Mapping[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
) -> dict[str, dict[str, float]]:
    """Every output's four scores (and the extra metrics) against the pair's reference (prepared once)."""
    high = item["high"].unsqueeze(0)
    scorer = ReferenceScorer(high, protocol)
    scores = {name: scorer.scores(out) for name, out in outs.items()}
    for name, out in outs.items():
        for key, metric in (extra_metrics or {}).items():
            with _EXTRA_METRICS_LOCK:  # user metrics may keep state (torchmetrics modules do): one call at a time
                scores[name][key] = float(metric(out, high).reshape(()))
    return scores


def evaluate_methods(
    methods: Mapping[str, Enhancer],
    pairs: Pairs,
    *,
    protocol: MetricProtocol | None = None,
    keep: int = 0,
    tile: int | None = None,
    max_memory_mb: float | None = None,
    progress: bool = False,
    on_error: Literal["raise", "skip"] = "raise",
    should_stop: Callable[[], bool] | None = None,
    on_output: Callable[[str, str, Tensor], None] | None = None,
    extra_metrics: Mapping[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
    precision: str = "fp32",
) -> EvalResult:
    """Score every method on every pair (items ``{"low", "high", "name"}``, images `(3, H, W)`).

    Args:
        methods: ``name -> enhancer``; modules run through [`enhance_image`][semprior.engine.tiling.enhance_image].
        pairs: e.g. a [`PairedFolder`][semprior.data.datasets.PairedFolder].
        protocol: metric protocol of the plain columns (default ``MetricProtocol()``); its
            ``gt_mean`` must be False (the GT-mean columns are added automatically).
        keep: keep inputs/outputs of the first ``keep`` scored pairs for a comparison grid.
        tile: tile size for module methods ([`enhance_image`][semprior.engine.tiling.enhance_image]).
        max_memory_mb: memory cap for module methods (the tile size follows from it).
        progress: show a tqdm bar.
        on_error: ``"raise"`` (default) stops at the first pair that cannot be read or scored;
            ``"skip"`` records it in ``result.failed`` with its reason and goes on. A skipped
            pair contributes to no method's mean, so all rows average the same pairs. Skipping
            needs an indexable ``pairs`` (a dataset or list) to skip an unreadable item.
        should_stop: called after each pair; when it returns True the run stops there and the
            result is marked ``interrupted`` (used for Ctrl-C in ``semprior eval``); it may then
            hold no scored pair at all.
        on_output: called as ``on_output(method, pair_name, output)`` with each method's clamped
            `(3, H, W)` output of every scored pair (``semprior eval --save-images`` writes them).
        extra_metrics: more reference metrics, ``{column: metric}`` with ``metric(output, reference)``
            on `(1, 3, H, W)` images returning one score, lower = better (e.g.
            [`LPIPS`][semprior.metrics.lpips.LPIPS]); scored on the plain output only (no GT-mean).
        precision: compute precision of module methods (``semprior eval --dtype``), as in
            [`enhance_image`][semprior.engine.tiling.enhance_image]; default ``"fp32"``, the
            reference that published numbers come from.

    Raises:
        ValueError: no methods, an empty set, or (with ``on_error="skip"``) no pair could be scored.

    Examples:
        >>> pairs = [{"low": torch.rand(3, 16, 16) * 0.2, "high": torch.rand(3, 16, 16), "name": "x"}]
        >>> r = evaluate_methods({"identity": lambda x: x}, pairs)
        >>> r.methods, len(r.scores["identity"]["psnr"])
        (['identity'], 1)
    """
    protocol = MetricProtocol() if protocol is None else protocol
    if protocol.gt_mean:
        raise ValueError("pass a protocol with gt_mean=False; the GT-mean columns are computed as well")
    if not methods:
        raise ValueError("no methods to evaluate; give at least one method or checkpoint")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    total = len(pairs) if hasattr(pairs, "__len__") else None  # type: ignore[arg-type]
    extra = list(extra_metrics or {})
    if set(extra) & set(_KEYS):
        raise ValueError(f"extra metric name(s) {sorted(set(extra) & set(_KEYS))} clash with {_KEYS}; rename them")
    result = EvalResult(
        protocol,
        scores={m: {k: [] for k in (*_KEYS, *extra)} for m in methods},
        seconds=dict.fromkeys(methods, 0.0),
        total=total,
        extra=extra,
    )
    items: Iterable[tuple[int, Callable[[], dict]]] = _items(pairs)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="eval", unit="img", total=total)
    # pipeline: pair i is enhanced (main thread) while the pairs before it are scored by SCORING_WORKERS
    # worker threads (torch releases the GIL, so every core works; each pair has its own
    # ReferenceScorer); results are recorded in pair order, at most SCORING_WORKERS pairs wait
    pending: deque[tuple[int, dict, dict, dict, Future]] = deque()

    def finish(keep_waiting: int = 0) -> None:
        while len(pending) > keep_waiting:
            j, item, outs, seconds, future = pending.popleft()
            try:
                scores = future.result()
            except Exception as exc:
                if on_error == "raise":
                    raise
                result.failed.append((_pair_label(pairs, j), _reason(exc)))
                continue
            name = str(item.get("name", j))
            if on_output is not None:  # only once every method has scored the pair
                for m, out in outs.items():
                    on_output(m, name, out[0])
            result.names.append(name)
            for m in methods:
                result.seconds[m] += seconds[m]
                for k in result.keys:
                    result.scores[m][k].append(scores[m][k])
            if len(result.samples) < keep:
                result.samples.append((name, [item["low"].unsqueeze(0), *outs.values(), item["high"].unsqueeze(0)]))

    # the scoring workers share the cores with the enhancement: half the process's intra-op threads between them
    threads = max(1, torch.get_num_threads() // (2 * SCORING_WORKERS))
    with ThreadPoolExecutor(
        max_workers=SCORING_WORKERS,
        thread_name_prefix="semprior-eval-metrics",
        initializer=_scoring_thread,
        initargs=(threads,),
    ) as pool:
        try:
            for i, load in items:
                try:
                    item = load()
                    outs, seconds = _enhance_pair(item, i, methods, tile, max_memory_mb, precision)
                except Exception as exc:
                    finish()
                    if on_error == "raise":
                        raise
                    result.failed.append((_pair_label(pairs, i), _reason(exc)))
                else:
                    pending.append(
                        (i, item, outs, seconds, pool.submit(_score_outputs, item, outs, protocol, extra_metrics))
                    )
                    finish(keep_waiting=SCORING_WORKERS)
                if should_stop is not None and should_stop():
                    finish()
                    result.interrupted = True
                    break
            finish()
        finally:
            for *_, future in pending:  # an error or Ctrl-C left pairs being scored: keep nothing of them
                future.cancel()
    if not result.names and not result.interrupted:
        if result.failed:
            listing = "; ".join(f"{n}: {r}" for n, r in result.failed[:5])
            raise ValueError(f"no pair could be scored ({len(result.failed)} failed): {listing}")
        raise ValueError("the paired set is empty; check the folders")
    return result
