"""The training recipe as data: [`RunConfig`][semprior.engine.recipe.RunConfig] (YAML 1:1) -> priors, model, data, trainer.

Used by ``semprior train --config run.yaml`` and ``examples/deepspg_full.py``. Models and priors
are named as in the model registry (`semprior.models.registry`); [`TEXT_LOSSES`][semprior.engine.recipe.TEXT_LOSSES] names
DeepSPG's text prior. Python users pass component objects to the models directly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from semprior._config import rename_fields
from semprior.data.synthesis import LowLightConfig
from semprior.engine.trainer import TrainConfig

__all__ = ["DataConfig", "SegmentationDataConfig", "RunConfig", "TEXT_LOSSES", "build_prior", "build_text_loss",
           "build_data", "build_segmentation", "build_model", "init_weights", "make_validate", "run_training"]

#: text-loss name -> description (the text prior is a training loss, not part of the model)
TEXT_LOSSES = {
    "none": "no text prior",
    "clip": "CLIPPromptLoss ViT-B-16 with OpenAI weights (file ViT-B-16.pt in the weights directory)",
}


@dataclass(frozen=True)
class DataConfig:
    """Where training pairs come from.

    Attributes:
        kind: ``"synthetic"`` (clean photos + [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light]),
            ``"paired"`` (``low_dir``/``high_dir``), ``"lol-v1"`` or ``"lol-v2"`` (``root``).
        root: synthetic: a folder of clean photos (``None`` = photos bundled with scikit-image);
            LOL: the dataset root.
        low_dir, high_dir: folders for ``kind="paired"``.
        subset: LOL-v2 subset (``"real"`` or ``"synthetic"``).
        patch_size: the crop the dataset takes of each training pair (the largest coarse-to-fine
            stage must fit in it); ``0`` = whole images (needed for whole-frame stages, ``train.patch_stages``
            entries with patch 0; the images must then share one size, as LOL's do).
        cache: paired / LOL only: keep the decoded training pairs in memory after their first use
            (``PairedFolder(cache=True)``; LOL-v1 takes about 0.7 GB), so later epochs decode no PNG.
        length: synthetic items per epoch (default: 64 x number of photos).
        val_images: synthetic only: photos held out for validation (taken from the end of the list).
        val_items: synthetic validation pairs (fixed crops and degradations).
        val_size: crop size of the synthetic validation pairs.
        val_holdout: paired / LOL only: hold out at least this many training pairs for validation
            (removed from the training set; validation runs on the whole images). ``0`` = no held-out split.
        val_split: how the held-out pairs are chosen. ``"scenes"`` (default): whole scenes of
            near-duplicate frames ([`group_scenes`][semprior.data.scenes.group_scenes]), taken in a fixed
            name-hash order until ``val_holdout`` pairs are held out
            ([`scene_holdout`][semprior.data.scenes.scene_holdout]), so no scene is on both sides.
            ``"names"``: single pairs with the smallest ``sha256("semprior-val" + name)``
            ([`holdout_split`][semprior.data.datasets.holdout_split]); frames of one scene can then land on both
            sides (the split of runs made before ``"scenes"`` existed).
        val_low_dir, val_high_dir: a separate paired validation folder instead of a held-out part
            (whole images).
        synthesis: the low-light synthesis parameters.
        skip_corrupt: skip pairs (or photos) with an unreadable file, with one warning listing them.
            Without it, every training and validation file is decoded before step 0 and an
            unreadable one stops the run there, listing the files.
    """

    kind: str = "synthetic"
    root: str | None = None
    low_dir: str | None = None
    high_dir: str | None = None
    subset: str = "real"
    patch_size: int = 128
    length: int | None = None
    val_images: int = 1
    val_items: int = 8
    val_size: int = 128
    val_holdout: int = 0
    val_split: str = "scenes"
    cache: bool = False
    val_low_dir: str | None = None
    val_high_dir: str | None = None
    synthesis: LowLightConfig = field(default_factory=LowLightConfig)
    skip_corrupt: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("synthetic", "paired", "lol-v1", "lol-v2"):
            raise ValueError(f"data.kind must be 'synthetic', 'paired', 'lol-v1' or 'lol-v2', got {self.kind!r}")
        if self.kind == "paired" and (self.low_dir is None or self.high_dir is None):
            raise ValueError("data.kind 'paired' needs data.low_dir and data.high_dir")
        if self.kind.startswith("lol") and self.root is None:
            raise ValueError(f"data.kind {self.kind!r} needs data.root (the dataset's top folder)")
        if isinstance(self.synthesis, dict):
            object.__setattr__(self, "synthesis", LowLightConfig(**self.synthesis))
        for name in ("root", "low_dir", "high_dir", "val_low_dir", "val_high_dir"):  # "~/data/LOL" works in YAML
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(Path(getattr(self, name)).expanduser()))
        if (self.val_low_dir is None) != (self.val_high_dir is None):
            raise ValueError("data.val_low_dir and data.val_high_dir go together; give both or neither")
        if self.val_split not in ("scenes", "names"):
            raise ValueError(f"data.val_split must be 'scenes' or 'names', got {self.val_split!r}")
        if isinstance(self.patch_size, bool) or int(self.patch_size) < 0:
            raise ValueError(f"data.patch_size must be >= 1, or 0 for whole images, got {self.patch_size!r}")
        if self.val_holdout < 0:
            raise ValueError(f"data.val_holdout must be >= 0, got {self.val_holdout}")
        if self.kind == "synthetic" and (self.val_holdout or self.val_low_dir):
            raise ValueError("data.val_holdout / val_low_dir are for paired and LOL data; synthetic data uses val_images")
        if self.val_holdout and self.val_low_dir:
            raise ValueError("choose one validation source: data.val_holdout (part of the training pairs) or data.val_low_dir")


@dataclass(frozen=True)
class SegmentationDataConfig:
    """A segmentation data source (``segmentation:`` in the YAML), for models trained in alternation with it (SLLEN).

    Attributes:
        kind: ``"folder"`` ([`SegmentationFolder`][semprior.data.segmentation.SegmentationFolder]: images and
            one-channel label PNGs matched by name) or ``"synthetic"``
            ([`SyntheticSegmentation`][semprior.data.segmentation.SyntheticSegmentation], procedural shapes; tests and demos).
        image_dir, mask_dir: folders for ``kind="folder"`` (searched recursively).
        mask_glob: which files of ``mask_dir`` are label maps (Cityscapes: ``"*_labelTrainIds.png"``).
        strip: name suffixes removed before matching images to label maps.
        num_classes: label classes; must equal the model's ``num_classes``.
        ignore_index: label excluded from the loss.
        patch_size: random square crop of the folder images; the synthetic images' size.
        length: synthetic items.
        low_light: darken the images with [`synthesize_low_light`][semprior.data.synthesis.synthesize_low_light]
            ([`LowLightSegmentation`][semprior.data.segmentation.LowLightSegmentation]), so the shared
            encoder sees dark inputs in both tasks.
        synthesis: the low-light synthesis parameters.
    """

    kind: str = "folder"
    image_dir: str | None = None
    mask_dir: str | None = None
    mask_glob: str = "*.png"
    strip: tuple[str, ...] = ("_leftImg8bit", "_gtFine_labelTrainIds")
    num_classes: int = 19
    ignore_index: int = 255
    patch_size: int = 128
    length: int = 64
    low_light: bool = True
    synthesis: LowLightConfig = field(default_factory=LowLightConfig)

    def __post_init__(self) -> None:
        if self.kind not in ("folder", "synthetic"):
            raise ValueError(f"segmentation.kind must be 'folder' or 'synthetic', got {self.kind!r}")
        if self.kind == "folder" and (self.image_dir is None or self.mask_dir is None):
            raise ValueError("segmentation.kind 'folder' needs segmentation.image_dir and segmentation.mask_dir")
        for name in ("image_dir", "mask_dir"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, str(Path(getattr(self, name)).expanduser()))
        object.__setattr__(self, "strip", tuple(self.strip))
        if isinstance(self.synthesis, dict):
            object.__setattr__(self, "synthesis", LowLightConfig(**self.synthesis))


def build_segmentation(seg: SegmentationDataConfig, seed: int = 0) -> torch.utils.data.Dataset:
    """The segmentation dataset of ``seg`` (darkened when ``seg.low_light``)."""
    from semprior.data.segmentation import LowLightSegmentation, SegmentationFolder, SyntheticSegmentation

    if seg.kind == "synthetic":
        ds: Any = SyntheticSegmentation(seg.length, size=seg.patch_size, num_classes=seg.num_classes, seed=seed)
    else:
        ds = SegmentationFolder(seg.image_dir, seg.mask_dir, seg.num_classes, seg.ignore_index, seg.mask_glob,  # type: ignore[arg-type]
                                seg.strip, patch_size=seg.patch_size, seed=seed)
    return LowLightSegmentation(ds, seg.synthesis, seed + 104_729) if seg.low_light else ds


@dataclass(frozen=True)
class RunConfig:
    """One training run. YAML maps 1:1 onto it (``semprior train --config run.yaml``)::

        model: {name: deepspg}   # a trainable registry name (deepspg, deepspg-large, retinexformer, sllen, cugd)
        prior: region            # a registry prior name: none | region | hrnet | sam

        text: none               # none | clip                (DeepSPG only)
        weights_dir: null        # for hrnet / clip (else $SEMPRIOR_WEIGHTS)
        data: {kind: lol-v1, root: ~/data/LOL, patch_size: 128, val_holdout: 20}
        train: {steps: 2000, batch_size: 16, patch_stages: [[0, 64], [1000, 128]], val_every: 500}
        out_dir: runs/deepspg
        init: null               # fine-tune: start from these weights (a model file, or "shipped" / "shipped:TAG")
        # models trained in alternation (sllen) also read:
        segmentation: {kind: folder, image_dir: ..., mask_dir: ..., num_classes: 19}
        phases: {lle: 1, seg: 1}  # consecutive steps of each phase (default: the model's)

    ``model.name`` picks the architecture from the model registry
    ([`semprior.models.registry.list_models`][semprior.models.registry.list_models]; classical methods have nothing to train); every
    other key of ``model`` is a field of its config dataclass (e.g.
    [`DeepSPGConfig`][semprior.models.deepspg_config.DeepSPGConfig]). ``prior`` names a registry prior
    ([`semprior.models.registry.PRIORS`][semprior.models.registry.PRIORS]); ``text`` a [`TEXT_LOSSES`][semprior.engine.recipe.TEXT_LOSSES] entry (DeepSPG only).
    A model whose registry entry has ``phases`` (SLLEN) trains on that alternating schedule over
    ``data`` (the source ``"train"``) and ``segmentation`` ([`SegmentationDataConfig`][semprior.engine.recipe.SegmentationDataConfig]).

    ``init`` starts the run from trained weights instead of random ones (fine-tuning, or a second
    stage of a schedule): any file [`load_model`][semprior.hub.load_model] reads (a
    ``save_pretrained`` folder, ``model.safetensors``, a trainer ``best.pt`` / ``last.pt`` (its raw
    weights), an official Retinexformer ``.pth``), or ``shipped`` / ``shipped:TAG`` for the weights
    that ship with semprior for ``model.name``. Only the weights are taken: the optimizer, the
    schedule and the step start afresh, and every trainable parameter must come from the file
    (see [`init_weights`][semprior.engine.recipe.init_weights]). ``resume`` continues a run exactly and
    ignores ``init`` (the checkpoint already holds the weights).
    """

    model: dict[str, Any] = field(default_factory=dict)
    prior: str = "region"
    text: str = "none"
    weights_dir: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "runs/deepspg"
    resume: str | None = None
    init: str | None = None
    segmentation: SegmentationDataConfig | None = None
    phases: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from semprior.models.registry import PRIORS, get_model_entry, list_models

        if self.prior not in PRIORS:
            raise ValueError(f"prior must be one of {sorted(PRIORS)}, got {self.prior!r}")
        if self.text not in TEXT_LOSSES:
            raise ValueError(f"text must be one of {sorted(TEXT_LOSSES)}, got {self.text!r}")
        if not isinstance(self.model, dict):
            raise ValueError(f"model must be a mapping like {{name: deepspg}}, got {type(self.model).__name__}")
        trainable = [n for n in list_models() if get_model_entry(n).training_loss is not None]
        if self.model_name not in trainable:
            raise ValueError(f"model.name must be one of {trainable}, got {self.model_name!r}")
        entry = get_model_entry(self.model_name)
        # old field names (e.g. DeepSPG's `channels`) become the current ones here, so
        # `--print-config` and the saved run config show what the model is built from
        renamed = rename_fields(entry.config_cls, {k: v for k, v in self.model.items() if k != "name"}, where="model")
        object.__setattr__(self, "model", {"name": self.model_name, **renamed})
        if entry.prior is None and self.prior != "none":
            raise ValueError(f"{self.model_name} takes no prior: set prior: none (got prior={self.prior!r})")
        if not self.model_name.startswith("deepspg") and self.text != "none":
            raise ValueError(f"the text prior is DeepSPG's loss term: set text: none for {self.model_name}")
        if entry.phases is None and (self.segmentation is not None or self.phases):
            raise ValueError(f"{self.model_name} trains on one data source with one loss: drop `segmentation` / `phases` "
                             "(they are for models trained in alternation, e.g. sllen)")
        if not isinstance(self.phases, dict) or not all(isinstance(v, int) and v >= 1 for v in self.phases.values()):
            raise ValueError(f"phases must map phase names to step counts >= 1, e.g. {{lle: 1, seg: 1}}; got {self.phases!r}")

    @property
    def model_name(self) -> str:
        return str(self.model.get("name", "deepspg"))

    def model_config(self):
        """The model's config: the registry preset of ``model.name``, then the other ``model`` keys.

        For DeepSPG the prior switches follow ``prior`` / ``text``.
        """
        from semprior.models.registry import get_model_entry

        overrides = {k: v for k, v in self.model.items() if k != "name"}
        entry = get_model_entry(self.model_name)
        if not self.model_name.startswith("deepspg"):
            return entry.config(None if self.prior == "none" else self.prior, **overrides)
        switches = {"image_prior": self.prior != "none", "text_prior": self.text != "none"}
        cfg = entry.config(self.prior, **{**switches, **overrides})
        if (cfg.image_prior, cfg.text_prior) != (switches["image_prior"], switches["text_prior"]):
            raise ValueError(
                f"model.image_prior/text_prior ({cfg.image_prior}/{cfg.text_prior}) contradict prior={self.prior!r} / "
                f"text={self.text!r}; set the switches through `prior` and `text` only"
            )
        return cfg


def build_prior(name: str, weights_dir: str | None = None):
    """The registry prior ``name`` (`semprior.models.registry.build_prior`); a missing weight file
    says that the weight-free prior is an explicit alternative."""
    from semprior.models.registry import build_prior as registry_prior

    try:
        return registry_prior(name, weights_dir)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc}. The weight-free prior is an explicit choice instead: set `prior: region` in the config"
        ) from exc


def build_text_loss(name: str, weights_dir: str | None = None):
    """``"none"`` -> ``None``; ``"clip"`` -> [`CLIPPromptLoss`][semprior.losses.clip_prompt.CLIPPromptLoss] from the local ViT-B-16 file."""
    if name == "none":
        return None
    if name == "clip":
        from semprior.losses.clip_prompt import CLIPPromptLoss
        from semprior.weights import resolve_weights

        try:
            path = resolve_weights("clip_vit_b16_openai", weights_dir=weights_dir)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{exc}. To train without the text prior, set `text: none` in the config") from exc
        return CLIPPromptLoss("ViT-B-16", pretrained=path)
    raise ValueError(f"unknown text loss {name!r}; choose one of {sorted(TEXT_LOSSES)}")


def build_model(run: RunConfig, prior=None, text_loss=None) -> nn.Module:
    """The model of ``run`` (priors built from their names unless given)."""
    from semprior.models.registry import get_model_entry

    from semprior._memory import check_model_fits

    cfg = run.model_config()
    prior = prior if prior is not None else build_prior(run.prior, run.weights_dir)
    if run.model_name.startswith("deepspg"):
        from semprior.models.deepspg import DeepSPG

        build = lambda c: DeepSPG(c, prior=prior)  # noqa: E731
    else:
        build = lambda c: get_model_entry(run.model_name).build(c, prior)  # noqa: E731
    # weights, gradients and Adam's two moments: refused before anything is allocated
    check_model_fits(build, cfg, "model", copies=4, what="weights, gradients and Adam's two moments")
    if run.model_name.startswith("deepspg"):
        text_loss = text_loss if text_loss is not None else build_text_loss(run.text, run.weights_dir)
        return DeepSPG(cfg, prior=prior, text_loss=text_loss)
    return build(cfg)


def init_weights(model: nn.Module, run: RunConfig) -> dict[str, str]:
    """Load ``run.init`` into ``model`` (before training); returns what the checkpoints record of it.

    The file is read by [`load_model`][semprior.hub.load_model] with the prior it records, so a
    file trained with another prior or another architecture is refused with the reason. Every
    trainable parameter of ``model`` must be in the file; frozen parts that inference does not
    need (the CLIP text loss) may be missing.
    """
    import hashlib

    from semprior.hub import load_model
    from semprior.models.shipped import shipped_path

    spec = str(run.init)
    if spec == "shipped" or spec.startswith("shipped:"):
        path = shipped_path(run.model_name, spec.partition(":")[2] or None)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"init: {path} not found; give a model file (save_pretrained folder, .safetensors, "
                                    f"best.pt/last.pt) or 'shipped' for the weights that ship with semprior")
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
        mine, theirs = dataclasses.asdict(model.config), dataclasses.asdict(source.config)
        differ = [f"{k} (file {theirs.get(k)!r}, run {v!r})" for k, v in mine.items() if theirs.get(k) != v and k != "loss"]
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


def build_data(data: DataConfig, seed: int = 0) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
    """``(train, validation)`` datasets.

    Synthetic: photos held out from the end of the list. Paired / LOL: ``data.val_holdout`` pairs
    held out by name hash (removed from training), or the folder ``data.val_low_dir`` /
    ``val_high_dir``; ``None`` when neither is set.
    """
    from semprior.data import LOLv1, LOLv2, PairedFolder, SyntheticPairs, default_clean_images, holdout_split

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
            raise ValueError(f"data.val_images={data.val_images} must leave at least one of the {len(names)} photos for training")
        train_names = names[: len(names) - data.val_images]
        val_names = names[len(names) - data.val_images:]
        length = data.length or 64 * len(train_names)
        train = SyntheticPairs({n: photos[n] for n in train_names}, data.patch_size, data.synthesis, length, seed)
        val = None
        if val_names:
            val = SyntheticPairs({n: photos[n] for n in val_names}, data.val_size, data.synthesis, data.val_items,
                                 seed + 7919, flip=False)
        return train, val
    if data.kind == "paired":
        cls, args, kw = PairedFolder, (data.low_dir, data.high_dir), {}
    elif data.kind == "lol-v1":
        cls, args, kw = LOLv1, (data.root, "train"), {}
    else:
        cls, args, kw = LOLv2, (data.root, data.subset, "train"), {}
    held: list[str] = []
    if data.val_holdout:
        everything = cls(*args, **kw)
        keys = [everything.key_fn(p[0].stem) for p in everything.pairs]
        if data.val_split == "names":
            held = holdout_split(keys, data.val_holdout)
        else:
            from semprior.data.scenes import group_scenes, scene_holdout

            held = scene_holdout(keys, group_scenes([p[1] for p in everything.pairs]), data.val_holdout)
    train = cls(*args, **kw, patch_size=data.patch_size or None, flip=True, seed=seed, drop=held, cache=data.cache,
                skip_corrupt=data.skip_corrupt)
    val = None
    if held:
        val = cls(*args, **kw, keep=held, skip_corrupt=data.skip_corrupt)
    elif data.val_low_dir is not None:
        val = PairedFolder(data.val_low_dir, data.val_high_dir, skip_corrupt=data.skip_corrupt)
    if not data.skip_corrupt:  # fail before step 0, not hours in
        for ds in (train, val):
            if ds is not None:
                _readable(sorted({f for pair in ds.pairs for f in pair}), False, f"{ds.low_dir} / {ds.high_dir}")
    return train, val


def _check_views(train_cfg: TrainConfig, data: DataConfig) -> None:
    """Each coarse-to-fine view must fit in what the dataset hands out (a ``data.patch_size`` crop, or whole images)."""
    if not data.patch_size or data.kind == "synthetic":
        return
    for stage in train_cfg.patch_stages:
        patch, scale = stage[1], (stage[2] if len(stage) == 3 else 1.0)
        if patch == 0:
            raise ValueError(f"train.patch_stages {list(stage)} takes whole frames: set data.patch_size: 0 so the dataset "
                             "hands out whole images")
        if patch > data.patch_size * scale:
            raise ValueError(
                f"the coarse-to-fine patch {patch} at scale {scale} needs data.patch_size >= {math.ceil(patch / scale)}, "
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
            chunk = items[i:i + batch_size]
            low = torch.stack([c["low"] for c in chunk]).to(dev)
            high = torch.stack([c["high"] for c in chunk]).to(dev)
            out = model(low).clamp(0, 1)
            scorer = ReferenceScorer(high)
            for suffix, gt_mean in (("", False), ("_gtmean", True)):
                scores["psnr" + suffix] += scorer.psnr(out, gt_mean).tolist()
                scores["ssim" + suffix] += scorer.ssim(out, gt_mean).tolist()
        return {k: sum(v) / len(v) for k, v in scores.items()}

    return validate


def run_training(run: RunConfig, prior=None, text_loss=None, steps: int | None = None, until: int | None = None,
                 *, overwrite: bool = False, allow_changed: bool = False):
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
    train, val = build_data(run.data, run.train.seed)
    train_cfg = run.train
    if train_cfg.epochs:  # the trainer derives the same count; the default schedule below needs it now
        train_cfg = replace(train_cfg, steps=max(1, math.ceil(train_cfg.epochs * (len(train) // train_cfg.batch_size))))
    if getattr(model.config, "coarse_to_fine", False) and not train_cfg.patch_stages and run.data.patch_size:
        p = run.data.patch_size
        train_cfg = replace(train_cfg, patch_stages=((0, min(p, max(16, p // 2))), (math.ceil(train_cfg.steps / 2), p)))
    _check_views(train_cfg, run.data)
    validate = make_validate(val, batch_size=2) if (val is not None and train_cfg.val_every) else None
    if train_cfg.val_every and validate is None:
        raise ValueError(
            "train.val_every > 0 needs a validation split: data.val_holdout (paired / LOL), data.val_low_dir + "
            "val_high_dir, or data.kind 'synthetic' with val_images >= 1"
        )
    from semprior.models.registry import get_model_entry

    extra = {"model_name": run.model_name, "model_config": dataclasses.asdict(model.config), "prior": run.prior,
             "text": run.text, "data_config": dataclasses.asdict(run.data)}
    if started_from is not None:
        extra["init"] = started_from
    entry = get_model_entry(run.model_name)
    loss_fn, data = entry.training_loss, train
    if entry.phases is not None:  # alternating multi-source training (SLLEN)
        sources = {"train": train}
        if run.segmentation is not None:
            sources["segmentation"] = build_segmentation(run.segmentation, run.train.seed)
        loss_fn = entry.phases(model, sources)
        if run.phases:
            loss_fn = loss_fn.with_steps(run.phases)
        data = sources
    trainer = Trainer(model, loss_fn, data, train_cfg, out_dir=Path(run.out_dir), validate=validate,
                      monitor="psnr", mode="max", extra=extra, overwrite=overwrite)
    if run.resume:
        trainer.resume(run.resume, allow_changed=allow_changed)
    if until is not None:
        left = max(0, int(until) - trainer.step)
        steps = left if steps is None else min(steps, left)
    result = trainer.fit(steps)
    return model, trainer, result
