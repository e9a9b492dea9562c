"""A run folder is never overwritten by accident; a resume that changes the run says what it changes."""

from __future__ import annotations

import json

import pytest
import torch
from _rel_helpers import ToyEnhancer, ToyPairs, toy_loss, toy_trainer

from semprior.cli.main import main
from semprior.engine.checkpoint import load_checkpoint
from semprior.engine.run_folder import RunFolderError
from semprior.engine.trainer import TrainConfig, Trainer


def _lines(path):
    return path.read_text().splitlines()


def test_fresh_trainer_refuses_a_folder_holding_a_run(tmp_path):
    toy_trainer(tmp_path, steps=6).fit()
    before_log = _lines(tmp_path / "log.jsonl")
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6
    again = toy_trainer(tmp_path, steps=3)
    with pytest.raises(
        RunFolderError, match=r"already holds a run \(last.pt, log.jsonl\).*--resume .*last.pt.*--overwrite"
    ):
        again.fit()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6  # the finished run is untouched
    assert _lines(tmp_path / "log.jsonl") == before_log


def test_overwrite_replaces_the_run_and_leaves_no_old_file(tmp_path):
    toy_trainer(tmp_path, steps=6).fit()
    (tmp_path / "best.pt").write_bytes((tmp_path / "last.pt").read_bytes())  # a stale best.pt of the old run
    from semprior.engine.trainer import seed_everything

    seed_everything(0)
    cfg = TrainConfig(steps=3, batch_size=2, lr=1e-2, progress=False, log_every=1)
    Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=tmp_path, device="cpu", overwrite=True).fit()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
    assert not (tmp_path / "best.pt").exists()
    assert [json.loads(x)["step"] for x in _lines(tmp_path / "log.jsonl")] == [1, 2, 3]


def test_resume_moves_recomputed_log_lines_aside_and_deletes_nothing(tmp_path):
    t = toy_trainer(tmp_path, steps=10)
    t.fit(steps=4)
    with open(
        tmp_path / "log.jsonl", "a"
    ) as f:  # lines of steps 5-6 logged after last.pt (a kill before the next save)
        f.write(
            json.dumps({"step": 5, "loss": 1.0})
            + "\n"
            + json.dumps({"step": 6, "loss": 1.0})
            + "\n"
            + '{"step": 7, "lo'
        )
    resumed = toy_trainer(tmp_path, steps=10)
    resumed.resume(tmp_path / "last.pt")
    resumed.fit()
    steps = [json.loads(x)["step"] for x in _lines(tmp_path / "log.jsonl")]
    assert steps == list(range(1, 11))
    moved = _lines(tmp_path / "log.superseded.jsonl")
    assert len(moved) == 3 and moved[-1] == '{"step": 7, "lo'


@pytest.mark.parametrize("change", [{"lr": 3e-3}, {"batch_size": 4}, {"seed": 1}])
def test_resume_with_a_changed_field_lists_it_and_refuses(tmp_path, change):
    toy_trainer(tmp_path, steps=6).fit(steps=3)
    kw = {"steps": 6, "batch_size": 2, "lr": 1e-2, "seed": 0, "progress": False, "log_every": 1, **change}
    t = Trainer(ToyEnhancer(), toy_loss, ToyPairs(), TrainConfig(**kw), out_dir=tmp_path, device="cpu")
    ((name, value),) = change.items()
    with pytest.raises(
        RunFolderError, match=rf"resuming changes 1 field\(s\) of the run: train.{name}: .* -> {value}.*--allow-changed"
    ):
        t.resume(tmp_path / "last.pt")
    assert t.step == 0  # nothing was loaded
    t.resume(tmp_path / "last.pt", allow_changed=True)
    assert t.step == 3


def test_incidental_fields_may_change_on_resume(tmp_path):
    toy_trainer(tmp_path, steps=6).fit(steps=3)
    cfg = TrainConfig(steps=6, batch_size=2, lr=1e-2, progress=True, log_every=2, ckpt_every=1, loss_curve=False)
    t = Trainer(ToyEnhancer(), toy_loss, ToyPairs(), cfg, out_dir=tmp_path, device="cpu")
    t.resume(tmp_path / "last.pt")
    assert t.step == 3


YAML = (
    "model: {name: deepspg, width: 4, heads: [1, 1, 1], retinex_width: 4, illum_width: 4}\nprior: none\n"
    "data: {patch_size: 16, length: 4, val_images: 1, val_items: 2, val_size: 16}\n"
    "train: {steps: STEPS, batch_size: 2, progress: false, loss_curve: false, lr: LR}\n"
)


def _yaml(tmp_path, steps=2, lr=0.001):
    p = tmp_path / f"run_{steps}_{lr}.yaml"
    p.write_text(YAML.replace("STEPS", str(steps)).replace("LR", str(lr)))
    return str(p)


def test_cli_train_refuses_a_run_folder_then_resume_and_overwrite_work(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", _yaml(tmp_path, steps=2), "--out", str(out)]) == 0
    capsys.readouterr()
    log = _lines(out / "log.jsonl")
    assert main(["train", "--config", _yaml(tmp_path, steps=2), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert (
        err.count("\n") == 1
        and "already holds a run" in err
        and "--overwrite" in err
        and f"--resume {out}/last.pt" in err
    )
    assert _lines(out / "log.jsonl") == log and load_checkpoint(out / "last.pt")["step"] == 2
    # a resume with another lr is listed and refused; --allow-changed accepts it
    argv = [
        "train",
        "--config",
        _yaml(tmp_path, steps=3, lr=0.002),
        "--out",
        str(out),
        "--resume",
        str(out / "last.pt"),
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "train.lr: 0.001 -> 0.002" in err and "train.steps: 2 -> 3" in err and "--allow-changed" in err
    assert main([*argv, "--allow-changed"]) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 3
    assert [json.loads(x)["step"] for x in _lines(out / "log.jsonl")][: len(log)] == [
        json.loads(x)["step"] for x in log
    ]
    assert main(["train", "--config", _yaml(tmp_path, steps=1), "--out", str(out), "--overwrite"]) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 1
    assert torch.equal(torch.tensor([1]), torch.tensor([json.loads(x)["step"] for x in _lines(out / "log.jsonl")]))
