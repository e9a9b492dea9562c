"""Trainer and recipe features of the real-data recipe: EMA, JSONL log, saves on errors, epochs,
global batch, precision guard, YAML number coercion and the held-out validation split."""

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from _toy import ToyEnhancer, ToyPairs, toy_loss

from semprior.data import PairedFolder, holdout_split
from semprior.data.io import write_image
from semprior.engine import TrainConfig, Trainer, load_checkpoint
from semprior.engine.recipe import DataConfig, RunConfig, build_data
from semprior.engine.run_config import from_dict


def _trainer(out=None, steps=8, validate=None, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False, log_every=1, **kw)
    return Trainer(ToyEnhancer(dropout=0.0), toy_loss, ToyPairs(), cfg, out_dir=out, validate=validate)


def _val(model):
    data = ToyPairs()
    with torch.no_grad():
        mse = float(((model(data.high[:4] * 0.3) - data.high[:4]) ** 2).mean())
    return {"psnr": -10 * torch.log10(torch.tensor(mse)).item()}


def test_yaml_numbers_are_coerced_with_clear_errors():
    cfg = from_dict(TrainConfig, {"lr": "1e-4", "steps": "1000", "epochs": 2, "ema_decay": "0.999"})
    assert cfg.lr == 1e-4 and cfg.steps == 1000 and isinstance(cfg.steps, int) and cfg.epochs == 2.0
    with pytest.raises(ValueError, match=r"TrainConfig.lr must be a number, got '1e-4x'"):
        from_dict(TrainConfig, {"lr": "1e-4x"})
    with pytest.raises(ValueError, match=r"TrainConfig.steps must be an integer, got 1.5"):
        from_dict(TrainConfig, {"steps": 1.5})
    with pytest.raises(ValueError, match=r"progress must be true or false"):
        from_dict(TrainConfig, {"progress": "yes"})


