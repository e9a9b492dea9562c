"""semprior.engine.run_log: the one reader of a run folder's log.jsonl (the candidates and their scoring run on a
real tiny training in tests/experiments/test_lolv1_cpu.py)."""

import json

import pytest

from semprior.engine.run_log import checkpoint_candidates, read_run_log


def _write(folder, records, tail=""):
    folder.mkdir(exist_ok=True)
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def test_hours_add_up_over_resumed_segments_and_a_cut_last_line_is_skipped(tmp_path):
    _write(
        tmp_path,
        [
            {"step": 10, "loss": 0.5, "seconds": 1800.0, "cpu_seconds": 1700.0},
            {"step": 10, "val/psnr": 18.0, "val/ssim": 0.6, "val/psnr_gtmean": 21.0},
            {"step": 20, "loss": 0.4, "seconds": 3600.0, "cpu_seconds": 3400.0},
            {"step": 30, "loss": 0.3, "seconds": 1800.0, "cpu_seconds": 1800.0},  # resumed: the clocks restart
            {"step": 30, "val/psnr": 19.5, "val/ssim": 0.7},
        ],
        tail='{"step": 40, "loss": 0.2, "seco',  # killed mid-write
    )
    log = read_run_log(tmp_path)
    assert log.step == 30 and log.cpu_exact
    assert log.hours == pytest.approx(1.5) and log.cpu_hours == pytest.approx((3400 + 1800) / 3600)
    assert log.val == [
        {"step": 10, "psnr": 18.0, "ssim": 0.6, "psnr_gtmean": 21.0},
        {"step": 30, "psnr": 19.5, "ssim": 0.7},
    ]
    assert log.loss == [(10, 0.5), (20, 0.4), (30, 0.3)]


def test_a_segment_without_cpu_time_counts_its_wall_time_and_says_so(tmp_path):
    _write(tmp_path, [{"step": 5, "loss": 1.0, "seconds": 360.0}, {"step": 6, "loss": 1.0, "seconds": 720.0}])
    log = read_run_log(tmp_path)
    assert not log.cpu_exact and log.cpu_hours == pytest.approx(0.2) == log.hours


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="log.jsonl not found: give a run folder"):
        read_run_log(tmp_path)
    with pytest.raises(FileNotFoundError, match="last.pt not found: give a run folder"):
        checkpoint_candidates(tmp_path)
