"""One vocabulary for model configs (`width`, `depth`, `heads`, `blocks`, `stages`), and old names at
every boundary that reads a config: `from_dict`, presets, `create_model`, `from_pretrained`,
`load_model` on trainer checkpoints, `semprior train` YAML + `--resume`, the CLI's `--checkpoint`."""

from __future__ import annotations

import dataclasses
import json
import typing
import warnings

import pytest
import torch

import semprior
from semprior._config import from_dict, rename_fields
from semprior.cli.main import main
from semprior.engine.checkpoint import save_checkpoint
from semprior.hub import load_model
from semprior.models.deepspg import DeepSPGConfig
from semprior.models.registry import MODELS, list_models
from semprior.models.retinexformer import RetinexformerConfig

#: DeepSPG's tiny config in the names written before the rename
OLD_TINY = {"channels": 8, "heads": [1, 1, 1], "retinex_channels": 4, "illum_channels": 4}
NEW_TINY = {"width": 8, "heads": (1, 1, 1), "retinex_width": 4, "illum_width": 4}
X = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))

#: field names that mean "a width" or "a depth" in other codebases; semprior says width / depth / blocks / stages
FORBIDDEN = {
    "channels",
    "n_feat",
    "nf",
    "dim",
    "base_dim",
    "base_channels",
    "num_channels",
    "num_features",
    "feat",
    "level",
    "levels",
    "num_levels",
    "n_levels",
    "num_blocks",
    "n_blocks",
    "stage",
    "num_stages",
    "num_heads",
    "n_heads",
}
#: channel counts of the image (not widths of the network)
IMAGE_CHANNELS = {"in_channels", "out_channels"}


def _old_name_warnings(caught) -> list[str]:
    return [
        str(w.message) for w in caught if issubclass(w.category, DeprecationWarning) and "was renamed" in str(w.message)
    ]


def _out(model):
    with torch.no_grad():
        return model(X)


# ------------------------------------------------------------------------------ the vocabulary
@pytest.mark.parametrize("name", list_models())
def test_every_registered_config_speaks_the_vocabulary(name):
    cls = MODELS[name].config_cls
    names = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    bad = sorted(names & FORBIDDEN)
    assert not bad, (
        f"{cls.__name__} uses {bad}: write width (base channels), depth (down-samplings), blocks, stages, heads"
    )
    channel_fields = sorted(n for n in names - IMAGE_CHANNELS if "channel" in n or n.endswith(("_dim", "_feat")))
    allowed = {"context_dim"}  # CUGD: the channels of the prior's features it reads (an input, not a width)
    assert set(channel_fields) <= allowed, (
        f"{cls.__name__} names a width {channel_fields}: use width / <part>_width (docs/models.md, vocabulary)"
    )
    for key in ("width", "depth", "stages") + tuple(n for n in names if n.endswith("_width")):
        if key in names:
            assert hints[key] is int, f"{cls.__name__}.{key} must be an int"
    renamed = getattr(cls, "RENAMED_FIELDS", {})
    assert set(renamed.values()) <= names and not set(renamed) & names, renamed


WITH_WIDTH = [n for n in list_models() if "width" in {f.name for f in dataclasses.fields(MODELS[n].config_cls)}]


@pytest.mark.parametrize("name", WITH_WIDTH)
def test_width_means_the_channels_of_the_first_level(name):
    assert {"deepspg", "retinexformer", "sllen", "cugd"} <= set(WITH_WIDTH)
    """The convolution that reads the image (3 channels, or 6 with a condition) gives ``width`` channels."""
    entry = MODELS[name]
    for width in (8, 16):
        model = semprior.create_model(name, **{**entry.tiny, "width": width})
        firsts = {m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels in (3, 6)}
        assert width in firsts, f"{name}: width={width} but the image-reading convs give {sorted(firsts)}"