def test_ema_is_validated_saved_and_resumed_exactly(tmp_path):
    full = _trainer(tmp_path / "a", steps=10, ema_decay=0.9, val_every=5, validate=_val)
    full.fit()
    ema = full.eval_state_dict()
    raw = full.model.state_dict()
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)  # the average lags the raw weights
    best = load_checkpoint(tmp_path / "a" / "best.pt")
    assert best["ema"] is True and best["step"] in (5, 10)
    if best["step"] == 10:
        for k in raw:
            assert torch.equal(best["model"][k], ema[k]), k
    half = _trainer(tmp_path / "b", steps=10, ema_decay=0.9, val_every=5, validate=_val)
    half.fit(steps=7)
    resumed = _trainer(tmp_path / "b", steps=10, ema_decay=0.9, val_every=5, validate=_val)
    resumed.resume(tmp_path / "b" / "last.pt")
    resumed.fit()
    for k in raw:  # same code path, same shapes, one process: bitwise
        assert torch.equal(full.eval_state_dict()[k], resumed.eval_state_dict()[k]), k
        assert torch.equal(full.model.state_dict()[k], resumed.model.state_dict()[k]), k

    # the JSONL log after resume equals the uninterrupted one, line for line (minus wall time)
    def lines(p):
        return [
            {k: v for k, v in json.loads(x).items() if k not in ("seconds", "cpu_seconds")}
            for x in (p / "log.jsonl").read_text().splitlines()
        ]

    assert lines(tmp_path / "a") == lines(tmp_path / "b")
    assert any("val/psnr" in rec for rec in lines(tmp_path / "a"))
    # every training line carries wall and CPU time since this fit() started (0 again after the resume)
    recs = [json.loads(x) for x in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    timed = [r for r in recs if "loss" in r]
    assert timed and all(r["seconds"] >= 0 and r["cpu_seconds"] >= 0 for r in timed)
    cpu = [r["cpu_seconds"] for r in timed]
    assert any(b < a for a, b in zip(cpu, cpu[1:])), "the resumed segment restarts its CPU clock"


def test_resume_without_ema_state_is_refused(tmp_path):
    _trainer(tmp_path / "a", steps=2).fit()
    t = _trainer(tmp_path / "b", steps=4, ema_decay=0.9)
    with pytest.raises(ValueError, match="no 'ema'"):
        t.resume(tmp_path / "a" / "last.pt")


def test_error_mid_run_still_saves_last(tmp_path):
    t = _trainer(tmp_path, steps=20, ckpt_every=0)
    orig = t.loss_fn

    def failing(m, b):
        if t.step == 6:
            raise KeyboardInterrupt
        return orig(m, b)

    t.loss_fn = failing
    with pytest.raises(KeyboardInterrupt):
        t.fit()
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 6


def test_sigterm_stops_at_the_step_boundary_saves_and_passes_the_signal_on(tmp_path):
    import signal

    got = []

    def mine(signum, frame):
        got.append(signum)

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        t = _trainer(tmp_path, steps=20, ckpt_every=0)
        orig = t.loss_fn

        def terminated_mid_step(m, b):
            if t.step == 6:  # the 7th step's forward: the step still completes
                signal.raise_signal(signal.SIGTERM)
            return orig(m, b)

        t.loss_fn = terminated_mid_step
        result = t.fit()
        assert got == [signal.SIGTERM]  # handed on to the handler installed before fit()
        assert signal.getsignal(signal.SIGTERM) is mine  # fit() put the old handler back
        assert result.step == 7 and load_checkpoint(tmp_path / "last.pt")["step"] == 7
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_with_the_default_handler_saves_then_exits_143(tmp_path):
    import subprocess
    import textwrap

    script = textwrap.dedent(f"""
        import os, signal
        from test_trainer_recipe_features import _trainer
        t = _trainer({str(tmp_path)!r}, steps=50, ckpt_every=0)
        orig = t.loss_fn
        def loss(m, b):
            if t.step == 3:
                os.kill(os.getpid(), signal.SIGTERM)
            return orig(m, b)
        t.loss_fn = loss
        t.fit()
        print("not reached")
    """)
    here = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": here}  # the child imports this file's helpers
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert p.returncode == -15 and "not reached" not in p.stdout, (p.returncode, p.stderr[-2000:])
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 4


def test_epochs_set_steps_and_batch_is_global():
    t = _trainer(steps=999, epochs=2.5)  # 16 items / batch 4 = 4 steps per epoch
    assert t.config.steps == 10 and t.rank_batch == 4
    with pytest.raises(ValueError, match="fp16.*CUDA.*use precision: bf16"):
        _trainer(precision="fp16")


def test_bf16_on_the_cpu_autocasts_and_tracks_fp32():
    """precision: bf16 on the CPU runs the forward under autocast (bf16 matmuls) and keeps fp32 weights."""
    fp32, bf16 = _trainer(steps=6), _trainer(steps=6, precision="bf16")
    seen = []
    orig = bf16.loss_fn

    def spy(m, b):
        seen.append(torch.is_autocast_enabled("cpu"))
        return orig(m, b)

    bf16.loss_fn = spy
    fp32.fit(), bf16.fit()
    assert seen and all(seen)
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    la, lb = fp32.curves["loss"][-1][1], bf16.curves["loss"][-1][1]
    assert lb == pytest.approx(la, rel=0.1), (la, lb)  # bf16 rounds (~3 significant digits), the run goes the same way


@pytest.fixture
def tiny_pairs(tmp_path):
    for d in ("low", "high"):
        (tmp_path / d).mkdir()
        for i in range(6):
            write_image(
                tmp_path / d / f"{i}.png", torch.full((3, 12, 16), (i + 1) / 10 if d == "high" else (i + 1) / 40)
            )
    return tmp_path


def test_holdout_split_is_fixed_and_disjoint(tiny_pairs):
    names = [str(i) for i in range(6)]
    held = holdout_split(names, 2)
    assert held == holdout_split(list(reversed(names)), 2) and len(held) == 2
    with pytest.raises(ValueError, match="cannot hold out 6 of 6"):
        holdout_split(names, 6)
    train, val = build_data(
        DataConfig(
            kind="paired",
            low_dir=str(tiny_pairs / "low"),
            high_dir=str(tiny_pairs / "high"),
            patch_size=8,
            val_holdout=2,
            val_split="names",
        )
    )
    assert sorted(p[0].stem for p in val.pairs) == sorted(held) and val.patch_size is None
    assert {p[0].stem for p in train.pairs} == set(names) - set(held)
    with pytest.raises(ValueError, match="not pairs"):
        PairedFolder(tiny_pairs / "low", tiny_pairs / "high", keep=["nope"])


def test_lol_holdout_names_are_documented(shared_data):
    lol = Path.home() / "data" / "LOL"
    if not (lol / "our485").is_dir():
        pytest.skip(f"LOL-v1 our485 not found at {lol}")
    train, val = build_data(DataConfig(kind="lol-v1", root=str(lol), val_holdout=20, val_split="names"))
    assert len(train) == 465 and len(val) == 20
    # the 20 validation pairs the runs made with val_split: names hold out
    assert sorted(int(p[0].stem) for p in val.pairs) == LOL_VAL_20


LOL_VAL_20 = [16, 17, 96, 115, 141, 200, 236, 265, 525, 529, 556, 616, 645, 650, 684, 697, 711, 744, 763, 788]


def test_val_source_errors_name_the_fix(tiny_pairs, run_config_dict):
    with pytest.raises(ValueError, match="go together"):
        DataConfig(kind="paired", low_dir="a", high_dir="b", val_low_dir="c")
    with pytest.raises(ValueError, match="synthetic data uses val_images"):
        DataConfig(val_holdout=3)
    with pytest.raises(ValueError, match="needs a validation split"):
        from semprior.engine.recipe import run_training

        run_training(from_dict(RunConfig, run_config_dict(tiny_pairs, model=None, train={"val_every": 5})))


def test_cosine_restarts_is_basicsr_cyclic():
    from semprior.engine.schedule import build_lr_scheduler

    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    f = build_lr_scheduler(
        opt, "cosine_restarts", 150, restart_periods=[46, 104], restart_min_lrs=[3e-4, 1e-6]
    ).lr_lambdas[0]
    lrs = [2e-4 * f(s) for s in (0, 23, 46, 98, 149, 500)]
    assert lrs[0] == pytest.approx(2e-4) and lrs[1] == pytest.approx(2.5e-4)  # first period rises to 3e-4
    assert lrs[2] == pytest.approx(2e-4) and lrs[3] == pytest.approx(1.005e-4)  # restart, then anneal
    assert lrs[4] == pytest.approx(1e-6, rel=0.1) and lrs[5] == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="restart_periods"):
        build_lr_scheduler(opt, "cosine_restarts", 10, restart_periods=[5], restart_min_lrs=[])


