"""``semprior weights``: list the known pretrained checkpoints and check a weights directory.

Examples:
    ```bash
    semprior weights                       # table of known weights, sources and licences
    semprior weights --dir ~/weights       # + present (under which name) / sha256 / loads, per file
    SEMPRIOR_WEIGHTS=~/weights semprior weights --check
    ```
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", metavar="D", help="weights directory to check (default: $SEMPRIOR_WEIGHTS with --check)")
    p.add_argument("--check", action="store_true", help="check $SEMPRIOR_WEIGHTS when --dir is not given")
    p.add_argument("--no-load", action="store_true", help="only check presence and sha256, do not torch.load")


def run(args: argparse.Namespace) -> int:
    from semprior.weights import ENV_VAR, KNOWN_WEIGHTS, check_weights_dir

    if args.dir is None and not args.check:
        print(f"{'name':26} {'file':42} {'licence':22} source")
        for w in KNOWN_WEIGHTS.values():
            print(f"{w.name:26} {w.filename:42} {w.licence.split(' (')[0]:22} {w.source_url}")
            for alias in w.aliases:  # another upstream README's name for the same checkpoint
                print(f"{'':26} {'or ' + alias}")
            if w.align_corners is not None:
                print(f"{'':26} {f'align_corners={w.align_corners} (release default)'}")
        print(
            f"\nPut files in a directory and pass it as weights_dir=... or set ${ENV_VAR}; "
            "check it with: semprior weights --dir D"
        )
        return 0
    rows = check_weights_dir(args.dir, load=not args.no_load)
    for r in rows:
        print(f"{r['name']:26} {r['status']:30} {r['file']}  {r['detail']}")
    bad = [r for r in rows if r["status"] in ("BAD SHA256", "DOES NOT LOAD")]
    present = sum(r["status"] != "missing" for r in rows)
    print(f"\n{present}/{len(rows)} present, {len(bad)} with problems")
    return 1 if bad else 0
