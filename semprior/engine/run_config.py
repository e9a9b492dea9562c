"""A training run as data: [`RunConfig`][semprior.engine.run_config.RunConfig] (YAML 1:1) and the shipped recipes.

The training recipes ship inside the package (``semprior/configs/``; the repository's ``configs/``
is a link to it), so ``semprior train --config deepspg_lolv1`` works from a wheel as well as from a
clone. [`resolve_config`][semprior.engine.run_config.resolve_config] turns what the user typed into a
file; [`semprior.engine.recipe`][semprior.engine.recipe] builds and trains what a `RunConfig` names.

Examples:
    >>> "deepspg_lolv1" in shipped_recipes()
    True
    >>> resolve_config("deepspg_lolv1").name
    'deepspg_lolv1.yaml'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semprior._config import from_dict, load_yaml
from semprior.data.synthesis import LowLightConfig
from semprior.engine.train_config import TrainConfig
from semprior.losses.text import TEXT_LOSSES
from semprior.priors.registry import PRIORS

__all__ = [
    "RECIPES_DIR",
    "DataConfig",
    "RunConfig",
    "SegmentationDataConfig",
    "apply_overrides",
    "from_dict",
    "load_yaml",
    "resolve_config",
    "shipped_recipes",
]


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
            raise ValueError(
                "data.val_holdout / val_low_dir are for paired and LOL data; synthetic data uses val_images"
            )
        if self.val_holdout and self.val_low_dir:
            raise ValueError(
                "choose one validation source: data.val_holdout (part of the training pairs) or data.val_low_dir"
            )


@dataclass(frozen=True)
class SegmentationDataConfig:
    """A segmentation data source (``segmentation:`` in the YAML), for models trained in alternation with it (SLLEN).

    Attributes:
        kind: ``"folder"`` ([`SegmentationFolder`][semprior.data.segmentation.SegmentationFolder]: images and
            one-channel label PNGs matched by name) or ``"synthetic"``
            ([`SyntheticSegmentation`][semprior.data.segmentation.SyntheticSegmentation], procedural shapes; tests and
            demos).
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
    ([`semprior.models.registry.list_models`][semprior.models.registry.list_models]; classical methods have nothing to
    train); every other key of ``model`` is a field of its config dataclass (e.g.
    [`DeepSPGConfig`][semprior.models.deepspg_config.DeepSPGConfig]). ``prior`` names a registry prior
    ([`semprior.priors.registry.PRIORS`][semprior.priors.registry.PRIORS]); ``text`` a
    [`TEXT_LOSSES`][semprior.losses.text.TEXT_LOSSES] entry (models that take a text loss: DeepSPG). A model whose
    registry entry has ``phases`` (SLLEN) trains on that alternating schedule over ``data`` (the source ``"train"``) and
    ``segmentation`` ([`SegmentationDataConfig`][semprior.engine.run_config.SegmentationDataConfig]).

    ``init`` starts the run from trained weights instead of random ones (fine-tuning, or a second
    stage of a schedule): any file [`load_model`][semprior.models.io.load_model] reads (a
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
        from semprior.models import get_model_entry, list_models

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
        object.__setattr__(self, "model", {"name": self.model_name, **self.model})
        if entry.prior is None and self.prior != "none":
            raise ValueError(f"{self.model_name} takes no prior: set prior: none (got prior={self.prior!r})")
        if not entry.text and self.text != "none":
            raise ValueError(f"{self.model_name} takes no text loss: set text: none (got text={self.text!r})")
        if entry.phases is None and (self.segmentation is not None or self.phases):
            raise ValueError(
                f"{self.model_name} trains on one data source with one loss: drop `segmentation` / `phases` "
                "(they are for models trained in alternation, e.g. sllen)"
            )
        if not isinstance(self.phases, dict) or not all(isinstance(v, int) and v >= 1 for v in self.phases.values()):
            raise ValueError(
                f"phases must map phase names to step counts >= 1, e.g. {{lle: 1, seg: 1}}; got {self.phases!r}"
            )

    @property
    def model_name(self) -> str:
        return str(self.model.get("name", "deepspg"))

    def model_config(self):
        """The model's config: the registry preset of ``model.name``, then the other ``model`` keys.

        ``prior`` / ``text`` are the prior switch: the config fields that record it (DeepSPG's
        ``image_prior`` / ``text_prior``) follow them, and a ``model`` key that contradicts them is an error.
        """
        from semprior.models import get_model_entry

        overrides = {k: v for k, v in self.model.items() if k != "name"}
        return get_model_entry(self.model_name).config(overrides, prior=self.prior != "none", text=self.text != "none")


#: where the shipped training recipes live (inside the installed package)
RECIPES_DIR = Path(__file__).resolve().parent.parent / "configs"


def shipped_recipes() -> list[str]:
    """Names of the shipped recipes (``"deepspg_lolv1"``, ``"cpu/retinexformer_lolv1"``, ...), sorted."""
    return sorted(p.relative_to(RECIPES_DIR).with_suffix("").as_posix() for p in RECIPES_DIR.rglob("*.yaml"))


def resolve_config(name: str | Path) -> Path:
    """A YAML file from a path, or from the name of a shipped recipe (with or without ``.yaml``/``configs/``).

    An existing file wins; otherwise the name is looked up among
    [`shipped_recipes`][semprior.engine.run_config.shipped_recipes]. Neither is an error that lists the shipped names.
    """
    path = Path(name).expanduser()
    if path.is_file():
        return path
    key = Path(name).as_posix()
    for prefix in ("semprior/configs/", "configs/"):
        key = key.removeprefix(prefix)
    key = key.removesuffix(".yaml").removesuffix(".yml")
    if key in shipped_recipes():
        return RECIPES_DIR / f"{key}.yaml"
    raise FileNotFoundError(
        f"config file not found: {name} (nor a shipped recipe of that name); give a YAML path or a shipped recipe: "
        + ", ".join(shipped_recipes())
    )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """A copy of the YAML mapping ``raw`` with ``key.sub=value`` overrides applied (``semprior train --set``).

    Values are parsed as YAML (``train.lr=2e-4`` is a float, ``train.patch_stages=[[0,128]]`` a
    list, ``prior=none`` a string). Unknown keys are caught afterwards by ``from_dict``, which names
    the valid ones.

    Examples:
        >>> apply_overrides({"train": {"lr": 1e-3}}, ["train.lr=2e-4", "train.steps=10"])
        {'train': {'lr': 0.0002, 'steps': 10}}
    """
    import copy

    import yaml

    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or any(not k for k in key.strip().split(".")):
            raise ValueError(f"--set {item!r}: write KEY=VALUE with a dotted KEY, e.g. --set train.lr=2e-4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ValueError(f"--set {item!r}: the value is not valid YAML ({type(exc).__name__}); quote it") from None
        if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
            value = float(value)  # YAML 1.1 reads 2e-4 (no dot) as a string
        *parents, last = key.strip().split(".")
        node = out
        for i, k in enumerate(parents):
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ValueError(f"--set {item!r}: {'.'.join(parents[: i + 1])} is {child!r}, not a section")
            node = child
        node[last] = value
    return out