def test_run_config_model_names(tiny_pairs, tmp_path, run_config_dict):
    with pytest.raises(ValueError, match="model.name must be one of"):
        from_dict(RunConfig, {"model": {"name": "unet"}})
    with pytest.raises(ValueError, match="retinexformer takes no prior"):
        from_dict(RunConfig, {"model": {"name": "retinexformer"}, "prior": "region"})
    from semprior.engine.recipe import run_training

    data = {"val_holdout": 2, "val_split": "names"}
    run = from_dict(
        RunConfig, run_config_dict(tiny_pairs, tmp_path / "r", data=data, train={"steps": 2, "val_every": 2})
    )
    model, trainer, result = run_training(run)
    ck = load_checkpoint(tmp_path / "r" / "best.pt")
    assert ck["model_name"] == "retinexformer" and ck["model_config"]["width"] == 8 and result.step == 2
    assert "l1" in trainer.curves


def test_resume_drops_a_log_line_torn_by_a_kill(tmp_path):
    _trainer(tmp_path, steps=6).fit(steps=3)
    with open(tmp_path / "log.jsonl", "a") as f:
        f.write('{"step": 4, "loss": 0.1')  # a kill -9 in the middle of an append
    t = _trainer(tmp_path, steps=6)
    t.resume(tmp_path / "last.pt")
    t.fit()
    steps = [json.loads(x)["step"] for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_ema_warmup_forgets_the_initial_weights():
    torch.manual_seed(0)
    init = {k: v.clone() for k, v in ToyEnhancer(dropout=0.0).state_dict().items()}
    warm = _trainer(steps=20, ema_decay=0.999)
    warm.fit()
    cold = _trainer(steps=20, ema_decay=0.999, ema_warmup=False)
    cold.fit()
    k = "body.0.weight"
    raw = warm.model.state_dict()[k]
    # without warm-up the average is still ~98 % the initial weights after 20 steps
    assert (cold.eval_state_dict()[k] - init[k]).norm() < 0.05 * (raw - init[k]).norm()
    assert (warm.eval_state_dict()[k] - init[k]).norm() > 0.3 * (raw - init[k]).norm()


def test_until_stops_inside_the_schedule_and_resumes_exactly(tiny_pairs, tmp_path):
    from semprior.cli.main import main

    (tmp_path / "run.yaml").write_text(
        "model: {name: deepspg, width: 8, heads: [1, 1, 1], retinex_width: 4, illum_width: 4}\n"
        "prior: none\n"
        f"data: {{kind: paired, low_dir: {tiny_pairs / 'low'}, high_dir: {tiny_pairs / 'high'}, patch_size: 12}}\n"
        "train: {steps: 4, batch_size: 2, progress: false, lr_schedule: cosine}\n"
    )
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "a")]) == 0
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "b"), "--until", "2"]) == 0
    assert load_checkpoint(tmp_path / "b" / "last.pt")["step"] == 2
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "run.yaml"),
                "--out",
                str(tmp_path / "b"),
                "--resume",
                str(tmp_path / "b" / "last.pt"),
            ]
        )
        == 0
    )
    a, b = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(tmp_path / "b" / "last.pt")
    assert b["step"] == 4
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_views_resize_crop_and_whole_frames():
    from semprior.data.transforms import batch_random_crop, batch_view
    from semprior.engine.schedule import PatchSchedule

    s = PatchSchedule([(0, 32), (10, 64, 0.5), (20, 0, 0.5)])
    assert [s.view(k) for k in (0, 10, 25)] == [(32, 1.0), (64, 0.5), (0, 0.5)] and s.whole_frames
    for bad, msg in (
        (([(0, -1)],), "or 0 for the whole frame"),
        (([(0, 8, 1.5)],), "scale must be in"),
        (([(0, 8.5)],), "whole numbers"),
        (([(0, 8, 0.5, 1)],), "start_step, patch_size"),
    ):
        with pytest.raises(ValueError, match=msg):
            PatchSchedule(*bad)
    b = {"low": torch.rand(2, 3, 40, 60), "high": torch.rand(2, 3, 40, 60), "name": ["a", "b"]}
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(batch_view(b, 16, 1.0, g1)["low"], batch_random_crop(b, 16, g2)["low"])  # same code path
    half = batch_view(b, 0, 0.5, multiple=8)
    assert half["low"].shape == (2, 3, 16, 24) and half["name"] == ["a", "b"]
    ref = torch.nn.functional.interpolate(b["high"], size=(20, 30), mode="bilinear", antialias=True)[..., :16, :24]
    assert torch.allclose(half["high"], ref.clamp(0, 1))
    assert batch_view(b, 8, 0.5, torch.Generator().manual_seed(0))["low"].shape == (2, 3, 8, 8)


