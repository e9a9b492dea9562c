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


def test_a_page_with_two_tables_keeps_them_apart_in_its_table_snippet(load_script, tmp_path, monkeypatch):
    study = load_script("experiments/lolv1_scenes/study.py")
    monkeypatch.setattr(study, "RESULTS", tmp_path)
    md = ["# title", "text", "| a |", "|---|", "| 1 |", "", "words", "| b | c |", "|---|---|", "| 2 | 3 |"]
    study.write("two", {"command": "cmd", "commit": "abc", "date": "d", "machine": "m"}, md)
    snippet = (tmp_path / "two_table.md").read_text().splitlines()
    assert snippet[2:] == ["| a |", "|---|", "| 1 |", "", "| b | c |", "|---|---|", "| 2 | 3 |"]


def test_the_curve_runs_on_across_stages_in_passes_and_cpu_hours(load_script, tmp_path):
    study = load_script("experiments/lolv1_scenes/study.py")
    point = {"psnr": 20.0, "ssim": 0.8, "psnr_gtmean": 25.0, "ssim_gtmean": 0.85}
    s1 = {"steps": 100, "passes": 1.0, "cpu_hours": 0.5, "curve": [{**point, "step": 50, "passes": 0.5}]}
    s2 = {"steps": 200, "passes": 2.0, "cpu_hours": 1.0, "curve": [{**point, "step": 100, "passes": 1.0}]}
    curve = study.cumulative_curve([s1, s2])
    assert [(c["passes"], c["cpu_hours"]) for c in curve] == [(0.5, 0.25), (2.0, 1.0)]
    rows = [{"model": "m_s2", "stages": 2, "passes": 3.0, "cpu_hours": 1.5, "eval15": {"psnr": 19.0}}]
    study.curve_figure(rows, {"m_s2": [s1, s2]}, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_the_figure_draws_a_second_seed_as_its_own_curve(load_script):
    study = load_script("experiments/lolv1_scenes/study.py")
    names = ["deepspg_s3", "deepspg_s1_seed1", "retinexformer_s12", "shipped"]
    assert [study.family(n) for n in names] == ["deepspg", "deepspg seed 1", "retinexformer", "shipped"]
