"""How much training the CUGD example needs: ``examples/cugd.py`` at several budgets on real photos.

    python benchmarks/bench_cugd_budget.py ../shared/data benchmarks/results/cugd_budget \
        --run "--steps 1200" --run "--steps 1200 --pool 256"

Each ``--run`` is one run of the example (its arguments, plus ``--photos DATA/lime``), measured like
``examples/budgets.py`` does (one torch thread, CPU seconds of the whole example, mean brightness and
NIQE of the photos before and after). The result is written after every run (``OUT.json``,
``OUT.md``), so a cut-off sweep keeps the runs it finished; runs already in ``OUT.json`` are kept (each
row names the commit, command and date that made it; its arguments apply on top of the example's
defaults at that commit).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

from _harness import REPO, provenance, write_result

sys.path.insert(0, str(REPO / "examples"))
import budgets  # noqa: E402  (examples/budgets.py: the examples' own measurement)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="the shared data folder (reads lime/)")
    p.add_argument("out", help="result stem: writes OUT.json and OUT.md")
    p.add_argument("--run", action="append", required=True, help="arguments of one run of examples/cugd.py")
    args = p.parse_args(argv)
    meta = provenance(__file__, argv, threads=1)
    old = Path(args.out).with_suffix(".json")
    rows: list[dict] = json.loads(old.read_text())["runs"] if old.is_file() else []
    md = [
        "# The CUGD example at several training budgets",
        "",
        "`examples/cugd.py` with `--photos ../shared/data/lime` (the 9 LIME photos), one torch thread; CPU s: user +",
        "system seconds of the whole example (training and the photos). Means over the photos; NIQE with the",
        "authors' pristine model, lower is better. Plausible = brighter and NIQE not worse.",
        "",
        "| arguments | CPU s | brightness before → after | NIQE before → after | plausible | commit |",
        "|---|---:|---|---|---|---|",
    ]

    def row(r: dict) -> str:
        ph = r["photos"]
        ok = ph["brighter"] and ph["niqe_not_worse"]
        return (
            f"| `{r['arguments']}` | {r['cpu_seconds']:.0f} | {ph['brightness']['input']:.3f} → "
            f"{ph['brightness']['output']:.3f} | {ph['niqe']['input']:.3f} → {ph['niqe']['output']:.3f} | "
            f"{'yes' if ok else 'no'} | {r['commit']} |"
        )

    md += [row(r) for r in rows]
    for extra in args.run:
        budgets.BUDGETS["cugd"] = [*shlex.split(extra), "--photos", "{data}/lime"]
        with tempfile.TemporaryDirectory() as tmp:
            rec = budgets.run("cugd", args.data.resolve(), Path(tmp))
        rows.append({"arguments": extra, "commit": meta["commit"], "run_command": meta["command"], **rec})
        md.append(row(rows[-1]))
        print(md[-1], flush=True)
        write_result(args.out, meta, {"runs": rows}, md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
