"""``semprior enhance`` for photographers: output format and quality, EXIF/ICC kept, one file out, folder trees,
device and dtype."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from semprior.cli import _models
from semprior.cli.main import main


def _photo(path, size=(40, 20), orientation=6):
    im = Image.new("RGB", size, (30, 20, 10))
    for x in range(0, size[0], 4):
        im.putpixel((x, x % size[1]), (200, 180, 90))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    exif[0x0132] = "2026:12:06 20:00:00"  # DateTime
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, exif=exif, quality=92, icc_profile=b"fake-icc-profile")
    return path


def _run(*argv):
    return main(["enhance", *map(str, argv), "--model", "gamma", "--no-progress"])


def test_one_file_out_keeps_exif_upright(tmp_path, capsys):
    src = _photo(tmp_path / "a.jpg")
    dst = tmp_path / "res" / "a_enhanced.jpg"
    assert _run(src, "-o", dst) == 0
    assert f"wrote {dst}" in capsys.readouterr().out
    with Image.open(dst) as im:
        assert im.format == "JPEG" and im.size == (20, 40)  # rotated by the EXIF orientation, written upright
        exif = im.getexif()
        assert exif[0x0112] == 1 and exif[0x010F] == "TestCam" and exif[0x0132] == "2026:12:06 20:00:00"
        assert im.info.get("icc_profile") == b"fake-icc-profile"
    assert _run(src, "-o", tmp_path / "bare.jpg", "--strip-metadata") == 0
    with Image.open(tmp_path / "bare.jpg") as im:
        assert not im.getexif() and "icc_profile" not in im.info


@pytest.mark.parametrize("suffix,fmt", [(".png", "PNG"), (".webp", "WEBP"), (".jpeg", "JPEG")])
def test_suffix_picks_the_format(tmp_path, suffix, fmt):
    src = _photo(tmp_path / "a.jpg")
    assert _run(src, "-o", tmp_path / f"o{suffix}") == 0
    with Image.open(tmp_path / f"o{suffix}") as im:
        assert im.format == fmt and im.getexif()[0x010F] == "TestCam"


def test_one_file_name_for_many_inputs_is_an_error(tmp_path, capsys):
    a, b = _photo(tmp_path / "in" / "a.jpg"), _photo(tmp_path / "in" / "b.jpg")
    assert _run(tmp_path / "in", "-o", tmp_path / "x.jpg") == 1
    assert "names one file but" in capsys.readouterr().err
    assert _run(a, b, "-o", tmp_path / "x.jpg") == 1
    assert "2 inputs are given; give a folder for -o" in capsys.readouterr().err
    assert not (tmp_path / "x.jpg").exists()
    assert _run(a, "-o", tmp_path / "y.jpg", "--format", "png") == 1
    assert "contradicts" in capsys.readouterr().err


def test_format_and_quality_for_a_folder(tmp_path):
    src = _photo(tmp_path / "in" / "a.jpg", size=(96, 64))
    Image.new("RGB", (16, 16)).save(tmp_path / "in" / "b.png")
    assert _run(tmp_path / "in", "-o", tmp_path / "png") == 0  # default: PNG
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["a.png", "b.png"]
    assert _run(tmp_path / "in", "-o", tmp_path / "same", "--format", "same") == 0
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["a.jpg", "b.png"]
    assert _run(src, "-o", tmp_path / "q95", "--format", "webp") == 0
    assert _run(src, "-o", tmp_path / "q20", "--format", "webp", "--quality", "20") == 0
    hi, lo = (tmp_path / "q95" / "a.webp").stat().st_size, (tmp_path / "q20" / "a.webp").stat().st_size
    assert lo < hi
    assert _run(src, "-o", tmp_path / "bad", "--quality", "0") == 1


def test_recursive_keeps_the_tree_and_a_skip_is_announced(tmp_path, capsys):
    _photo(tmp_path / "in" / "a.jpg")
    _photo(tmp_path / "in" / "day1" / "b.jpg")
    _photo(tmp_path / "in" / "day1" / "evening" / "c.jpg")
    assert _run(tmp_path / "in", "-o", tmp_path / "flat") == 0
    err = capsys.readouterr().err
    assert "skipped 1 subfolder(s)" in err and "day1" in err and "--recursive" in err
    assert [p.name for p in (tmp_path / "flat").iterdir()] == ["a.png"]
    assert _run(tmp_path / "in", "-o", tmp_path / "tree", "--recursive", "--format", "jpeg") == 0
    got = sorted(str(p.relative_to(tmp_path / "tree")) for p in (tmp_path / "tree").rglob("*.jpg"))
    assert got == ["a.jpg", "day1/b.jpg", "day1/evening/c.jpg"]
    assert "skipped" not in capsys.readouterr().err


def test_only_subfolders_without_recursive_says_so(tmp_path, capsys):
    _photo(tmp_path / "in" / "day1" / "b.jpg")
    assert _run(tmp_path / "in", "-o", tmp_path / "o") == 1
    assert "pass --recursive" in capsys.readouterr().err


def test_device_index_and_bad_devices(tmp_path, capsys):
    src = _photo(tmp_path / "a.jpg")
    if not torch.cuda.is_available():
        assert _run(src, "-o", tmp_path / "o", "--device", "cuda:1") == 1
        assert "sees no CUDA device" in capsys.readouterr().err
    assert _run(src, "-o", tmp_path / "o", "--device", "gpu7") == 1
    assert "use auto, cpu, cuda or cuda:N" in capsys.readouterr().err
    assert _models.pick_device("cpu") == torch.device("cpu")


def test_dtype_keeps_float32_weights_and_notes_a_slow_choice(capsys, monkeypatch):
    from argparse import Namespace

    from semprior.engine import precision as prec

    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    args = Namespace(model=None, checkpoint=None, prior=None, weights_dir=None, device="cpu", dtype="bf16")
    ((_, model),) = _models.build_models(args, default="deepspg").items()
    assert next(model.parameters()).dtype == torch.float32  # autocast at run time, never a cast of the weights
    assert "--dtype bf16 on this CPU" in capsys.readouterr().err
    _models.build_models(Namespace(**{**vars(args), "dtype": "auto"}), default="deepspg")
    assert capsys.readouterr().err == ""  # auto never picks a slower dtype: no note


def test_tiling_a_global_attention_model_warns(tmp_path, capsys):
    from semprior.data.io import write_image

    write_image(tmp_path / "x.png", torch.rand(3, 40, 72) * 0.3)
    rc = main(
        [
            "enhance",
            str(tmp_path / "x.png"),
            "-o",
            str(tmp_path / "o"),
            "--tile",
            "32",
            "--overlap",
            "8",
            "--no-progress",
        ]
    )
    assert rc == 0 and "attends over the whole image" in capsys.readouterr().err
    rc = main(["enhance", str(tmp_path / "x.png"), "-o", str(tmp_path / "o2"), "--tile", "128", "--no-progress"])
    assert rc == 0 and "attends over" not in capsys.readouterr().err  # one tile: the whole image
    rc = main(
        [
            "enhance",
            str(tmp_path / "x.png"),
            "-o",
            str(tmp_path / "o3"),
            "--tile",
            "32",
            "--overlap",
            "8",
            "--model",
            "gamma",
            "--no-progress",
        ]
    )
    assert rc == 0 and "attends over" not in capsys.readouterr().err  # per-pixel: tiles change nothing
