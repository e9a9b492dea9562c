"""Model selection shared by ``semprior enhance`` and ``semprior eval``: one way to name a model.

- ``--model NAME``: a registered model ([`semprior.models.registry.list_models`][semprior.models.registry.list_models]). Classical
  methods need no weights; learned models load the weights shipped inside semprior (see
  `semprior.models.registry.SHIPPED`), or say that there are none and what to pass instead.
- ``--checkpoint PATH``: any model file [`semprior.hub.load_model`][semprior.hub.load_model] opens (a training
  checkpoint, a ``save_pretrained`` folder or ``model.safetensors``, an official Retinexformer
  ``.pth``); the model is rebuilt from what the file records (architecture, config, prior).
- ``--prior NAME`` overrides the prior a checkpoint records; ``--weights-dir`` is where named
  prior weights are found (HRNet, SAM).
- ``--device auto|cpu|cuda`` (``auto`` = CUDA when present) and ``--half`` (bfloat16 weights and
  activations) say where and how models run; images are read and written as usual.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import nn

__all__ = ["add_model_arguments", "build_models", "pick_device"]


def add_model_arguments(p: argparse.ArgumentParser, multiple: bool) -> None:
    from semprior.models.registry import PRIORS, list_models

    g = p.add_argument_group("model" + (" (repeatable; default: every classical baseline)" if multiple else ""))
    action = "append" if multiple else "store"
    default = [] if multiple else None
    names = ", ".join(list_models())
    g.add_argument("--model", action=action, default=default, metavar="NAME",
                   help=f"registered model ({names}); learned models use the weights shipped with semprior")
    g.add_argument("--method", action=action, default=default, metavar="NAME",
                   help="same as --model (kept for the classical baselines' old spelling)")
    g.add_argument("--checkpoint", action=action, default=default, metavar="PATH",
                   help="model file: a `semprior train` checkpoint (best.pt/last.pt), a save_pretrained folder or "
                        "model.safetensors, or an official Retinexformer .pth")
    g.add_argument("--prior", default=None, choices=sorted(PRIORS),
                   help="override the prior a checkpoint records (default: the recorded one)")
    g.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="where prior weights (HRNet, SAM) are found (default: $SEMPRIOR_WEIGHTS)")
    g.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where models run (auto: CUDA when available, else CPU)")
    g.add_argument("--half", action="store_true", help="run learned models in bfloat16 (faster on recent GPUs)")


def pick_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda but torch sees no CUDA device; use --device cpu (or auto)")
    return torch.device(name)


def _unique_labels(paths: list[str]) -> list[str]:
    """Shortest path suffixes that tell the checkpoints apart (two ``best.pt`` never collapse)."""
    parts = [Path(p).expanduser().resolve().parts for p in paths]
    for n in range(1, max((len(x) for x in parts), default=1) + 1):
        labels = ["/".join(x[-n:]) for x in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def build_models(args: argparse.Namespace, default: str | None = None) -> dict[str, nn.Module]:
    """``label -> model`` from ``--model``/``--method``/``--checkpoint`` (``default`` when none is given)."""
    from semprior.hub import load_model
    from semprior.models.shipped import create_model_for_inference

    def as_list(v):
        return [] if v is None else (list(v) if isinstance(v, list) else [v])

    names = [n.lower() for n in as_list(args.model) + as_list(args.method)]
    ckpts = as_list(args.checkpoint)
    if not names and not ckpts:
        names = [default] if default is not None else []
    device = pick_device(args.device)
    models: dict[str, nn.Module] = {}
    for name in names:
        if name in models:
            raise ValueError(f"model {name!r} is given twice")
        models[name] = create_model_for_inference(name, prior=args.prior, weights_dir=args.weights_dir)
    for label, path in zip(_unique_labels(ckpts), ckpts):
        model = load_model(path, prior=args.prior, weights_dir=args.weights_dir)
        models[label if label not in models else f"checkpoint {label}"] = model
    for label, model in models.items():
        model.to(device)
        if args.half and any(p.is_floating_point() for p in model.parameters()):
            model.to(torch.bfloat16)
        model.eval()
    return models
