"""semprior.models.io: the one checkpoint format and the one loader (official, trainer, bare files)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import semprior
from semprior.engine.checkpoint import save_checkpoint
from semprior.models.io import load_model, save_pretrained
from semprior.priors.base import PriorOutput, PriorSpec, SegPrior

TINY_RF = {"width": 4, "blocks": (1, 1, 1)}
TINY_DEEPSPG = {"width": 8, "heads": (1, 1, 1), "retinex_width": 4, "illum_width": 4}


def _out(model, x):
    with torch.no_grad():
        return model(x)


X = torch.rand(1, 3, 12, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("layout", ["params", "params_ema", "both", "module"])
def test_official_basicsr_files_load(tmp_path, layout):
    torch.manual_seed(0)
    ref = semprior.create_model("retinexformer", **TINY_RF).eval()
    sd = ref.state_dict()
    other = {k: v + 1 for k, v in sd.items()}
    obj = {
        "params": {"params": sd},
        "params_ema": {"params_ema": sd},
        "both": {"params": sd, "params_ema": other},
        "module": {"params": {"module." + k: v for k, v in sd.items()}},
    }[layout]
    torch.save(obj, tmp_path / "LOL_v1.pth")
    model = semprior.create_model("retinexformer", pretrained=tmp_path / "LOL_v1.pth", **TINY_RF)
    assert torch.equal(_out(model, X), _out(ref, X))  # "both": params is taken, as the official test script
    if layout == "both":
        ema = load_model(tmp_path / "LOL_v1.pth", param_key="params_ema", **TINY_RF)
        assert not torch.equal(_out(ema, X), _out(ref, X))


def test_tags_resolve_in_the_weights_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="LOL_v1.pth"):
        semprior.create_model("retinexformer", pretrained="lol-v1", weights_dir=tmp_path)
    torch.save({"params": semprior.create_model("retinexformer").state_dict()}, tmp_path / "LOL_v1.pth")
    model = semprior.create_model("retinexformer", pretrained="lol-v1", weights_dir=tmp_path)
    assert not model.training and sum(p.numel() for p in model.parameters()) == 1_605_701
    with pytest.raises(FileNotFoundError, match="neither an existing path"):
        semprior.create_model("retinexformer", pretrained="lol-v7")


def test_wrong_or_partial_weights_fail_loudly(tmp_path):
    sd = semprior.create_model("retinexformer", **TINY_RF).state_dict()
    sd.pop("body.0.denoiser.mapping.weight")
    torch.save({"params": sd}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match="mapping.weight"):
        load_model(tmp_path / "w.pth", **TINY_RF)
    torch.save({"params": semprior.create_model("retinexformer").state_dict()}, tmp_path / "full.pth")
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path / "full.pth", **TINY_RF)  # wrong architecture for the file
    torch.save(semprior.create_model("retinexformer", **TINY_RF).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="pass name="):
        load_model(tmp_path / "bare.pt")
    assert not load_model(tmp_path / "bare.pt", name="retinexformer", **TINY_RF).training


def test_deepspg_trainer_checkpoint_drops_the_text_prior(tmp_path):
    """`semprior train` checkpoints: the model by name, the prior by name, the text prior dropped."""
    torch.manual_seed(0)
    model = semprior.create_model("deepspg", **TINY_DEEPSPG).eval()
    cfg = {**model.config.to_dict(), "text_prior": True}  # trained with CLIP: inference does not need it
    save_checkpoint(
        {
            "model": model.state_dict(),
            "model_config": cfg,
            "model_name": "deepspg",
            "prior": "region",
            "text": "clip",
            "step": 3,
        },
        tmp_path / "best.pt",
    )
    back = load_model(tmp_path / "best.pt")
    assert back.prior is not None and not back.config.text_prior
    assert torch.equal(_out(back, X), _out(model, X))
    with pytest.raises(ValueError, match="image_prior"):
        load_model(tmp_path / "best.pt", prior="none")
    save_checkpoint({"model": model.state_dict(), "model_config": cfg, "prior": "region"}, tmp_path / "anon.pt")
    assert type(load_model(tmp_path / "anon.pt")).__name__ == "DeepSPG"  # no model_name: the config's keys tell
    save_checkpoint({"model": model.state_dict(), "model_config": {"width": 8}}, tmp_path / "vague.pt")
    with pytest.raises(ValueError, match="does not tell one model apart; pass name="):
        load_model(tmp_path / "vague.pt")


class _MeanPrior(SegPrior):
    def __init__(self, ch: int = 3) -> None:
        super().__init__(PriorSpec(f"mean{ch}", channels=(ch,) * 3, strides=(2, 4, 8), num_classes=ch))
        self.w = torch.nn.Parameter(torch.ones(ch, 3, 1, 1) / 3)

    def _forward(self, img):
        feats = [F.conv2d(F.avg_pool2d(img, s, ceil_mode=True), self.w) for s in (2, 4, 8)]
        return PriorOutput(feats, logits=feats[0])


def test_custom_prior_is_recorded_not_stored(tmp_path):
    torch.manual_seed(0)
    prior = _MeanPrior()
    model = semprior.create_model("deepspg", prior=prior, **TINY_DEEPSPG).eval()
    save_pretrained(model, tmp_path)
    rec = json.loads((tmp_path / "config.json").read_text())["prior"]
    assert rec["name"] is None and rec["class"] == "_MeanPrior" and rec["spec"]["channels"] == [3, 3, 3]
    with pytest.raises(ValueError, match="pass the same prior"):
        semprior.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="differs"):
        semprior.from_pretrained(tmp_path, prior=_MeanPrior(5))
    back = semprior.from_pretrained(tmp_path, prior=prior)
    assert torch.equal(_out(back, X), _out(model, X))


def test_region_prior_is_rebuilt_by_name(tmp_path):
    model = semprior.create_model("cugd", **{"width": 4, "depth": 1, "heads": 2, "sampling_steps": 2})
    save_pretrained(model, tmp_path)
    rec = json.loads((tmp_path / "config.json").read_text())
    assert rec["prior"]["name"] == "region" and rec["prior"]["weights"] is None and rec["model"] == "cugd"
    assert not any(k.startswith("prior") for k in semprior.from_pretrained(tmp_path).state_dict())


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")
    (tmp_path / "config.json").write_text("{not json")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 16)
    with pytest.raises(ValueError, match="not valid JSON"):
        semprior.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(
        json.dumps({"format": "semprior-model", "model": "retinexformer", "config": TINY_RF, "prior": None})
    )
    with pytest.raises(ValueError, match="safetensors"):
        semprior.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a semprior model config"):
        semprior.from_pretrained(tmp_path)


def test_named_prior_without_weights_names_the_file(tmp_path):
    pytest.importorskip("timm")
    with pytest.raises(FileNotFoundError, match="not found"):
        semprior.create_model("deepspg", prior="hrnet", weights_dir=tmp_path)


def test_load_to_device_argument():
    model = semprior.create_model("retinexformer", **TINY_RF)
    assert next(model.parameters()).device.type == "cpu"
    with pytest.raises(ValueError, match="unknown prior"):
        semprior.create_model("deepspg", prior="nope")
    with pytest.raises(ValueError, match="takes no prior"):
        semprior.create_model("retinexformer", prior="region")


def test_retinexformer_official_config_names_only_through_from_official(tmp_path):
    """The official names (n_feat/stage/num_blocks/level) are read by from_official.

    A checkpoint config uses semprior's names.
    """
    torch.manual_seed(0)
    model = semprior.create_model("retinexformer", **TINY_RF).eval()
    old = {
        "in_channels": 3,
        "out_channels": 3,
        "n_feat": 4,
        "stage": 1,
        "num_blocks": [1, 1, 1],
        "level": 2,
        "backend": "auto",
    }
    save_checkpoint(
        {
            "model": model.state_dict(),
            "model_config": old,
            "model_name": "retinexformer",
            "prior": "none",
            "text": "none",
        },
        tmp_path / "last.pt",
    )
    with pytest.raises(ValueError, match="unknown key.*n_feat"):
        load_model(tmp_path / "last.pt")
    assert semprior.RetinexformerConfig.from_official(old) == model.config
    with pytest.raises(ValueError, match="one vocabulary"):
        semprior.RetinexformerConfig.from_official({"n_feat": 4, "width": 4})


def test_trainer_checkpoint_ema_weights(tmp_path):
    torch.manual_seed(0)
    model = semprior.create_model("retinexformer", **TINY_RF).eval()
    raw = model.state_dict()
    ema = {k: v + 0.01 for k, v in raw.items() if v.is_floating_point()}
    save_checkpoint(
        {"model": raw, "ema": ema, "model_config": model.config.to_dict(), "model_name": "retinexformer"},
        tmp_path / "last.pt",
    )
    assert torch.equal(_out(load_model(tmp_path / "last.pt"), X), _out(model, X))
    averaged = load_model(tmp_path / "last.pt", param_key="ema")
    assert all(torch.equal(averaged.state_dict()[k], v) for k, v in ema.items())
    save_checkpoint(
        {"model": raw, "model_config": model.config.to_dict(), "model_name": "retinexformer"}, tmp_path / "best.pt"
    )
    with pytest.raises(ValueError, match="no weight average"):
        load_model(tmp_path / "best.pt", param_key="ema")
