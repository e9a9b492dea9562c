"""experiments/lolv1_scenes/study.py: `export --trainer-choice` and `stages` on a tiny run (the study's commands
that turn a finished stage into weights for git and its table)."""

import json

import yaml

from semprior.engine.recipe import RunConfig, run_training
from semprior.engine.run_config import from_dict


def test_export_takes_the_trainers_choice_with_its_logged_score(load_script, tmp_path, write_pairs, run_config_dict):
    study = load_script("experiments/lolv1_scenes/study.py")
    write_pairs(tmp_path)
    train = {"steps": 4, "val_every": 2, "log_every": 1}
    config = run_config_dict(tmp_path, tmp_path / "run", data={"val_holdout": 2}, train=train)
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
