"""`semprior train` with `model: {name: sllen}` runs SLLEN's alternating recipe on engine.Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semprior.cli.main import main
from semprior.engine.recipe import RunConfig, run_training
from semprior.engine.run_config import from_dict, load_yaml

REPO = Path(__file__).resolve().parents[2]


def _tiny_yaml(tmp_path: Path, write_pairs, steps: int = 4) -> Path:
    write_pairs(tmp_path / "pairs", n=5, size=(24, 24))
    cfg = tmp_path / "sllen.yaml"
    cfg.write_text(
        "model: {name: sllen, width: 4, depth: 2, num_classes: 3}\n"
        "prior: none\n"
        f"data: {{kind: paired, low_dir: {tmp_path}/pairs/low, high_dir: {tmp_path}/pairs/high, "
        "patch_size: 16, val_holdout: 1}\n"
        "segmentation: {kind: synthetic, num_classes: 3, patch_size: 16, length: 4}\n"
        "phases: {lle: 2, seg: 1}\n"
        f"train: {{steps: {steps}, batch_size: 2, lr: 1.0e-3, log_every: 1, val_every: 2, progress: false}}\n"
    )
    return cfg


@pytest.mark.slow
def test_cli_trains_sllen_alternating_and_resumes(tmp_path, write_pairs):
    cfg = _tiny_yaml(tmp_path, write_pairs)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--until", "3"]) == 0
    assert main(["train", "--config", str(cfg), "--out", str(out), "--resume", str(out / "last.pt")]) == 0
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["phase"]) for r in recs if "phase" in r] == [(1, "lle"), (2, "lle"), (3, "seg"), (4, "lle")]
    assert any("val/psnr" in r for r in recs)  # the enhancement is validated as any model's
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["step"] == 4 and ck["model_name"] == "sllen"
    assert ck["phases"] == [
        {"name": "lle", "source": "train", "steps": 2},
        {"name": "seg", "source": "segmentation", "steps": 1},
    ]
    from semprior.models.io import load_model

    for name in ("best.pt", "last.pt"):  # the eval / enhance CLIs rebuild SLLEN from either
        model = load_model(out / name)
        assert type(model).__name__ == "SLLEN" and model.config.num_classes == 3
    # the resumed run equals an uninterrupted one
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "once")]) == 0
    once = torch.load(tmp_path / "once" / "last.pt", weights_only=True)["model"]
    for k, v in ck["model"].items():
        assert torch.equal(v, once[k]), k


def test_sllen_recipe_errors(tmp_path, write_pairs, run_config_dict):
    sllen = {"name": "sllen", "width": 4, "depth": 2, "num_classes": 3}
    pairs = write_pairs(tmp_path / "pairs", n=5, size=(24, 24))
    base = run_config_dict(pairs, tmp_path / "run", model=sllen, data={"patch_size": 16}, train={"steps": 1})
    with pytest.raises(ValueError, match="add a `segmentation:` section"):
        run_training(from_dict(RunConfig, base))
    seg = {"kind": "synthetic", "num_classes": 5, "patch_size": 16, "length": 4}
    with pytest.raises(ValueError, match="num_classes=5 but the model has num_classes=3"):
        run_training(from_dict(RunConfig, {**base, "segmentation": seg}))
    with pytest.raises(ValueError, match=r"unknown phase\(s\) \['seg2'\]"):
        run_training(from_dict(RunConfig, {**base, "segmentation": {**seg, "num_classes": 3}, "phases": {"seg2": 1}}))
    with pytest.raises(ValueError, match="drop `segmentation`"):
        from_dict(RunConfig, {**base, "model": {"name": "retinexformer"}, "segmentation": seg})
    with pytest.raises(ValueError, match="needs segmentation.image_dir"):
        from_dict(RunConfig, {**base, "segmentation": {"kind": "folder"}})


def test_shipped_config_is_the_alternating_recipe():
    run = from_dict(RunConfig, load_yaml(REPO / "configs" / "sllen_lolv1.yaml"), "config")
    assert run.model_name == "sllen" and run.model_config().num_classes == run.segmentation.num_classes == 19
    assert run.phases == {"lle": 1, "seg": 1} and run.segmentation.kind == "folder" and run.segmentation.low_light
    assert run.train.lr == 2e-4 and run.train.batch_size == 8
