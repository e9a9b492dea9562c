"""Score enhancers on a folder of photos without references (LIME, ExDark, anyone's night photos).

The unpaired runner, beside the paired one (`semprior.engine.evaluate`).

[`evaluate_unpaired`][semprior.engine.evaluate_unpaired.evaluate_unpaired] runs each method on every
image of a folder and scores the input and every result with the no-reference scores of
[`semprior.metrics.noref.noref_scores`][semprior.metrics.noref.noref_scores] (NIQE with the shipped
pristine model, exposure, contrast, colour, noise), plus any ``extra_metrics`` (e.g.
pyiqa's learned metrics from local weights,
[`semprior.metrics.pyiqa_metric.pyiqa_metric`][semprior.metrics.pyiqa_metric.pyiqa_metric]).
``semprior eval --unpaired DIR`` prints `UnpairedResult.table`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from semprior.metrics.niqe import NIQEModel

__all__ = ["UnpairedResult", "evaluate_unpaired"]

Method = Callable[[Tensor], Tensor]
COLUMNS = ("niqe", "brightness", "dark_fraction", "bright_fraction", "contrast", "colorfulness", "noise")


def _lower_better(fn) -> bool | None:
    flag = getattr(fn, "lower_better", None)
    return None if flag is None else bool(flag)


@dataclass
class UnpairedResult:
    """Per-image scores ``scores[method][metric] -> list`` (``"input"`` = the photos as read).

    ``extra`` maps each extra metric's column name to ``True`` (lower is better), ``False``
    (higher is better) or ``None`` (unknown).
    """

    names: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    extra: dict[str, bool | None] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        """Mean of each metric over the images where it is defined (NIQE needs 96x96 pixels)."""
        out: dict[str, dict[str, float]] = {}
        for method, cols in self.scores.items():
            out[method] = {}
            for k, v in cols.items():
                vals = [x for x in v if not math.isnan(x)]
                out[method][k] = sum(vals) / len(vals) if vals else math.nan
        return out

    def table(self) -> str:
        """A Markdown table of the means, one row per method (lower NIQE = more natural)."""
        arrows = {True: " ↓", False: " ↑", None: ""}
        head = "| method | NIQE ↓ | brightness | dark % | bright % | contrast | colourfulness | noise σ |" + "".join(
            f" {k}{arrows[low]} |" for k, low in self.extra.items()
        )
        lines = [head, "|" + "---|" * (8 + len(self.extra))]
        for method, m in self.means().items():
            lines.append(
                f"| {method} | {m['niqe']:.3f} | {m['brightness']:.3f} | {100 * m['dark_fraction']:.1f} | "
                f"{100 * m['bright_fraction']:.1f} | {m['contrast']:.3f} | {m['colorfulness']:.1f} | {m['noise']:.2f} |"
                + "".join(f" {m[k]:.3f} |" for k in self.extra)
            )
        lines.append(
            f"\n{len(self.names)} image(s)"
            + (
                f"; skipped {len(self.skipped)}: " + "; ".join(f"{n} ({why})" for n, why in self.skipped)
                if self.skipped
                else ""
            )
        )
        return "\n".join(lines)


def evaluate_unpaired(
    methods: Method | Mapping[str, Method],
    folder: str | os.PathLike,
    *,
    limit: int | None = None,
    niqe_model: NIQEModel | str | None = None,
    extra_metrics: Mapping[str, Callable[[Tensor], Tensor]] | None = None,
    precision: str = "fp32",
) -> UnpairedResult:
    """Enhance every image of ``folder`` with each method and score input and outputs without references.

    Args:
        methods: a model / callable ``(1, 3, H, W) -> (1, 3, H, W)``, or ``{name: callable}``.
            Outputs are clamped to ``[0, 1]`` before scoring (as for the paired metrics).
        folder: images directly inside it ([`semprior.data.io.list_images`][semprior.data.io.list_images]).
        limit: score only the first ``limit`` images (sorted by name).
        niqe_model: a `NIQEModel`, or `"authors"` (default: the published NIQE) or `"fitted"`.
        extra_metrics: more no-reference scores, ``{column: callable}`` with
            ``(1, 3, H, W) -> (1,)``; a ``lower_better`` attribute on the callable sets the arrow
            in the table (e.g. a [`PyIQAMetric`][semprior.metrics.pyiqa_metric.PyIQAMetric]).
        precision: compute precision of module methods (``semprior eval --dtype``), resolved per
            model by [`resolve_precision`][semprior.engine.precision.resolve_precision]; default
            ``"fp32"``, the reference.

    An unreadable image is listed in ``skipped`` with its reason, never silently dropped.
    """
    from semprior.data.io import list_images, read_image
    from semprior.engine.precision import autocast_for, resolve_precision
    from semprior.metrics.noref import noref_scores

    if not isinstance(methods, Mapping):
        methods = {getattr(methods, "__name__", None) or type(methods).__name__: methods}
    if "input" in methods:
        raise ValueError("'input' names the unenhanced photos in the table; rename that method")
    extra_metrics = dict(extra_metrics or {})
    clash = set(extra_metrics) & set(COLUMNS)
    if clash:
        raise ValueError(f"extra metric name(s) {sorted(clash)} clash with the built-in columns {COLUMNS}; rename them")
    files = list_images(folder)
    if not files:
        raise FileNotFoundError(f"no images in {folder}")
    files = files[:limit] if limit is not None else files
    columns = (*COLUMNS, *extra_metrics)
    result = UnpairedResult(
        scores={m: {c: [] for c in columns} for m in ["input", *methods]},
        extra={k: _lower_better(fn) for k, fn in extra_metrics.items()},
    )
    for f in files:
        try:
            low = read_image(f).unsqueeze(0)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            result.skipped.append((f.name, f"{type(exc).__name__}: {exc}"))
            continue
        outs = {"input": low}
        for name, fn in methods.items():
            dev = next((p.device for p in getattr(fn, "parameters", lambda: iter(()))()), low.device)
            mode = resolve_precision(precision, fn, dev) if isinstance(fn, torch.nn.Module) else "fp32"
            with torch.no_grad(), autocast_for(mode, dev):
                out = fn(low.to(dev))
            if out.shape != low.shape:
                raise ValueError(f"method {name!r} returned {tuple(out.shape)} for input {tuple(low.shape)}")
            outs[name] = out.float().cpu().clamp(0, 1)
        result.names.append(f.name)
        for name, img in outs.items():
            for k, v in noref_scores(img, niqe_model).items():
                result.scores[name][k].append(float(v[0]))
            for k, fn in extra_metrics.items():
                v = torch.as_tensor(fn(img))
                if v.numel() != 1:
                    raise ValueError(
                        f"extra metric {k!r} returned shape {tuple(v.shape)} for one image; expected one score"
                    )
                result.scores[name][k].append(float(v.reshape(())))
    return result
