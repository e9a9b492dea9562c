"""The CPU experiment's report and the shipped weights (`experiments/lolv1_cpu/experiment.py`: `choose`,
`report`, stages; `tools/ship_pretrained.py`: the model card), on a two-step Retinexformer run over tiny pairs.
The run-log reader and the candidates they use are tested in tests/engine/test_run_log.py."""

from pathlib import Path

import pytest
import torch

from semprior.data import PairedFolder
from semprior.engine.recipe import RunConfig, make_validate, run_training
from semprior.engine.run_config import from_dict

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scripts(load_script):
    return load_script("experiments/lolv1_cpu/experiment.py"), load_script("tools/ship_pretrained.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory, write_pairs, run_config_dict):
    root = write_pairs(tmp_path_factory.mktemp("pairs"))
    train = {"steps": 4, "val_every": 2, "ema_decay": 0.5, "log_every": 1}
    rc = from_dict(RunConfig, run_config_dict(root, root / "run", data={"val_holdout": 2}, train=train))
    run_training(rc, until=3)  # stops before the end of its schedule, like an interrupted run
    return root, rc


def test_candidates_and_choice_rank_on_validation(scripts, run):
    exp, _ = scripts
    root, _ = run
    folder = root / "run"
    from semprior.engine.run_log import checkpoint_candidates

    cands = [c.__dict__ for c in checkpoint_candidates(folder)]
    assert [c["weights"] for c in cands] == [
        "last.pt raw weights",
        "last.pt weight average",
        "best.pt (trainer's choice)",
    ]
    assert [c["step"] for c in cands][:2] == [3, 3] and cands[2]["step"] == 2
    validate = make_validate(PairedFolder(root / "low", root / "high"), batch_size=2)
    rows = exp.choose(folder, validate)
    assert sorted(r["weights"] for r in rows) == sorted(c["weights"] for c in cands)
    assert [r["psnr"] for r in rows] == sorted((r["psnr"] for r in rows), reverse=True)  # best first
    # the ranking is the validation's: scoring the winner again gives its number
    from semprior.models.io import load_model

    with torch.no_grad():
        again = validate(load_model(rows[0]["path"], param_key=rows[0]["key"]))
    assert again["psnr"] == pytest.approx(rows[0]["psnr"], abs=1e-9)
    # the raw and averaged weights of last.pt really differ (ema 0.5 over three steps)
    assert rows[0]["psnr"] != rows[-1]["psnr"]


def test_read_log_and_the_model_card_say_where_the_run_stopped(scripts, run, tmp_path):
    exp, ship = scripts
    root, rc = run
    log = exp.read_log(root / "run")
    assert log["step"] == 3 and log["cpu_exact"] and log["hours"] > 0 and [v[0] for v in log["val"]] == [2]
    from semprior.models.io import load_model, save_pretrained

    save_pretrained(load_model(root / "run" / "best.pt"), tmp_path)
    rows = [("run", "best.pt (trainer's choice)", 2, 20.0, 0.5)]
    ev = {"psnr": 21.0, "ssim": 0.7, "psnr_gtmean": 22.0, "ssim_gtmean": 0.71}
    card = ship.model_card("retinexformer", {"run": "x.yaml"}, "run", rows[0][1], 2, rc, rows, ev, tmp_path, log)
    assert "**interim weights**: the run stopped at step 3 of 4" in card and "PSNR 21.00 dB" in card
    card = ship.model_card(
        "retinexformer", {"run": "x.yaml"}, "run", rows[0][1], 2, rc, rows, ev, tmp_path, {**log, "step": 4}
    )
    assert "trained to the end of its schedule (4 steps)" in card and "interim" not in card


def _lay_out(root, tmp_path):
    """``(runs, lol, out)`` under ``tmp_path``: the tiny run as ``runs/tiny``, its pairs as ``lol/eval15``."""
    import shutil

    runs, lol, out = tmp_path / "runs", tmp_path / "LOL", tmp_path / "results"
    shutil.copytree(root / "run", runs / "tiny")
    for d in ("low", "high"):
        shutil.copytree(root / d, lol / "eval15" / d)
    return runs, lol, out


def test_report_scores_present_runs_and_carries_the_rows_of_absent_ones(scripts, run, tmp_path, monkeypatch):
    import json
    import shutil

    exp, _ = scripts
    root, _ = run
    runs, lol, out = _lay_out(root, tmp_path)
    monkeypatch.setattr(exp, "RUNS", {"tiny": ("configs/cpu/retinexformer_lolv1.yaml", "Tiny Retinexformer")})
    monkeypatch.setattr(
        exp, "validator", lambda config, lol: make_validate(PairedFolder(root / "low", root / "high"), batch_size=2)
    )
    assert exp.report(runs, lol, out) == 0
    first = json.loads((out / "lolv1_cpu.json").read_text())["rows"][0]
    assert first["run"] == "tiny" and first["steps"] == 3 and len(first["per_image"]["psnr"]) == 6
    assert "Tiny Retinexformer |" in (out / "lolv1_cpu.md").read_text() and (out / "lolv1_cpu.png").is_file()
    # ship_pretrained packages the report's choice, with the report's eval15 numbers
    from semprior.models import get_model_entry

    _, ship = scripts
    monkeypatch.setattr("semprior.models.registry.PRETRAINED_DIR", tmp_path / "pretrained")
    argv = ["--model", "retinexformer", "--runs", str(runs), "--results", str(out / "lolv1_cpu.json")]
    assert ship.main(argv) == 0
    dest = tmp_path / "pretrained" / get_model_entry("retinexformer").pretrained["lolv1-cpu"].file
    sel = json.loads((dest / "selection.json").read_text())
    assert sel["eval15"] == first["eval15"] and sel["chosen"]["weights"] == first["weights"]
    assert sel["command"].startswith("python tools/ship_pretrained.py --model retinexformer") and sel["commit"]
    assert f"PSNR {first['eval15']['psnr']:.2f} dB" in (dest / "MODEL_CARD.md").read_text()
    from semprior.models.io import load_model

    c = next(c for c in first["candidates"] if c["weights"] == first["weights"])
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.allclose(
            load_model(dest)(x), load_model(runs / "tiny" / c["file"], param_key=c["key"])(x), atol=1e-6
        )
    shutil.rmtree(runs / "tiny")  # a later session on another machine: the run folder is gone
    assert ship.main(argv) == 1  # the best run is not here: nothing to ship
    assert exp.report(runs, lol, out) == 0
    md = (out / "lolv1_cpu.md").read_text()
    again = json.loads((out / "lolv1_cpu.json").read_text())["rows"][0]
    assert f"Tiny Retinexformer (measured {first['measured']})" in md and again["carried"]
    assert again["eval15"] == first["eval15"] and again["log"]["val"] == first["log"]["val"]
    (out / "lolv1_cpu.json").unlink()
    assert exp.report(runs, lol, out) == 1  # nothing here and nothing earlier: an error, not an empty table


@pytest.mark.parametrize("shipped", [True, False], ids=["from-shipped-weights", "from-the-run-folder"])
def test_a_later_stage_counts_from_where_its_first_stage_was_chosen(scripts, run, tmp_path, monkeypatch, shipped):
    import dataclasses
    import json
    import shutil

    exp, _ = scripts
    root, rc = run
    runs, lol, out = _lay_out(root, tmp_path)
    # shipped: the first stage's chosen weights (here its last.pt) came from git; else the stage reads its best.pt
    stage2 = dataclasses.replace(
        rc, init=str(runs / "tiny" / ("last.pt" if shipped else "best.pt")), out_dir=str(runs / "tiny_s2")
    )
    run_training(stage2, until=2)
    monkeypatch.setattr(
        exp,
        "RUNS",
        {
            "tiny": ("configs/cpu/retinexformer_lolv1.yaml", "Tiny"),
            "tiny_s2": ("configs/cpu/retinexformer_lolv1.yaml", "Tiny, stage 2"),
        },
    )
    monkeypatch.setattr(
        exp,
        "STAGES",
        {"tiny_s2": ("tiny", "HEAD", "nowhere", "0" * 64) if shipped else ("tiny", None, "best.pt", None)},
    )
    monkeypatch.setattr(
        exp, "validator", lambda config, lol: make_validate(PairedFolder(root / "low", root / "high"), batch_size=2)
    )
    assert exp.report(runs, lol, out) == 0
    rows = {r["run"]: r for r in json.loads((out / "lolv1_cpu.json").read_text())["rows"]}
    first, second = rows["tiny"], rows["tiny_s2"]
    start = first["best_step"] if shipped else next(c["step"] for c in first["candidates"] if c["file"] == "best.pt")
    assert second["stage"] == {
        "continues": "tiny",
        "from_step": start,
        "steps": 2,
        "hours": pytest.approx(second["stage"]["hours"]),
        "cpu_hours": pytest.approx(second["stage"]["cpu_hours"]),
    }
    assert second["steps"] == start + 2 and second["best_step"] > start
    assert second["cpu_hours"] == pytest.approx(first["cpu_hours"] + second["stage"]["cpu_hours"])
    assert [v[0] for v in second["log"]["val"]] == [start + 2]  # its curve drawn after the first stage's
    md = (out / "lolv1_cpu.md").read_text()
    assert f"from step {start} of `tiny`" in md
    assert md.count("per eval15 image it adds") == 2 and "more than 3 dB on" in md
    # a later report without the folders keeps the sums as they were (not added twice)
    shutil.rmtree(runs)
    assert exp.report(tmp_path / "runs", lol, out) == 0
    again = {r["run"]: r for r in json.loads((out / "lolv1_cpu.json").read_text())["rows"]}["tiny_s2"]
    assert again["steps"] == second["steps"] and again["cpu_hours"] == pytest.approx(second["cpu_hours"])
    if shipped:  # the stage's starting weights come from git and are checked against the pinned digest
        with pytest.raises(SystemExit, match="cannot read nowhere/config.json at commit HEAD"):
            exp.prepare_stage(tmp_path / "runs", "tiny_s2")
    else:  # weights that were never shipped: the earlier run's file, which must be on this machine
        with pytest.raises(SystemExit, match="train tiny first"):
            exp.prepare_stage(tmp_path / "runs", "tiny_s2")


def test_the_pinned_first_stage_weights_are_in_the_history(scripts, tmp_path):
    import subprocess

    exp, _ = scripts
    for name, (_, commit, _, _sha) in exp.STAGES.items():
        if commit is None:  # starts from a run folder on this machine, not from git
            continue
        if subprocess.run(["git", "cat-file", "-e", commit], cwd=REPO, capture_output=True).returncode:
            pytest.skip(f"commit {commit} is not in this clone (shallow); prepare_stage needs the full history")
        folder = exp.prepare_stage(tmp_path, name)  # raises unless the file has the pinned sha256
        assert (folder / "config.json").is_file() and (folder / "model.safetensors").stat().st_size > 1_000_000


def test_the_diagnosis_compares_each_retinexformer_with_the_deepspg_of_its_cpu_time(scripts):
    exp, _ = scripts

    def row(run, hours, val, psnr):
        return {
            "run": run,
            "label": run,
            "cpu_hours": hours,
            "val_psnr": val,
            "weights": "w",
            "best_step": 1,
            "steps": 1,
            "eval15": {"psnr": psnr, "ssim": 0.7, "psnr_gtmean": psnr + 4, "ssim_gtmean": 0.75},
        }

    data = [
        row("deepspg_none", 1.9, 22.0, 20.7),
        row("deepspg_region", 2.0, 21.2, 19.7),
        row("retinexformer", 1.9, 20.5, 20.5),
        row("deepspg_none_s2", 3.6, 22.2, 20.6),
        row("retinexformer_s2", 3.5, 21.0, 20.9),
    ]
    logs = {d["run"]: {"val": [], "val_gtmean": []} for d in data}
    text = "\n".join(exp.diagnosis(data, logs))
    assert "The DeepSPG chosen on validation (deepspg_none_s2): eval15 20.60 dB" in text
    assert "(1.9 vs 1.9 CPU h; deepspg_none vs retinexformer): 20.70 vs 20.50 dB (ahead by 0.20 dB)" in text
    assert "(3.6 vs 3.5 CPU h; deepspg_none_s2 vs retinexformer_s2): 20.60 vs 20.90 dB (behind by 0.30 dB)" in text
    assert "not a same-budget comparison" not in text
    text = "\n".join(exp.diagnosis(data[:4], logs))  # without the longer Retinexformer, the 3.6 h DeepSPG has no match
    assert "more CPU time than any Retinexformer (3.6 vs 1.9 h)" in text and text.count("same CPU budget") == 1
