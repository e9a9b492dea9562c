"""experiments/lolv1_scenes/study.py: `export --trainer-choice` and `stages` on a tiny run (the study's commands
that turn a finished stage into weights for git and its table)."""

import json

import torch
import yaml

from semprior.data.io import write_image
from semprior.engine.recipe import RunConfig, run_training
from semprior.engine.run_config import from_dict


def test_export_takes_the_trainers_choice_with_its_logged_score(load_script, tmp_path):
    study = load_script("experiments/lolv1_scenes/study.py")
    g = torch.Generator().manual_seed(0)
    for d in ("low", "high"):
        (tmp_path / d).mkdir()
    for i in range(6):
        high = torch.rand(3, 16, 24, generator=g)
        write_image(tmp_path / "high" / f"{i}.png", high)
        write_image(tmp_path / "low" / f"{i}.png", high * 0.2)
    config = {
        "model": {"name": "retinexformer", "width": 8, "blocks": [1, 1, 1]},
        "prior": "none",
        "data": {
            "kind": "paired",
            "low_dir": str(tmp_path / "low"),
            "high_dir": str(tmp_path / "high"),
            "patch_size": 8,
            "val_holdout": 2,
        },
        "train": {"steps": 4, "batch_size": 2, "val_every": 2, "progress": False, "log_every": 1},
        "out_dir": str(tmp_path / "run"),
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    run_training(from_dict(RunConfig, config))
    dest = tmp_path / "weights" / "tiny_s1"
    argv = [
        "export",
        "--run",
        str(tmp_path / "run"),
        "--config",
        str(tmp_path / "tiny.yaml"),
        "--to",
        str(dest),
        "--trainer-choice",
    ]
    assert study.main(argv) == 0
    stage = json.loads((dest / "stage.json").read_text())
    logged = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    score = next(r["val/psnr"] for r in logged if r.get("step") == stage["chosen"]["step"] and "val/psnr" in r)
    assert stage["chosen"]["file"] == "best.pt" and stage["chosen"]["psnr"] == score
    assert stage["steps"] == 4 and stage["command"].startswith("python experiments/lolv1_scenes/study.py export")
    assert {"commit", "machine", "date"} <= set(stage) and (dest / "model.safetensors").is_file()
