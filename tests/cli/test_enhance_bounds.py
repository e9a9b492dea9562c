"""`semprior enhance` bounds its memory by default, reruns into its input folder, and keeps reports on one line
per file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import semprior._memory as memory
import semprior.engine.tiling as tiling
from semprior.cli.main import main
from semprior.engine.tiling import IMAGE_BUFFER_BYTES_PER_PIXEL, default_memory_mb

MB = 2**20


def _jpeg(path, seed=0, size=(40, 50)):
    rgb = np.random.default_rng(seed).integers(0, 80, (*size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path, quality=90)
    return path


def test_default_bound_is_half_of_what_the_image_buffers_leave():
    assert default_memory_mb(6000 * 4000, 8 * 2**30) == pytest.approx(
        (8 * 2**30 - 24e6 * IMAGE_BUFFER_BYTES_PER_PIXEL) / 2 / MB
    )
    assert default_memory_mb(10, None) is None  # unknown memory: no bound
    with pytest.raises(
        ValueError,
        match=r"big.png \(24.0 megapixels\) needs about 1465 MB for its buffers and 1000 MB "
        r"are available; .*--max-memory-mb MB or --tile PIXELS",
    ):
        default_memory_mb(6000 * 4000, 1000 * MB, name="big.png")


@pytest.fixture
def spy(monkeypatch):
    """Record the cap the CLI passes and the piece sizes the model runs on."""
    seen = {"caps": [], "pieces": []}
    real_enhance, real_run = tiling.enhance_image, tiling._run_padded

    def enhance(model, img, **kw):
        seen["caps"].append(kw.get("max_memory_mb"))
        return real_enhance(model, img, **kw)

    def run(model, x, *a):
        seen["pieces"].append(tuple(x.shape[-2:]))
        return real_run(model, x, *a)

    monkeypatch.setattr(tiling, "enhance_image", enhance)
    monkeypatch.setattr(tiling, "_run_padded", run)
    return seen


def test_default_command_tiles_when_the_whole_image_does_not_fit(tmp_path, monkeypatch, spy, capsys):
    img = _jpeg(tmp_path / "a.jpg", size=(256, 256))
    avail = 200 * MB  # the whole image needs 256*256*4096 B = 256 MB of activations: tiles
    monkeypatch.setattr(memory, "available_bytes", lambda: avail)
    assert main(["enhance", str(img), "-o", str(tmp_path / "o"), "--model", "lime", "--no-progress"]) == 0
    want = (avail - 256 * 256 * IMAGE_BUFFER_BYTES_PER_PIXEL) / 2 / MB
    assert spy["caps"] == [pytest.approx(want)]
    assert len(spy["pieces"]) > 1 and max(max(p) for p in spy["pieces"]) < 256
    assert (tmp_path / "o" / "a.png").is_file()


def test_default_command_runs_whole_images_that_fit(tmp_path, monkeypatch, spy):
    img = _jpeg(tmp_path / "a.jpg", size=(64, 64))
    monkeypatch.setattr(memory, "available_bytes", lambda: 4 * 2**30)
    assert main(["enhance", str(img), "-o", str(tmp_path / "o"), "--model", "lime", "--no-progress"]) == 0
    assert spy["pieces"] == [(64, 64)]


def test_an_image_that_cannot_fit_is_refused_before_decoding(tmp_path, monkeypatch, spy, capsys):
    img = _jpeg(tmp_path / "a.jpg", size=(256, 256))
    monkeypatch.setattr(memory, "available_bytes", lambda: 10 * MB)
    assert main(["enhance", str(img), "-o", str(tmp_path / "o"), "--model", "lime", "--no-progress"]) == 3
    err = capsys.readouterr().err
    assert "--max-memory-mb" in err and "--tile" in err and spy["pieces"] == []
    assert (
        main(["enhance", str(img), "-o", str(tmp_path / "o"), "--model", "lime", "--fail-fast", "--no-progress"]) == 1
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-memory-mb" in err
    # an explicit bound is the user's choice, not second-guessed per image
    assert (
        main(
            ["enhance", str(img), "-o", str(tmp_path / "o"), "--model", "lime", "--max-memory-mb", "8", "--no-progress"]
        )
        == 0
    )


def test_max_memory_beyond_what_is_available_is_refused_up_front(tmp_path, monkeypatch, capsys):
    img = _jpeg(tmp_path / "a.jpg")
    monkeypatch.setattr(memory, "available_bytes", lambda: 100 * MB)
    assert main(["enhance", str(img), "-o", str(tmp_path / "o"), "--model", "lime", "--max-memory-mb", "500"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--max-memory-mb 500 is more than the 100 MB available" in err
    assert not (tmp_path / "o").exists()


def test_output_folder_equal_to_the_input_folder_works_on_reruns(tmp_path, capsys):
    d = tmp_path / "photos"
    d.mkdir()
    for i, n in enumerate("ab"):
        _jpeg(d / f"{n}.jpg", i)
    argv = ["enhance", str(d), "-o", str(d), "--model", "gamma", "--no-progress"]
    assert main(argv) == 0
    assert sorted(p.name for p in d.iterdir()) == ["a.jpg", "a.png", "b.jpg", "b.png"]
    mtimes = {p.name: p.stat().st_mtime_ns for p in d.glob("*.png")}
    capsys.readouterr()
    assert main([*argv, "--skip-existing"]) == 0
    out, err = capsys.readouterr()
    assert "2 PNG(s) in" in err and "not enhanced again" in err and "wrote 0 of 0" in out
    assert {p.name: p.stat().st_mtime_ns for p in d.glob("*.png")} == mtimes
    assert main(argv) == 1  # without a flag: the usual "exists; pass --skip-existing ... --overwrite" line
    assert "a.png exists; pass --skip-existing" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in d.iterdir()) == ["a.jpg", "a.png", "b.jpg", "b.png"]


def test_a_file_name_with_a_newline_does_not_split_the_report(tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    _jpeg(d / "good.jpg")
    bad = _jpeg(d / "bad\nname.jpg", 1)
    bad.write_bytes(bad.read_bytes()[:200])
    assert main(["enhance", str(d), "-o", str(tmp_path / "o"), "--model", "gamma", "--no-progress"]) == 3
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0] == "semprior enhance: 1 input(s) failed:"
    assert len(lines) == 2 and "bad\\nname.jpg" in lines[1]
