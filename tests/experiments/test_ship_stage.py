"""`tools/ship_pretrained.py --stage`: a study stage ships only if it does not lose to the shipped model on
validation, with the study report's eval15 numbers in its model card (tiny Retinexformer, fake study results)."""

import json

import pytest
import torch

from semprior import create_model, load_model, save_pretrained
from semprior.models import get_model_entry


def _stage(tmp_path):
    folder = tmp_path / "weights" / "retinexformer_s1"
    torch.manual_seed(0)
    save_pretrained(create_model("retinexformer", **get_model_entry("retinexformer").tiny), folder)
    chosen = {"weights": "last.pt weight average", "file": "last.pt", "key": "ema", "step": 4}
    chosen |= {"psnr": 20.0, "ssim": 0.8, "psnr_gtmean": 25.0, "ssim_gtmean": 0.81}
    record = {"config": "x_s1.yaml", "chosen": chosen, "steps": 4, "passes": 0.5, "cpu_hours": 0.1, "hours": 0.2}
    (folder / "stage.json").write_text(json.dumps({**record, "commit": "abc1234", "init": None}))
    return folder


def _results(tmp_path, folder, psnr_gain):
    psnr = [20.0, 21.0, 22.0, 20.5]
    cand = {"psnr": [p + psnr_gain + 0.1 * (i % 2) for i, p in enumerate(psnr)], "ssim": [0.8] * 4}
    ship = {"psnr": psnr, "ssim": [0.75] * 4}
    for s in (cand, ship):
        s["psnr_gtmean"] = [p + 5 for p in s["psnr"]]
    validation = {
        "commit": "abc1234",
        "models": {"cand": str(folder), "shipped_retinexformer": "shipped:retinexformer"},
        "names": ["1", "2", "3", "4"],
        "per_image": {"cand": cand, "shipped_retinexformer": ship},
    }
    eval15 = {"psnr": 21.23, "ssim": 0.777, "psnr_gtmean": 26.0, "ssim_gtmean": 0.8}
    report = {"commit": "abc1234", "rows": [{"weights": str(folder), "eval15": eval15, "exposure_slope": 0.5}]}
    (tmp_path / "validation.json").write_text(json.dumps(validation))
    (tmp_path / "report.json").write_text(json.dumps(report))
    return eval15


@pytest.mark.parametrize("psnr_gain", [0.0, -2.0], ids=["ties-and-ships", "loses-and-ships-nothing"])
def test_a_stage_ships_only_if_it_does_not_lose_on_validation(load_script, tmp_path, monkeypatch, psnr_gain):
    ship = load_script("tools/ship_pretrained.py")
    folder = _stage(tmp_path)
    eval15 = _results(tmp_path, folder, psnr_gain)
    monkeypatch.setattr("semprior.models.registry.PRETRAINED_DIR", tmp_path / "pretrained")
    dest = tmp_path / "pretrained" / get_model_entry("retinexformer").pretrained["lolv1-cpu"].file
    argv = ["--model", "retinexformer", "--stage", str(folder)]
    argv += ["--validation", str(tmp_path / "validation.json"), "--report", str(tmp_path / "report.json")]
    rc = ship.main(argv)
    if psnr_gain < 0:
        assert rc == 1 and not dest.exists()
        return
    assert rc == 0
    sel = json.loads((dest / "selection.json").read_text())
    assert sel["eval15"] == eval15 and sel["chosen"]["stage"] == str(folder) and sel["stages"][0]["steps"] == 4
    assert sel["validation"]["difference"]["psnr"]["mean"] == pytest.approx(0.05)
    assert sel["validation"]["difference"]["ssim"]["mean"] == pytest.approx(0.05)
    card = (dest / "MODEL_CARD.md").read_text()
    assert "PSNR 21.23 dB, SSIM 0.777" in card and "| 1 | `x_s1.yaml` | 4 | 0.50 | 0.10 | 20.00 / 0.800 |" in card
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(load_model(dest)(x), load_model(folder)(x))


def test_a_stage_without_a_validation_against_the_shipped_model_is_refused(load_script, tmp_path, monkeypatch, capsys):
    ship = load_script("tools/ship_pretrained.py")
    folder = _stage(tmp_path)
    _results(tmp_path, folder, 0.0)
    v = json.loads((tmp_path / "validation.json").read_text())
    v["models"].pop("shipped_retinexformer")
    (tmp_path / "validation.json").write_text(json.dumps(v))
    monkeypatch.setattr("semprior.models.registry.PRETRAINED_DIR", tmp_path / "pretrained")
    argv = ["--model", "retinexformer", "--stage", str(folder)]
    argv += ["--validation", str(tmp_path / "validation.json"), "--report", str(tmp_path / "report.json")]
    assert ship.main(argv) == 1
    assert "shipped_retinexformer=shipped:retinexformer" in capsys.readouterr().err
