"""Alternating multi-source training on engine.Trainer: order, parameter groups, exact resume, log, errors, DDP."""

import json
import os

import pytest
import torch
import torch.multiprocessing as mp
from _toy import ToyPairs, toy_loss  # noqa: E402
from _toy_phases import ToyMasks, TwoTask, cls_loss, ddp_phases_worker, enh_loss, schedule  # noqa: E402

from semprior.engine import Phase, PhaseSchedule, TrainConfig, Trainer  # noqa: E402


def _trainer(out=None, steps=9, sched=None, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False, log_every=1, **kw)
    return Trainer(TwoTask(), sched or schedule(), {"train": ToyPairs(), "masks": ToyMasks()}, cfg, out_dir=out)


def test_schedule_order_and_counts_match_a_brute_force_walk():
    s = schedule(2, 3)
    names = [s.phase(i).name for i in range(12)]
    assert names == ["enh", "enh", "cls", "cls", "cls"] * 2 + ["enh", "enh"]
    for step in range(13):
        assert s.count(step, source="masks") == names[:step].count("cls")
        assert s.count(step, phase="enh") == names[:step].count("enh")
    assert s.sources == ("train", "masks") and s.cycle == 5
    assert [p.steps for p in s.with_steps({"cls": 1}).phases] == [2, 1]
    with pytest.raises(ValueError, match=r"unknown phase\(s\) \['seg'\]"):
        s.with_steps({"seg": 1})
    with pytest.raises(ValueError, match="unique"):
        PhaseSchedule((Phase("a", enh_loss), Phase("a", cls_loss)))
    with pytest.raises(ValueError, match="steps must be >= 1"):
        Phase("a", enh_loss, steps=0)


def test_trainer_follows_the_schedule_and_the_log_names_each_phase(tmp_path):
    t = _trainer(tmp_path, steps=7, sched=schedule(2, 1))
    seen = []
    for ph in t.schedule.phases:  # record which loss ran on which batch kind
        object.__setattr__(
            ph, "loss_fn", (lambda f, n: lambda m, b: (seen.append((n, sorted(b))), f(m, b))[1])(ph.loss_fn, ph.name)
        )
    t.fit()
    assert [n for n, _ in seen] == ["enh", "enh", "cls"] * 2 + ["enh"]
    assert all(keys == (["high", "low", "name"] if n == "enh" else ["image", "mask"]) for n, keys in seen)
    recs = [json.loads(x) for x in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(r["step"], r["phase"]) for r in recs] == [(i + 1, n) for i, (n, _) in enumerate(seen)]
    assert all(("mse" in r) == (r["phase"] == "enh") and ("ce" in r) == (r["phase"] == "cls") for r in recs)
    assert set(t.curves) == {"enh/loss", "enh/mse", "cls/loss", "cls/ce"}


def test_each_phase_updates_only_its_parameter_groups():
    t = _trainer(steps=4, sched=schedule(1, 1))
    m = t.model
    groups = {"trunk": list(m.trunk.parameters()), "enh": list(m.enh.parameters()), "cls": list(m.cls.parameters())}
    expect = {"enh": {"trunk", "enh"}, "cls": {"trunk", "cls"}}
    batches = {
        "enh": {"low": t.data["train"].high[:4] * 0.3, "high": t.data["train"].high[:4]},
        "cls": {k: torch.stack([t.data["masks"][i][k] for i in range(4)]) for k in ("image", "mask")},
    }
    for step in range(4):
        phase = t.schedule.phase(t.step)
        before = {g: [p.detach().clone() for p in ps] for g, ps in groups.items()}
        adam_before = {
            id(p): int(t.optimizer.state[p]["step"]) if p in t.optimizer.state else 0 for p in m.parameters()
        }
        t.train_step(batches[phase.name])
        for g, ps in groups.items():
            changed = [not torch.equal(b, p) for b, p in zip(before[g], ps)]
            assert all(changed) if g in expect[phase.name] else not any(changed), (step, phase.name, g)
        for g, ps in groups.items():  # Adam moments of the other group are untouched, too
            for p in ps:
                now = int(t.optimizer.state[p]["step"]) if p in t.optimizer.state else 0
                assert now == adam_before[id(p)] + (g in expect[phase.name])
        assert all(p.requires_grad for p in m.parameters()), "requires_grad not restored after the step"


