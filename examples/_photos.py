"""The examples' check on real low-light photos: is the result brighter, and is its NIQE not worse?

Each example takes ``--photos DIR`` (e.g. the LIME test images or LOL-v1 ``eval15/low``): its
enhancer runs on every photo of the folder (at full size), the input and the result are scored
with [`evaluate_unpaired`][semprior.engine.evaluate_unpaired.evaluate_unpaired] (NIQE with the authors'
published pristine model, mean grey level, ...), the table is printed and the verdict is written
to ``OUT/photos.json``. Means over the photos; NIQE: lower is better.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from torch import Tensor


def check_photos(
    enhance: Callable[[Tensor], Tensor], folder: str | Path, out: Path, name: str, limit: int | None = None
) -> dict:
    """Score ``enhance`` on the photos of ``folder``; print the table and write ``out/photos.json``."""
    from semprior.engine.evaluate_unpaired import evaluate_unpaired

    result = evaluate_unpaired({name: enhance}, folder, limit=limit)
    means = result.means()
    summary = {
        "folder": str(folder),
        "images": result.names,
        "skipped": [f"{n}: {why}" for n, why in result.skipped],
        "brightness": {"input": means["input"]["brightness"], "output": means[name]["brightness"]},
        "niqe": {"input": means["input"]["niqe"], "output": means[name]["niqe"]},
    }
    summary["brighter"] = summary["brightness"]["output"] > summary["brightness"]["input"]
    summary["niqe_not_worse"] = summary["niqe"]["output"] <= summary["niqe"]["input"]
    print(f"\nreal photos ({folder}, {len(result.names)} image(s)):\n" + result.table())
    print(
        f"brightness {summary['brightness']['input']:.3f} -> {summary['brightness']['output']:.3f} "
        f"({'brighter' if summary['brighter'] else 'NOT brighter'}); "
        f"NIQE {summary['niqe']['input']:.3f} -> {summary['niqe']['output']:.3f} "
        f"({'not worse' if summary['niqe_not_worse'] else 'worse'})"
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "photos.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
