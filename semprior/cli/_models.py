"""Model selection shared by ``semprior enhance`` and ``semprior eval``: one way to name a model.

- ``--model NAME``: a registered model ([`semprior.models.registry.list_models`][semprior.models.registry.list_models]). Classical
  methods need no weights; learned models load their default weights shipped inside semprior
  (the entry's pretrained table), or say that there are none and what to pass instead.
- ``--checkpoint PATH``: any model file [`semprior.models.io.load_model`][semprior.models.io.load_model] opens (a training
  checkpoint, a ``save_pretrained`` folder or ``model.safetensors``, an official Retinexformer
  ``.pth``, ``hf://org/name``); the model is rebuilt from what the file records (architecture, config, prior).
- ``--prior NAME`` overrides the prior a checkpoint records; ``--weights-dir`` is where named
  prior weights are found (HRNet, SAM).
- ``--device auto|cpu|cuda|cuda:N`` (``auto`` = CUDA when present) and ``--dtype fp32|fp16|bf16``
  (weights and activations; ``--half`` is ``--dtype bf16``) say where and how models run; a dtype
  that is slower than fp32 on the chosen device prints a note. Images are read and written as usual.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

__all__ = ["DTYPES", "add_model_arguments", "build_models", "dtype_note", "pick_device"]

#: --dtype -> torch dtype
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def add_model_arguments(p: argparse.ArgumentParser, multiple: bool) -> None:
    from semprior.models import list_models
    from semprior.priors.registry import PRIORS

    g = p.add_argument_group("model" + (" (repeatable; default: every classical baseline)" if multiple else ""))
    action = "append" if multiple else "store"
    default = [] if multiple else None
    names = ", ".join(list_models())
    g.add_argument("--model", action=action, default=default, metavar="NAME",
                   help=f"registered model ({names}); learned models use the weights shipped with semprior")
    g.add_argument("--checkpoint", action=action, default=default, metavar="PATH",
                   help="model file: a `semprior train` checkpoint (best.pt/last.pt), a save_pretrained folder or "
                        "model.safetensors, an official Retinexformer .pth, or hf://org/name")
    g.add_argument("--prior", default=None, choices=sorted(PRIORS),
                   help="override the prior a checkpoint records (default: the recorded one)")
    g.add_argument("--weights-dir", default=None, metavar="DIR",
                   help="where prior weights (HRNet, SAM) are found (default: $SEMPRIOR_WEIGHTS)")
    g.add_argument("--device", default="auto", metavar="auto|cpu|cuda|cuda:N",
                   help="where models run (auto: CUDA when available, else CPU; cuda:1 = the second GPU)")
    g.add_argument("--dtype", default=None, choices=sorted(DTYPES),
                   help="weights and activations of learned models (default fp32; bf16/fp16 are faster on recent "
                        "GPUs, and a note says when the chosen one is slower on this device)")
    g.add_argument("--half", action="store_true", help="same as --dtype bf16")


def pick_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``cuda``/``cuda:N`` that torch cannot see is an error that says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: use auto, cpu, cuda or cuda:N")
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise RuntimeError(f"--device {name} but torch sees no CUDA device; use --device cpu (or auto)")
        if dev.index is not None and dev.index >= n:
            raise RuntimeError(f"--device {name} but torch sees {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
    return dev


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def dtype_note(device: torch.device, dtype: torch.dtype) -> str | None:
    """One line when ``dtype`` is likely slower than fp32 on ``device`` (else ``None``)."""
    if dtype == torch.float32:
        return None
    name = {torch.float16: "fp16", torch.bfloat16: "bf16"}[dtype]
    if device.type == "cpu":
        flags = _cpu_flags()
        fast = {"avx512_bf16", "amx_bf16"} if dtype == torch.bfloat16 else {"amx_fp16", "avx512_fp16"}
        if not flags & fast:
            have = "no " + " / ".join(sorted(fast)) if flags else "its instruction set is unknown"
            return (f"note: --dtype {name} on this CPU ({have}) is usually slower than fp32; "
                    "drop --dtype (fp32) for speed")
        return None
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        return f"note: {torch.cuda.get_device_name(device)} has no native bf16; --dtype fp16 or fp32 is faster"
    return None


def _unique_labels(paths: list[str]) -> list[str]:
    """Shortest path suffixes that tell the checkpoints apart (two ``best.pt`` never collapse)."""
    parts = [Path(p).expanduser().resolve().parts for p in paths]
    for n in range(1, max((len(x) for x in parts), default=1) + 1):
        labels = ["/".join(x[-n:]) for x in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]


def build_models(args: argparse.Namespace, default: str | None = None) -> dict[str, nn.Module]:
    """``label -> model`` from ``--model``/``--checkpoint`` (``default`` when none is given)."""
    from semprior.models.factory import create_model_for_inference
    from semprior.models.io import load_model

    def as_list(v):
        return [] if v is None else (list(v) if isinstance(v, list) else [v])

    names = [n.lower() for n in as_list(args.model)]
    ckpts = as_list(args.checkpoint)
    if not names and not ckpts:
        names = [default] if default is not None else []
    device = pick_device(args.device)
    dtype_arg = getattr(args, "dtype", None)  # callers that build a Namespace by hand may omit it
    if args.half and dtype_arg not in (None, "bf16"):
        raise ValueError(f"--half means --dtype bf16 but --dtype {dtype_arg} is given; pass one of them")
    dtype = DTYPES["bf16" if args.half else (dtype_arg or "fp32")]
    note = dtype_note(device, dtype)
    if note:
        print(note, file=sys.stderr)
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
        if dtype != torch.float32 and any(p.is_floating_point() for p in model.parameters()):
            model.to(dtype)
        model.eval()
    return models
