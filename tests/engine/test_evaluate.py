"""Evaluation tables (with/without GT-mean), grids, checkpoint loading, eval15 known answers."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from semprior.engine.evaluate import (
    EvalResult,
    evaluate_methods,
)
from semprior.engine.grid import comparison_grid, save_grid
from semprior.metrics import MetricProtocol, psnr, ssim


def _pairs(n=2, h=24, w=31, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        high = torch.rand(3, h, w, generator=g)
        out.append({"low": high * 0.2, "high": high, "name": f"im{i}"})
    return out


class Scale(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x):
        return x * self.s


def test_scores_match_metrics_and_gt_mean_helps():
    pairs = _pairs()
    r = evaluate_methods({"identity": lambda x: x, "x5": Scale(5.0)}, pairs, keep=1)
    assert r.methods == ["identity", "x5"] and r.names == ["im0", "im1"]
    p = MetricProtocol()
    expect = [float(psnr(d["low"][None], d["high"][None], p)) for d in pairs]
    assert r.scores["identity"]["psnr"] == pytest.approx(expect)
    assert r.mean("identity", "ssim") == pytest.approx(
        sum(float(ssim(d["low"][None], d["high"][None], p)) for d in pairs) / 2
    )
    # low = 0.2 * high: GT-mean rescaling recovers the reference almost exactly
    assert r.mean("identity", "psnr_gtmean") > r.mean("identity", "psnr") + 10
    assert r.mean("x5", "psnr") > 35
    assert len(r.samples) == 1 and len(r.samples[0][1]) == 4  # input, 2 methods, reference


def test_markdown_json_and_grid(tmp_path):
    r = evaluate_methods({"identity": lambda x: x}, _pairs(3), keep=2)
    md = r.to_markdown()
    assert md.splitlines()[0].startswith("| method | PSNR")
    assert "| identity |" in md and "Protocol: PSNR/SSIM on RGB" in md and "GT-mean corrected" in md
    files = r.save(tmp_path / "out", grid_height=24)
    data = json.loads(files["json"].read_text())
    assert data["images"] == ["im0", "im1", "im2"] and "identity" in data["means"]
    from PIL import Image

    w, h = Image.open(files["grid"]).size
    assert h == 16 + 2 * (2 + 24) and w > 3 * 24  # label strip + 2 rows; 3 columns


def test_protocol_is_used():
    r = evaluate_methods({"id": lambda x: x}, _pairs(1), protocol=MetricProtocol(space="y", crop_border=2))
    assert "Y (BT.601)" in r.to_markdown() and "crop 2 px" in r.to_markdown()
    with pytest.raises(ValueError, match="gt_mean=False"):
        evaluate_methods({"id": lambda x: x}, _pairs(1), protocol=MetricProtocol(gt_mean=True))


def test_bad_inputs_are_reported():
    with pytest.raises(ValueError, match="no methods"):
        evaluate_methods({}, _pairs(1))
    with pytest.raises(ValueError, match="empty"):
        evaluate_methods({"id": lambda x: x}, [])
    with pytest.raises(ValueError, match="returned shape"):
        evaluate_methods({"crop": lambda x: x[..., 1:, :]}, _pairs(1))
    r = EvalResult(MetricProtocol())
    with pytest.raises(KeyError, match="no method"):
        r.mean("nope")


def test_grid_shapes_and_errors(tmp_path):
    g = comparison_grid([[torch.rand(1, 3, 10, 20), torch.rand(3, 10, 20)]] * 2, ["a", "b"], cell_height=10, pad=1)
    assert g.shape == (3, 16 + 2 * 11, 41)
    with pytest.raises(ValueError, match="one label per column"):
        comparison_grid([[torch.rand(3, 4, 4)]], ["a", "b"])
    with pytest.raises(ValueError, match=".png"):
        save_grid(tmp_path / "g.jpg", [[torch.rand(3, 4, 4)]], ["a"])


def _tiny_deepspg_ckpt(path, image_prior=False):
    from semprior.models.deepspg import DeepSPG, DeepSPGConfig

    cfg = DeepSPGConfig(width=8, heads=(1, 1, 1), blocks=(1, 1, 1), image_prior=image_prior, text_prior=False)
    prior = None
    if image_prior:
        from semprior.priors.region import RegionPrior

        prior = RegionPrior()
    torch.manual_seed(0)
    model = DeepSPG(cfg, prior=prior)
    torch.save({"model": model.state_dict(), "model_config": cfg.to_dict(), "model_name": "deepspg"}, path)
    return model


def test_deepspg_checkpoint_roundtrip(tmp_path):
    """The one loader (semprior.models.io.load_model) rebuilds a trainer checkpoint's DeepSPG from its config."""
    from semprior.models.io import load_model

    ref = _tiny_deepspg_ckpt(tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    x = torch.rand(1, 3, 19, 23)
    torch.testing.assert_close(model(x), ref.eval()(x))
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")


@pytest.mark.slow
def test_eval15_known_answers(shared_data):
    """Raw input and gamma 0.4 on the real LOL-v1 eval15 pairs reproduce the measured floors."""
    from semprior.data.datasets import PairedFolder
    from semprior.models.classical import Gamma

    root = shared_data / "lol_v1_eval15"
    r = evaluate_methods({"input": lambda x: x, "gamma": Gamma(0.4)}, PairedFolder(root / "low", root / "high"))
    assert len(r.names) == 15
    assert r.mean("input", "psnr") == pytest.approx(7.77, abs=0.01)
    assert r.mean("input", "ssim") == pytest.approx(0.195, abs=0.005)
    assert r.mean("input", "psnr_gtmean") == pytest.approx(18.79, abs=0.02)
    assert r.mean("gamma", "psnr") == pytest.approx(14.59, abs=0.02)
    assert r.mean("gamma", "ssim") == pytest.approx(0.621, abs=0.005)


class _Flaky(list):
    """A dataset whose item 1 cannot be read."""

    def __getitem__(self, i):
        if i == 1:
            from semprior.data.io import ImageReadError

            raise ImageReadError("cannot read x/im1.png: the file is truncated or corrupt (test)")
        return super().__getitem__(i)


def test_skip_leaves_failed_pairs_out_of_every_mean():
    pairs = _pairs(3)

    def fails_on_im2(x):
        return x[..., 1:, :] if x.shape[-1] == 31 and float(x.mean()) == float(pairs[2]["low"].mean()) else x

    with pytest.raises(Exception, match="truncated"):
        evaluate_methods({"identity": lambda x: x}, _Flaky(pairs))
    r = evaluate_methods({"identity": lambda x: x, "odd": fails_on_im2}, _Flaky(pairs), on_error="skip", keep=3)
    assert r.names == ["im0"] and r.total == 3
    assert [n for n, _ in r.failed] == ["pair 1", "pair 2"]
    assert "truncated" in r.failed[0][1] and "returned shape" in r.failed[1][1]
    # the one scored pair is the only one in both rows (im2's identity score is not kept either)
    assert len(r.scores["identity"]["psnr"]) == len(r.scores["odd"]["psnr"]) == 1
    assert r.mean("identity") == pytest.approx(
        float(psnr(pairs[0]["low"][None], pairs[0]["high"][None], MetricProtocol()))
    )
    md = r.to_markdown()
    assert "Averaged over 1 of 3 pair(s); 2 could not be scored" in md
    assert md.count("- not scored:") == 2
    d = r.to_dict()
    assert d["pairs_total"] == 3 and len(d["failed"]) == 2 and d["interrupted"] is False
    assert len(r.samples) == 1
    with pytest.raises(ValueError, match="on_error"):
        evaluate_methods({"identity": lambda x: x}, pairs, on_error="ignore")


def test_skip_with_every_pair_bad_is_an_error_and_a_clean_run_has_no_coverage_line():
    with pytest.raises(ValueError, match="no pair could be scored \\(2 failed\\)"):
        evaluate_methods({"crop": lambda x: x[..., 1:, :]}, _pairs(2), on_error="skip")
    assert "Averaged over" not in evaluate_methods({"id": lambda x: x}, _pairs(2)).to_markdown()


def test_should_stop_ends_the_run_after_the_current_pair():
    calls = []
    r = evaluate_methods({"id": lambda x: x}, _pairs(5), should_stop=lambda: calls.append(1) or len(calls) >= 2)
    assert r.names == ["im0", "im1"] and r.interrupted
    assert "Averaged over 2 of 5 pair(s); interrupted: 3 not evaluated." in r.to_markdown()


def test_save_is_atomic_and_sweeps_a_killed_runs_temps(tmp_path):
    from semprior._atomic import temp_name

    out = tmp_path / "out"
    out.mkdir()
    stale = out / temp_name("metrics.json", pid=2**31 - 1)
    stale.write_text("{half")
    files = evaluate_methods({"identity": lambda x: x}, _pairs(2), keep=1).save(out, grid_height=24)
    assert not stale.exists()
    assert sorted(p.name for p in out.iterdir()) == ["grid.png", "metrics.json", "metrics.md"]
    assert json.loads(files["json"].read_text())["pairs_total"] == 2


def test_a_pair_that_fails_while_scored_in_the_worker_is_listed_in_order():
    """Scores are computed in a worker thread overlapping the next pair's enhancement; results keep pair order."""
    pairs = _pairs(4)
    pairs[1] = {"low": pairs[1]["low"][:, :8, :8], "high": pairs[1]["high"][:, :8, :8], "name": "tiny"}  # SSIM refuses
    with pytest.raises(ValueError, match="SSIM needs images at least 11x11"):
        evaluate_methods({"identity": lambda x: x}, pairs)
    seen = []
    r = evaluate_methods(
        {"identity": lambda x: x, "x5": Scale(5.0)},
        pairs,
        on_error="skip",
        keep=2,
        on_output=lambda m, n, out: seen.append((m, n)),
    )
    assert r.names == ["im0", "im2", "im3"] and [n for n, _ in r.failed] == ["pair 1"]
    assert "SSIM needs images at least 11x11" in r.failed[0][1]
    assert seen == [(m, n) for n in ("im0", "im2", "im3") for m in ("identity", "x5")]  # failed pair: no output
    assert [n for n, _ in r.samples] == ["im0", "im2"]
    p = MetricProtocol()
    expect = [float(ssim(pairs[i]["low"][None] * 5, pairs[i]["high"][None], p)) for i in (0, 2, 3)]
    assert r.scores["x5"]["ssim"] == pytest.approx(expect, abs=1e-12)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_scoring_workers_keep_the_scores_and_their_order(monkeypatch, workers):
    """Scoring in worker threads (overlapping the next pairs' enhancement) gives the scores, in pair
    order, of scoring each pair in turn with no thread at all."""
    import semprior.engine.evaluate as ev
    from semprior.metrics import ReferenceScorer

    pairs = _pairs(5, h=23, w=29, seed=4)
    methods = {"identity": lambda x: x, "x3": Scale(3.0), "dim": lambda x: x * 0.5}
    expected: dict[str, dict[str, list[float]]] = {m: {k: [] for k in ev._KEYS} for m in methods}
    with torch.no_grad():
        for d in pairs:
            scorer = ReferenceScorer(d["high"][None])
            for m, f in methods.items():
                for k, v in scorer.scores(f(d["low"][None]).clamp(0, 1)).items():
                    expected[m][k].append(v)
    monkeypatch.setattr(ev, "SCORING_WORKERS", workers)
    r = evaluate_methods(methods, pairs)
    assert r.names == [d["name"] for d in pairs] and r.methods == list(methods)
    for m in methods:
        for k in ev._KEYS:
            assert r.scores[m][k] == pytest.approx(expected[m][k], rel=0, abs=1e-12), (m, k)


def test_scoring_workers_take_half_the_threads_and_leave_the_main_threads(monkeypatch):
    """The scoring workers share the cores with the enhancement: half the process's intra-op threads
    between them (at least one each); the main thread keeps its own."""
    import semprior.engine.evaluate as ev

    seen = []
    real = ev._score_outputs

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "_score_outputs", spy)
    before = torch.get_num_threads()
    try:
        for main_threads, workers, expected in ((4, 1, 2), (4, 2, 1), (1, 1, 1)):
            torch.set_num_threads(main_threads)
            monkeypatch.setattr(ev, "SCORING_WORKERS", workers)
            seen.clear()
            evaluate_methods({"identity": lambda x: x}, _pairs(3))
            assert seen == [expected] * 3 and torch.get_num_threads() == main_threads
    finally:
        torch.set_num_threads(before)


def test_two_scoring_workers_where_the_process_has_two_cores(monkeypatch):
    import os

    import semprior.engine.evaluate as ev

    for cores, expected in ((1, 1), (2, 2), (16, 2)):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid, n=cores: set(range(n)), raising=False)
        assert ev._default_scoring_workers() == expected


def test_extra_metrics_are_called_one_at_a_time_by_the_scoring_workers(monkeypatch):
    """Extra metrics may keep state (torchmetrics modules do), so two scoring workers never call them at once."""
    import threading
    import time

    import semprior.engine.evaluate as ev

    inside, most, lock = [0], [0], threading.Lock()

    def metric(out, high):
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)  # long enough for the other worker to arrive
        with lock:
            inside[0] -= 1
        return (out - high).abs().mean()

    monkeypatch.setattr(ev, "SCORING_WORKERS", 2)
    r = evaluate_methods({"identity": lambda x: x, "dim": lambda x: x * 0.5}, _pairs(6), extra_metrics={"l1": metric})
    assert len(r.scores["identity"]["l1"]) == 6 and most[0] == 1