def test_whole_frame_stage_needs_whole_images(tiny_pairs, tmp_path, run_config_dict):
    from semprior.engine.recipe import run_training

    base = run_config_dict(tiny_pairs, tmp_path / "r", train={"steps": 2, "patch_stages": [[0, 0, 0.5]]})
    with pytest.raises(ValueError, match="set data.patch_size: 0"):
        run_training(from_dict(RunConfig, base))
    base["train"]["patch_stages"] = [[0, 8, 0.5]]
    with pytest.raises(ValueError, match="needs data.patch_size >= 16"):
        run_training(from_dict(RunConfig, base))
    base["data"]["patch_size"] = 0
    base["train"]["patch_stages"] = [[0, 0]]  # whole 12x16 frames, trimmed to the model's multiple
    seen = []
    model, trainer, result = run_training(from_dict(RunConfig, base), steps=0)
    orig = trainer.loss_fn
    trainer.loss_fn = lambda m, b: (seen.append(tuple(b["low"].shape)), orig(m, b))[1]
    trainer.fit()
    m = model.required_multiple
    assert seen == [(2, 3, 12 - 12 % m, 16 - 16 % m)] * 2


def test_dataset_cache_gives_the_same_items(tiny_pairs):
    plain = PairedFolder(tiny_pairs / "low", tiny_pairs / "high", patch_size=8, flip=True, seed=1)
    cached = PairedFolder(tiny_pairs / "low", tiny_pairs / "high", patch_size=8, flip=True, seed=1, cache=True)
    for epoch in (0, 1):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert torch.equal(a["low"], b["low"]) and torch.equal(a["high"], b["high"])
    assert len(cached.cache) == len(cached) and cached.cache[0][0].dtype == torch.uint8
