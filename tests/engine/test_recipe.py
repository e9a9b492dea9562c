import pytest
import torch

from semprior.cli.main import main
from semprior.engine.recipe import DataConfig, RunConfig, build_data, run_training
from semprior.engine.run_config import from_dict
from semprior.models.deepspg import DeepSPGConfig

TINY_MODEL = {"width": 8, "heads": [1, 1, 2], "retinex_width": 8, "illum_width": 8}


def test_from_dict_strict_and_nested():
    cfg = from_dict(DeepSPGConfig, {"width": 16, "blocks": [1, 1, 1], "loss": {"edge": 0.2}})
    assert cfg.blocks == (1, 1, 1) and cfg.loss.edge == 0.2
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['chanels'\].*valid keys"):
        from_dict(DeepSPGConfig, {"chanels": 3})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['nope'\] in config.train"):
        from_dict(RunConfig, {"train": {"nope": 1}}, "config")
    with pytest.raises(ValueError, match="prior must be one of"):
        from_dict(RunConfig, {"prior": "vgg"})


def test_run_config_switches_follow_prior_and_text():
    run = from_dict(RunConfig, {"prior": "none", "model": TINY_MODEL})
    cfg = run.model_config()
    assert not cfg.image_prior and not cfg.text_prior and cfg.width == 8
    with pytest.raises(ValueError, match="image_prior follows the prior: set `prior`"):
        from_dict(RunConfig, {"prior": "none", "model": {"image_prior": True}}).model_config()
    with pytest.raises(ValueError, match="takes no text loss"):
        from_dict(RunConfig, {"prior": "none", "text": "clip", "model": {"name": "retinexformer"}})


def test_synthetic_split_holds_out_photos():
    train, val = build_data(DataConfig(patch_size=32, length=4, val_images=1, val_items=2, val_size=32))
    assert set(train.names).isdisjoint(val.names) and len(val) == 2


@pytest.mark.slow
def test_run_training_and_cli_resume(tmp_path):
    run = from_dict(
        RunConfig,
        {
            "model": TINY_MODEL,
            "prior": "region",
            "data": {"patch_size": 16, "length": 4, "val_items": 2, "val_size": 16},
            "train": {"steps": 2, "batch_size": 2, "val_every": 1, "progress": False},
            "out_dir": str(tmp_path / "a"),
        },
    )
    model, trainer, result = run_training(run)
    assert result.step == 2 and result.best is not None
    assert trainer.patches.stages == [(0, 16), (1, 16)]  # coarse_to_fine default: half patch (min 16), then full
    ck = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    assert ck["model_config"]["width"] == 8 and ck["prior"] == "region"
    (tmp_path / "run.yaml").write_text(
        "model: {width: 8, heads: [1, 1, 2], retinex_width: 8, illum_width: 8}\n"
        "data: {patch_size: 16, length: 4, val_items: 2, val_size: 16}\n"
        "train: {steps: 3, batch_size: 2, progress: false}\n"
    )
    argv = [
        "train",
        "--config",
        str(tmp_path / "run.yaml"),
        "--out",
        str(tmp_path / "a"),
        "--resume",
        str(tmp_path / "a" / "last.pt"),
    ]
    assert main(argv) == 1  # the YAML changes steps and val_every: listed and refused
    rc = main([*argv, "--allow-changed"])
    assert rc == 0
    assert torch.load(tmp_path / "a" / "last.pt", weights_only=True)["step"] == 3


def test_cli_unknown_key_is_one_line_error(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("train: {stepz: 3}\n")
    assert main(["train", "--config", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err
    assert "unknown key(s) ['stepz']" in err and err.count("\n") == 1


def test_validation_reports_gt_mean_beside_the_plain_scores():
    from semprior.engine.recipe import make_validate
    from semprior.metrics import MetricProtocol, psnr

    g = torch.Generator().manual_seed(0)
    high = [torch.rand(3, 24, 20, generator=g) for _ in range(3)]
    lows = [(0.3 * h + 0.02 * torch.rand(3, 24, 20, generator=g)).clamp(0, 1) for h in high]
    items = [{"low": lo, "high": h, "name": str(i)} for i, (lo, h) in enumerate(zip(lows, high))]

    class Identity(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))  # validate() reads the device from a parameter

        def forward(self, x):
            return x

    scores = make_validate(items, batch_size=2)(Identity())
    assert sorted(scores) == ["psnr", "psnr_gtmean", "ssim", "ssim_gtmean"]
    expected = sum(float(psnr(lo[None], h[None])) for lo, h in zip(lows, high)) / 3
    assert abs(scores["psnr"] - expected) < 1e-4
    expected_gtm = sum(float(psnr(lo[None], h[None], MetricProtocol(gt_mean=True))) for lo, h in zip(lows, high)) / 3
    assert abs(scores["psnr_gtmean"] - expected_gtm) < 1e-4
    assert scores["psnr_gtmean"] > scores["psnr"] + 5  # a pure exposure error: GT-mean removes most of it
