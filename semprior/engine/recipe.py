"""Build and train what a [`RunConfig`][semprior.engine.run_config.RunConfig] names: priors, model, data, trainer.

Used by ``semprior train --config run.yaml`` and ``examples/deepspg_full.py``. Models, priors and
text losses are named as in their tables (`semprior.models.registry`, `semprior.priors.registry`,
`semprior.losses.text`). Python users pass component objects to the models directly.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from semprior.engine.run_config import DataConfig, RunConfig, SegmentationDataConfig
from semprior.engine.train_config import TrainConfig
from semprior.losses.text import build_text_loss

if TYPE_CHECKING:
    from collections.abc import Mapping

    from semprior.data.datasets import PairedFolder
    from semprior.data.synthesis import SyntheticPairs

__all__ = [
    "DataConfig",
    "SegmentationDataConfig",
    "RunConfig",
    "build_prior",
    "build_data",
    "build_segmentation",
    "build_model",
    "init_weights",
    "make_validate",
    "run_training",
]


def build_segmentation(seg: SegmentationDataConfig, seed: int = 0) -> torch.utils.data.Dataset:
    """The segmentation dataset of ``seg`` (darkened when ``seg.low_light``)."""
    from semprior.data.segmentation import LowLightSegmentation, SegmentationFolder, SyntheticSegmentation

    if seg.kind == "synthetic":
        ds: Any = SyntheticSegmentation(seg.length, size=seg.patch_size, num_classes=seg.num_classes, seed=seed)
    else:
        # kind "folder": SegmentationDataConfig refuses it without both folders
        assert seg.image_dir is not None and seg.mask_dir is not None
        ds = SegmentationFolder(
            seg.image_dir,
            seg.mask_dir,
            seg.num_classes,
            seg.ignore_index,
            seg.mask_glob,
            seg.strip,
            patch_size=seg.patch_size,
            seed=seed,
        )
    return LowLightSegmentation(ds, seg.synthesis, seed + 104_729) if seg.low_light else ds


def build_prior(name: str, weights_dir: str | None = None):
    """The prior ``name`` (`semprior.priors.registry.build_prior`); a missing weight file
    says that the weight-free prior is an explicit alternative."""
    from semprior.priors.registry import build_prior as registry_prior

    try:
        return registry_prior(name, weights_dir)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}. The weight-free prior is an explicit choice instead: set `prior: region` in the config"
        ) from exc


def build_model(run: RunConfig, prior=None, text_loss=None) -> nn.Module:
    """The model of ``run`` (the prior and the text loss built from their names unless given)."""
    from semprior.models import get_model_entry
    from semprior.models.build import build_from_config

    entry = get_model_entry(run.model_name)
    cfg = run.model_config()
    prior = prior if prior is not None else build_prior(run.prior, run.weights_dir)
    if text_loss is None and entry.text:
        text_loss = build_text_loss(run.text, run.weights_dir)
    # weights, gradients and Adam's two moments: refused before anything is allocated
    return build_from_config(
        entry, cfg, prior, "model", text_loss, copies=4, what="weights, gradients and Adam's two moments"
    )


def init_weights(model: nn.Module, run: RunConfig) -> dict[str, str]:
    """Load ``run.init`` into ``model`` (before training); returns what the checkpoints record of it.

    The file is read by [`load_model`][semprior.models.io.load_model] with the prior it records, so a
    file trained with another prior or another architecture is refused with the reason. Every
    trainable parameter of ``model`` must be in the file; frozen parts that inference does not
    need (the CLIP text loss) may be missing.
    """
    import hashlib

    from semprior.models.factory import pretrained_path
    from semprior.models.io import load_model

    spec = str(run.init)
    if spec == "shipped" or spec.startswith("shipped:"):
        path = pretrained_path(run.model_name, spec.partition(":")[2] or None)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"init: {path} not found; give a model file (save_pretrained folder, .safetensors, "
                f"best.pt/last.pt) or 'shipped' for the weights that ship with semprior"
            )
    try:
        source = load_model(path, name=run.model_name, weights_dir=run.weights_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise type(exc)(f"init: {exc}") from exc
    state = source.state_dict()
    ours = model.state_dict()
    unexpected = sorted(set(state) - set(ours))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = sorted(trainable - set(state))
    bad = [k for k, v in state.items() if k in ours and tuple(v.shape) != tuple(ours[k].shape)]
    if unexpected or missing or bad:
        mine, theirs = dataclasses.asdict(_config_of(model)), dataclasses.asdict(_config_of(source))
        differ = [
            f"{k} (file {theirs.get(k)!r}, run {v!r})" for k, v in mine.items() if theirs.get(k) != v and k != "loss"
        ]
        raise ValueError(
            f"init: {path} does not fit the {run.model_name} of this run (prior {run.prior!r}): "
            f"{len(missing)} trainable tensors missing {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, "
            f"{len(bad)} of another shape {bad[:3]}; config fields that differ: {', '.join(differ) or 'none'}. "
            "Initialise from a model trained with the same model config and prior"
        )
    model.load_state_dict(state, strict=False)
    weights = path / "model.safetensors" if path.is_dir() else path
    digest = hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else ""
    return {"source": spec, "path": str(path), "sha256": digest}


def build_data(
    data: DataConfig, seed: int = 0
) -> tuple[SyntheticPairs | PairedFolder, SyntheticPairs | PairedFolder | None]:
    """``(train, validation)`` datasets.

    Synthetic: photos held out from the end of the list. Paired / LOL: ``data.val_holdout`` pairs
    held out by name hash (removed from training), or the folder ``data.val_low_dir`` /
    ``val_high_dir``; ``None`` when neither is set.
    """
    from semprior.data import SyntheticPairs, default_clean_images

    if data.kind == "synthetic":
        if data.root is None:
            photos = default_clean_images()
        else:
            from semprior.data.datasets import list_images, load_rgb

            files = list_images(data.root)
            if not files:
                raise FileNotFoundError(f"no clean photos in {data.root}")
            files = _readable(files, data.skip_corrupt, str(data.root))
            photos = {f.stem: load_rgb(f) for f in files}
        names = list(photos)
        if not 0 <= data.val_images < len(names):
            raise ValueError(
                f"data.val_images={data.val_images} must leave at least one of the {len(names)} photos for training"
            )
        train_names = names[: len(names) - data.val_images]
        val_names = names[len(names) - data.val_images :]
        length = data.length or 64 * len(train_names)
        train = SyntheticPairs({n: photos[n] for n in train_names}, data.patch_size, data.synthesis, length, seed)
        val = None
        if val_names:
            val = SyntheticPairs(
                {n: photos[n] for n in val_names},
                data.val_size,
                data.synthesis,
                data.val_items,
                seed + 7919,
                flip=False,
            )
        return train, val
    return _paired_data(data, seed)


def _paired_data(data: DataConfig, seed: int) -> tuple[PairedFolder, PairedFolder | None]:
    """`build_data` for paired and LOL data."""
    from semprior.data import LOLv1, LOLv2, PairedFolder, holdout_split

    make: Callable[..., PairedFolder]  # the dataset class with its folder arguments bound
    if data.kind == "paired":
        assert data.low_dir is not None and data.high_dir is not None  # DataConfig refuses "paired" without them
        make = functools.partial(PairedFolder, data.low_dir, data.high_dir)
    else:
        assert data.root is not None  # DataConfig refuses LOL data without a root
        if data.kind == "lol-v1":
            make = functools.partial(LOLv1, data.root, "train")
        else:
            make = functools.partial(LOLv2, data.root, data.subset, "train")
    held: list[str] = []
    if data.val_holdout:
        everything = make()
        keys = [everything.key_fn(p[0].stem) for p in everything.pairs]
        if data.val_split == "names":
            held = holdout_split(keys, data.val_holdout)
        else:
            from semprior.data.scenes import group_scenes, scene_holdout

            held = scene_holdout(keys, group_scenes([p[1] for p in everything.pairs]), data.val_holdout)
    train = make(
        patch_size=data.patch_size or None,
        flip=True,
        seed=seed,
        drop=held,
        cache=data.cache,
        skip_corrupt=data.skip_corrupt,
    )
    val = None
    if held:
        val = make(keep=held, skip_corrupt=data.skip_corrupt)
    elif data.val_low_dir is not None:
        assert data.val_high_dir is not None  # DataConfig takes both validation folders or neither
        val = PairedFolder(data.val_low_dir, data.val_high_dir, skip_corrupt=data.skip_corrupt)
    if not data.skip_corrupt:  # fail before step 0, not hours in
        for ds in (train, val):
            if ds is not None:
                _readable(sorted({f for pair in ds.pairs for f in pair}), False, f"{ds.low_dir} / {ds.high_dir}")
    return train, val


def _config_of(model: nn.Module) -> Any:
    """The config dataclass that every registered model keeps as ``model.config``."""
    return model.config


def _check_views(train_cfg: TrainConfig, data: DataConfig) -> None:
    """Each coarse-to-fine view must fit in what the dataset hands out (a ``data.patch_size`` crop, or whole images)."""
    if not data.patch_size or data.kind == "synthetic":
        return
    for stage in train_cfg.patch_stages:
        patch, scale = stage[1], (stage[2] if len(stage) == 3 else 1.0)
        if patch == 0:
            raise ValueError(
                f"train.patch_stages {list(stage)} takes whole frames: set data.patch_size: 0 so the dataset "
                "hands out whole images"
            )
        if patch > data.patch_size * scale:
            raise ValueError(
                f"the coarse-to-fine patch {patch} at scale {scale} needs "
                f"data.patch_size >= {math.ceil(patch / scale)}, "
                f"got {data.patch_size}; raise data.patch_size (0 = whole images) or lower train.patch_stages"
            )


def _readable(files: list[Path], skip_corrupt: bool, where: str) -> list[Path]:
    """``files`` that decode; unreadable ones are skipped with a warning (``skip_corrupt``) or stop the run, listed."""
    from semprior.data.datasets import find_unreadable, warn_skipped
    from semprior.data.io import ImageReadError

    bad = find_unreadable(files)
    if bad and not skip_corrupt:
        listing = "; ".join(f"{p} ({reason.split(': ', 1)[-1]})" for p, reason in sorted(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ImageReadError(
            f"{len(bad)} unreadable training file(s) in {where}: {listing}{more}; remove or replace them, or set "
            "data.skip_corrupt: true in the config (Python: skip_corrupt=True) to skip them with a warning"
        )
    warn_skipped(bad, where)
    return [f for f in files if f not in bad]


def make_validate(val: torch.utils.data.Dataset, batch_size: int = 4):
    """``validate(model) -> {"psnr", "ssim", "psnr_gtmean", "ssim_gtmean"}`` (means) on a fixed
    paired set: library metrics, default protocol, and the same with GT-mean correction (the gap
    between the two says how much of the error is global brightness)."""
    from semprior.metrics import ReferenceScorer

    items = [val[i] for i in range(len(val))]  # type: ignore[arg-type]
    if len({tuple(c["low"].shape) for c in items}) > 1:
        batch_size = 1  # whole images of different sizes cannot be stacked

    def validate(model: nn.Module) -> dict[str, float]:
        dev = next(model.parameters()).device
        scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "psnr_gtmean": [], "ssim_gtmean": []}
        for i in range(0, len(items), batch_size):
            chunk = items[i : i + batch_size]
            low = torch.stack([c["low"] for c in chunk]).to(dev)
            high = torch.stack([c["high"] for c in chunk]).to(dev)
            out = model(low).clamp(0, 1)
            scorer = ReferenceScorer(high)
            for suffix, gt_mean in (("", False), ("_gtmean", True)):
                scores["psnr" + suffix] += scorer.psnr(out, gt_mean).tolist()
                scores["ssim" + suffix] += scorer.ssim(out, gt_mean).tolist()
        return {k: sum(v) / len(v) for k, v in scores.items()}

    return validate


def run_training(
    run: RunConfig,
    prior=None,
    text_loss=None,
    steps: int | None = None,
    until: int | None = None,
    *,
    overwrite: bool = False,
    allow_changed: bool = False,
):
    """Build everything for ``run`` and train; returns ``(model, trainer, result)``.

    ``steps`` trains that many more steps; ``until`` stops once the run reaches that step of its
    schedule (the schedule itself is unchanged, so stopping at ``until`` and resuming later gives
    the same weights as one uninterrupted run).

    A fresh run (no ``run.resume``) into an ``out_dir`` that holds a run is refused before anything
    is built, unless ``overwrite``; a resume whose config differs from the checkpoint's is refused
    unless ``allow_changed`` (both are [`RunFolderError`][semprior.engine.run_folder.RunFolderError]s).
    These opt-ins are arguments (``--overwrite`` / ``--allow-changed`` on the command line), never
    YAML keys, so a config file cannot switch the protection off.
    """
    from semprior.engine.run_folder import check_run_folder
    from semprior.engine.trainer import Trainer, seed_everything

    check_run_folder(run.out_dir, resume=bool(run.resume), overwrite=overwrite)

    seed_everything(run.train.seed)
    model = build_model(run, prior, text_loss)
    started_from = init_weights(model, run) if (run.init and not run.resume) else None
    if run.init and run.resume:  # the weights come from the checkpoint; keep its record of where the run started
        from semprior.engine.checkpoint import load_checkpoint

        started_from = load_checkpoint(run.resume).get("init")
    train, val = build_data(run.data, run.train.seed)
    train_cfg = run.train
    if train_cfg.epochs:  # the trainer derives the same count; the default schedule below needs it now
        train_cfg = replace(train_cfg, steps=max(1, math.ceil(train_cfg.epochs * (len(train) // train_cfg.batch_size))))
    if getattr(_config_of(model), "coarse_to_fine", False) and not train_cfg.patch_stages and run.data.patch_size:
        p = run.data.patch_size
        train_cfg = replace(train_cfg, patch_stages=((0, min(p, max(16, p // 2))), (math.ceil(train_cfg.steps / 2), p)))
    _check_views(train_cfg, run.data)
    validate = make_validate(val, batch_size=2) if (val is not None and train_cfg.val_every) else None
    if train_cfg.val_every and validate is None:
        raise ValueError(
            "train.val_every > 0 needs a validation split: data.val_holdout (paired / LOL), data.val_low_dir + "
            "val_high_dir, or data.kind 'synthetic' with val_images >= 1"
        )
    from semprior.models import get_model_entry

    extra = {
        "model_name": run.model_name,
        "model_config": dataclasses.asdict(_config_of(model)),
        "prior": run.prior,
        "text": run.text,
        "data_config": dataclasses.asdict(run.data),
    }
    if started_from is not None:
        extra["init"] = started_from
    entry = get_model_entry(run.model_name)
    loss_fn = entry.training_loss
    data: torch.utils.data.Dataset | Mapping[str, torch.utils.data.Dataset] = train
    if entry.phases is not None:  # alternating multi-source training (SLLEN)
        sources: dict[str, torch.utils.data.Dataset] = {"train": train}
        if run.segmentation is not None:
            sources["segmentation"] = build_segmentation(run.segmentation, run.train.seed)
        loss_fn = entry.phases(model, sources)
        if run.phases:
            loss_fn = loss_fn.with_steps(run.phases)
        data = sources
    trainer = Trainer(
        model,
        loss_fn,
        data,
        train_cfg,
        out_dir=Path(run.out_dir),
        validate=validate,
        monitor="psnr",
        mode="max",
        extra=extra,
        overwrite=overwrite,
    )
    if run.resume:
        trainer.resume(run.resume, allow_changed=allow_changed)
    if until is not None:
        left = max(0, int(until) - trainer.step)
        steps = left if steps is None else min(steps, left)
    result = trainer.fit(steps)
    return model, trainer, result