# ------------------------------------------------------------------------------ old names
def test_old_deepspg_names_map_with_a_warning_naming_the_new_key():
    with pytest.warns(DeprecationWarning) as caught:
        cfg = from_dict(DeepSPGConfig, OLD_TINY)
    assert cfg == DeepSPGConfig(**NEW_TINY)
    msgs = _old_name_warnings(caught)
    assert any("'channels' was renamed to 'width'" in m for m in msgs)
    assert any("'retinex_channels' was renamed to 'retinex_width'" in m for m in msgs)
    assert any("'illum_channels' was renamed to 'illum_width'" in m for m in msgs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names: no warning
        assert DeepSPGConfig.from_dict(cfg.to_dict()) == cfg
    assert "channels" not in cfg.to_dict() and cfg.to_dict()["width"] == 8


def test_old_and_new_name_together():
    with pytest.raises(ValueError, match=r"both 'channels': 8 \(the old name\) and 'width': 16.*keep only 'width'"):
        from_dict(DeepSPGConfig, {"channels": 8, "width": 16})
    with pytest.raises(ValueError, match="both 'n_feat'"):
        RetinexformerConfig.from_dict({"n_feat": 8, "width": 4})
    with pytest.raises(ValueError, match="both 'channels'"):
        semprior.create_model("deepspg", prior="none", channels=8, width=16)
    with pytest.warns(DeprecationWarning, match="'channels' was renamed"):  # the same value twice: only the warning
        assert from_dict(DeepSPGConfig, {"channels": 8, "width": 8}).width == 8


def test_presets_and_create_model_take_old_names():
    with pytest.warns(DeprecationWarning, match="'channels' was renamed to 'width'"):
        assert DeepSPGConfig.preset("deepspg-large", channels=16).width == 16
    with pytest.warns(DeprecationWarning, match="'channels' was renamed"):
        model = semprior.create_model("deepspg", prior="none", **OLD_TINY)  # not a clash with the preset's width
    assert model.config.width == 8 and model.config.retinex_width == 4
    with pytest.warns(DeprecationWarning, match="'level' was renamed to 'depth'"):
        assert RetinexformerConfig.from_dict({"n_feat": 8, "num_blocks": [1, 1], "level": 1}).depth == 1


def test_the_warning_points_at_the_callers_line():
    """Attributed to the first frame outside semprior, so Python shows it by default in a script or the CLI."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        semprior.create_model("deepspg", prior="none", **OLD_TINY)
    assert caught and all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]


def test_rename_fields_leaves_the_input_alone_and_refuses_non_mappings():
    data = {"channels": 8}
    with pytest.warns(DeprecationWarning):
        assert rename_fields(DeepSPGConfig, data) == {"width": 8}
    assert data == {"channels": 8}
    with pytest.raises(ValueError, match="must be a mapping, got list"):
        from_dict(DeepSPGConfig, [("width", 8)])


def _old_trainer_checkpoint(path, **extra):
    torch.manual_seed(0)
    model = semprior.create_model("deepspg", prior="none", **NEW_TINY).eval()
    old_cfg = {
        ("channels" if k == "width" else k.replace("_width", "_channels")): v for k, v in model.config.to_dict().items()
    }
    assert "channels" in old_cfg and "width" not in old_cfg
    save_checkpoint(
        {"model": model.state_dict(), "model_config": old_cfg, "prior": "none", "text": "none", **extra}, path
    )
    return model


@pytest.mark.parametrize("model_name", [None, "deepspg"])  # checkpoints before model_name existed, and after
def test_old_trainer_checkpoint_loads(tmp_path, model_name):
    model = _old_trainer_checkpoint(tmp_path / "last.pt", **({"model_name": model_name} if model_name else {}))
    with pytest.warns(DeprecationWarning, match="'channels' was renamed to 'width'"):
        back = load_model(tmp_path / "last.pt")
    assert back.config == model.config and torch.equal(_out(back), _out(model))
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="does not match the DeepSPG"):
        load_model(
            tmp_path / "last.pt", width=16
        )  # the override wins over the file's old name; the strict load refuses
    with pytest.warns(DeprecationWarning):
        assert load_model(tmp_path / "last.pt", backend="reference").config.backend == "reference"


def test_old_save_pretrained_folder_loads(tmp_path):
    torch.manual_seed(0)
    model = semprior.create_model("deepspg", prior="none", **NEW_TINY).eval()
    folder = semprior.save_pretrained(model, tmp_path / "m")
    rec = json.loads((folder / "config.json").read_text())
    assert rec["config"]["width"] == 8 and "channels" not in rec["config"]
    rec["config"] = {("channels" if k == "width" else k): v for k, v in rec["config"].items()}
    (folder / "config.json").write_text(json.dumps(rec))
    for load in (semprior.from_pretrained, load_model, lambda p: semprior.create_model("deepspg", pretrained=p)):
        with pytest.warns(DeprecationWarning, match="'channels' was renamed to 'width'"):
            back = load(folder)
        assert back.config == model.config and torch.equal(_out(back), _out(model))


def test_cli_checkpoint_with_old_names(tmp_path):
    _old_trainer_checkpoint(tmp_path / "old.pt")
    from semprior.data.io import write_image

    write_image(tmp_path / "in.png", X[0] * 0.2)
    with pytest.warns(DeprecationWarning, match="'channels' was renamed"):
        rc = main(
            [
                "enhance",
                str(tmp_path / "in.png"),
                "-o",
                str(tmp_path / "out"),
                "--checkpoint",
                str(tmp_path / "old.pt"),
                "--no-progress",
            ]
        )
    assert rc == 0 and (tmp_path / "out" / "in.png").is_file()


def test_train_yaml_with_old_names_resumes_an_old_checkpoint(tmp_path):
    """A run started before the rename: its YAML and its last.pt say ``channels``; resume continues it."""
    yaml_text = (
        "model: {name: deepspg, channels: 8, heads: [1, 1, 1], retinex_channels: 4, illum_channels: 4}\n"
        "prior: none\ntext: none\n"
        "data: {kind: synthetic, patch_size: 16, length: 4, val_images: 0}\n"
        "train: {steps: 3, batch_size: 2, ckpt_every: 1, val_every: 0, progress: false}\n"
    )
    (tmp_path / "run.yaml").write_text(yaml_text)
    with pytest.warns(DeprecationWarning, match="'channels' was renamed to 'width'"):
        assert (
            main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "a"), "--until", "2"]) == 0
        )
    ck = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert ck["step"] == 2 and ck["model_config"]["width"] == 8
    ck["model_config"] = {("channels" if k == "width" else k): v for k, v in ck["model_config"].items()}
    torch.save(ck, tmp_path / "old_last.pt")  # as the runs started before the rename wrote it
    with pytest.warns(DeprecationWarning):
        assert (
            main(
                [
                    "train",
                    "--config",
                    str(tmp_path / "run.yaml"),
                    "--out",
                    str(tmp_path / "a"),
                    "--resume",
                    str(tmp_path / "old_last.pt"),
                ]
            )
            == 0
        )
    done = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert done["step"] == 3 and done["model_config"]["width"] == 8 and "channels" not in done["model_config"]


def test_run_config_shows_the_current_names():
    """`semprior train --print-config` and the saved run config name the fields the model is built from."""
    from semprior.engine.recipe import RunConfig

    with pytest.warns(DeprecationWarning, match="'channels' was renamed to 'width'"):
        run = RunConfig(model={"name": "deepspg", "channels": 8}, prior="none", text="none")
    assert run.model == {"name": "deepspg", "width": 8}
    assert run.model_config().width == 8