def test_resume_is_exact_with_two_sources(tmp_path):
    # sources of different lengths (4 and 2 batches per epoch), dropout, set_epoch-dependent data,
    # patch crops on the enhancement phase: stopping at step 7 is mid-epoch in both and mid-cycle
    kw = dict(steps=14, sched=schedule(2, 1), patch_stages=((0, 8), (6, 12)), ckpt_every=0)
    full = _trainer(tmp_path / "a", **kw)
    full.fit()
    half = _trainer(tmp_path / "b", **kw)
    half.fit(steps=7)
    torch.manual_seed(999)  # a different global RNG state must not matter after resume
    resumed = _trainer(tmp_path / "b", **kw)
    resumed.resume(tmp_path / "b" / "last.pt")
    assert resumed.step == 7 and resumed.schedule.phase(7).name == "enh"
    resumed.fit()
    for (k, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert full.curves == resumed.curves
    assert resumed.data["masks"].epochs_seen[0] == 1  # masks: 2 batches/epoch, 2 consumed by step 7 -> epoch 1

    def lines(p):
        return [
            {k: v for k, v in json.loads(x).items() if k not in ("seconds", "cpu_seconds")}
            for x in (p / "log.jsonl").read_text().splitlines()
        ]

    assert lines(tmp_path / "a") == lines(tmp_path / "b")


def test_resume_with_another_schedule_is_refused(tmp_path):
    _trainer(tmp_path / "a", steps=3, sched=schedule(2, 1)).fit()
    with pytest.raises(ValueError, match="resume with the same phases"):
        _trainer(tmp_path / "b", steps=6, sched=schedule(1, 1)).resume(tmp_path / "a" / "last.pt")
    torch.manual_seed(0)
    plain = Trainer(TwoTask(), toy_loss, ToyPairs(), TrainConfig(steps=2, batch_size=4, progress=False))
    with pytest.raises(ValueError, match="trained with phases"):
        plain.resume(tmp_path / "a" / "last.pt")


def test_alternating_training_lowers_both_losses_on_fixed_batches():
    torch.manual_seed(0)
    pairs, masks = ToyPairs(n=4), ToyMasks(n=4)
    masks.set_epoch = lambda e: None  # keep the images fixed: one batch per source, always the same items
    cfg = TrainConfig(steps=40, batch_size=4, lr=1e-2, lr_schedule="constant", progress=False, log_every=1)
    t = Trainer(TwoTask(dropout=0.0), schedule(1, 1), {"train": pairs, "masks": masks}, cfg)
    t.fit()
    enh, cls = [v for _, v in t.curves["enh/loss"]], [v for _, v in t.curves["cls/loss"]]
    assert enh[-1] < 0.5 * enh[0] and cls[-1] < 0.8 * cls[0], (enh[0], enh[-1], cls[0], cls[-1])


def test_bad_uses_are_clear_errors():
    data = {"train": ToyPairs(), "masks": ToyMasks()}
    with pytest.raises(TypeError, match="pass a PhaseSchedule"):
        Trainer(TwoTask(), toy_loss, data, TrainConfig(steps=1, batch_size=4, progress=False))
    with pytest.raises(TypeError, match="pass train_data as"):
        Trainer(TwoTask(), schedule(), ToyPairs(), TrainConfig(steps=1, batch_size=4, progress=False))
    with pytest.raises(ValueError, match=r"missing \['masks'\]"):
        Trainer(TwoTask(), schedule(), {"train": ToyPairs()}, TrainConfig(steps=1, batch_size=4, progress=False))
    with pytest.raises(ValueError, match="set train.steps"):
        Trainer(TwoTask(), schedule(), data, TrainConfig(epochs=2, batch_size=4, progress=False))
    with pytest.raises(ValueError, match="data source 'masks' has 10 items"):
        Trainer(TwoTask(), schedule(), data, TrainConfig(steps=1, batch_size=12, progress=False))
    other = torch.nn.Linear(2, 2)
    bad = PhaseSchedule((Phase("enh", enh_loss, params=lambda m: other.parameters()),))
    with pytest.raises(ValueError, match="not trainable parameters of the model"):
        Trainer(TwoTask(), bad, {"train": ToyPairs()}, TrainConfig(steps=1, batch_size=4, progress=False))


@pytest.mark.slow
def test_two_process_gloo_alternating_schedule_matches_single_process(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")
    steps = 5
    mp.spawn(ddp_phases_worker, args=(2, str(tmp_path / "init"), str(tmp_path), steps), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    torch.manual_seed(0)
    single = Trainer(
        TwoTask(dropout=0.0),
        schedule(),
        {"train": ToyPairs(), "masks": ToyMasks()},
        TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False),
    )
    single.fit()
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
    assert not os.environ.get("RANK")
