"""``semprior train --config run.yaml``: train a registered model from a YAML that maps 1:1 onto
[`RunConfig`][semprior.engine.run_config.RunConfig].

Examples:
    ```bash
    semprior train --config deepspg_lolv1 --out runs/deepspg_lolv1        # a shipped recipe, by name
    semprior train --config my_run.yaml --out runs/my_run                 # your own YAML
    semprior train --config deepspg_lolv1 --set train.lr=2e-4 --set train.batch_size=4 --print-config
    semprior train --config configs/deepspg_lolv1.yaml --out runs/deepspg_lolv1 --resume runs/deepspg_lolv1/last.pt
    semprior train --config configs/deepspg_lolv1.yaml --out runs/deepspg_lolv1 --overwrite   # start that run again
    torchrun --nproc_per_node 4 -m semprior train --config configs/deepspg_lolv1.yaml   # same global batch
    ```

Multi-process: ``torchrun --nproc_per_node N -m semprior train --config run.yaml`` (``batch_size``
is the global batch, split over the processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        metavar="YAML|NAME",
        help="YAML file (keys map 1:1 onto semprior.engine.recipe.RunConfig) or the name of a shipped "
        "recipe (deepspg_lolv1, retinexformer_lolv1, ...; `semprior models` lists them)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config value, dotted and YAML-parsed (repeatable): --set train.lr=2e-4 "
        "--set data.patch_size=128",
    )
    parser.add_argument("--out", help="output folder (overrides out_dir)")
    parser.add_argument("--resume", help="checkpoint to resume from (e.g. OUT/last.pt); continues exactly")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (without it, a folder holding last.pt/best.pt/log.jsonl "
        "is refused unless --resume is given)",
    )
    parser.add_argument(
        "--allow-changed",
        action="store_true",
        help="with --resume: accept a config that differs from the one the checkpoint recorded "
        "(the changed fields are refused otherwise)",
    )
    parser.add_argument("--steps", type=int, help="override train.steps (the length of the schedule)")
    parser.add_argument(
        "--until",
        type=int,
        metavar="STEP",
        help="stop (and save last.pt) at this step of the schedule; resume later to continue exactly",
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")


def run(args: argparse.Namespace) -> int:
    from semprior._config import ConfigError
    from semprior.engine import distributed as D
    from semprior.engine.recipe import run_training
    from semprior.engine.run_config import RunConfig, apply_overrides, from_dict, load_yaml, resolve_config

    raw = apply_overrides(load_yaml(resolve_config(args.config)), args.overrides)
    try:
        run_cfg = from_dict(RunConfig, raw, "config")
        run_cfg.model_config()  # the model's fields are checked here too, so their errors name this file
    except ConfigError as exc:
        raise ConfigError(f"{args.config}: {exc}") from exc
    if args.out:
        run_cfg = dataclasses.replace(run_cfg, out_dir=args.out)
    if args.resume:
        run_cfg = dataclasses.replace(run_cfg, resume=args.resume)
    if args.steps:
        run_cfg = dataclasses.replace(run_cfg, train=dataclasses.replace(run_cfg.train, steps=args.steps))
    if args.print_config:
        print(json.dumps(dataclasses.asdict(run_cfg), indent=2, default=str))
        return 0
    from semprior._memory import ModelTooLarge

    try:
        _, trainer, result = run_training(
            run_cfg, until=args.until, overwrite=args.overwrite, allow_changed=args.allow_changed
        )
    except ModelTooLarge as exc:
        raise ModelTooLarge(f"{args.config}: {exc}") from exc
    if D.is_main():
        best = f", best val psnr {result.best:.2f} dB" if result.best is not None else ""
        print(
            f"trained {result.step} steps in {result.seconds:.0f} s{best}; "
            f"checkpoints and loss_curve.png in {run_cfg.out_dir}"
        )
    D.cleanup()
    return 0
