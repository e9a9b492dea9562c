"""`semprior eval` and `semprior enhance` end to end on tiny synthetic files."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from semprior.cli.main import main
from semprior.data.io import read_image, write_image


def _tiny_ckpt(path):
    from semprior.models.deepspg import DeepSPG, DeepSPGConfig

    cfg = DeepSPGConfig(width=8, heads=(1, 1, 1), blocks=(1, 1, 1), image_prior=False, text_prior=False)
    torch.save({"model": DeepSPG(cfg).state_dict(), "model_config": cfg.to_dict()}, path)
    return path


def test_eval_classical_table_and_grid(pair_dirs, capsys, eval_argv):
    out = pair_dirs / "report"
    rc = main(eval_argv(pair_dirs, "--model", "gamma", "--model", "identity", "--out", str(out), "--grid", "2"))
    text = capsys.readouterr().out
    assert rc == 0
    assert "| gamma |" in text and "| identity |" in text and "Protocol:" in text and "GT-mean" in text
    assert (out / "metrics.md").is_file() and (out / "metrics.json").is_file()
    assert Image.open(out / "grid.png").size[1] == 16 + 2 * (2 + 160)


def test_eval_checkpoint_and_lol_root(pair_dirs, tmp_path, capsys):
    lol = tmp_path / "LOL"
    (lol / "eval15").mkdir(parents=True)
    for d in ("low", "high"):
        (pair_dirs / d).rename(lol / "eval15" / d)
    ckpt = _tiny_ckpt(tmp_path / "m.pt")
    rc = main(["eval", "--lol", str(lol), "--checkpoint", str(ckpt), "--no-progress"])
    assert rc == 0 and "| m.pt |" in capsys.readouterr().out
    # two checkpoints with the same file name keep separate rows (labels from their folders)
    (tmp_path / "run_a").mkdir()
    (tmp_path / "run_b").mkdir()
    a, b = _tiny_ckpt(tmp_path / "run_a" / "best.pt"), _tiny_ckpt(tmp_path / "run_b" / "best.pt")
    rc = main(
        ["eval", "--lol", str(lol), "--checkpoint", str(a), "--checkpoint", str(b), "--model", "gamma", "--no-progress"]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "| run_a/best.pt |" in out and "| run_b/best.pt |" in out and "| gamma |" in out


def test_eval_errors(pair_dirs, capsys, eval_argv):
    assert main(["eval", "--low", str(pair_dirs / "low"), "--model", "gamma"]) == 1
    assert "give both --low and --high" in capsys.readouterr().err
    (pair_dirs / "low" / "extra.png").write_bytes((pair_dirs / "low" / "a.png").read_bytes())
    assert main(eval_argv(pair_dirs, "--model", "gamma")) == 1
    assert "unmatched" in capsys.readouterr().err
    assert main(eval_argv(pair_dirs, "--model", "magic")) == 1
    assert "unknown model 'magic'; choose one of" in capsys.readouterr().err


def test_enhance_odd_size_folder_and_exif(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "odd.png", torch.rand(3, 37, 53) * 0.2)
    im = Image.new("RGB", (20, 10), (10, 20, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    im.save(src / "rotated.jpg", exif=exif)
    out = tmp_path / "out"
    rc = main(["enhance", str(src), "-o", str(out), "--model", "gamma", "--no-progress"])
    assert rc == 0
    odd = read_image(out / "odd.png")
    assert odd.shape == (3, 37, 53) and odd.mean() > 0.2  # brightened
    assert read_image(out / "rotated.png").shape == (3, 20, 10)  # upright
    # existing outputs are not overwritten silently
    assert main(["enhance", str(src / "odd.png"), "-o", str(out), "--model", "gamma", "--no-progress"]) == 1
    assert "--overwrite" in capsys.readouterr().err


def test_enhance_checkpoint_tiled_odd_size(tmp_path):
    write_image(tmp_path / "x.png", torch.rand(3, 45, 71) * 0.3)
    ckpt = _tiny_ckpt(tmp_path / "m.pt")
    rc = main(
        [
            "enhance",
            str(tmp_path / "x.png"),
            "-o",
            str(tmp_path / "o"),
            "--checkpoint",
            str(ckpt),
            "--tile",
            "32",
            "--overlap",
            "8",
            "--no-progress",
        ]
    )
    assert rc == 0 and read_image(tmp_path / "o" / "x.png").shape == (3, 45, 71)


@pytest.mark.slow
def test_enhance_4k(tmp_path):
    """A 3840x2160 photo goes through in tiles and comes back full size (smooth content: fast PNG I/O)."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 2160), torch.linspace(0, 1, 3840), indexing="ij")
    img = torch.stack([xx * 0.2, yy * 0.2, (xx + yy) * 0.1])
    write_image(tmp_path / "uhd.png", img)
    rc = main(
        [
            "enhance",
            str(tmp_path / "uhd.png"),
            "-o",
            str(tmp_path / "o"),
            "--model",
            "gamma",
            "--tile",
            "1024",
            "--no-progress",
        ]
    )
    assert rc == 0
    src, out = read_image(tmp_path / "uhd.png"), read_image(tmp_path / "o" / "uhd.png")
    assert out.shape == (3, 2160, 3840)
    torch.testing.assert_close(out[:, ::301, ::401], src[:, ::301, ::401] ** 0.4, atol=0.6 / 255, rtol=0)


def test_enhance_errors(tmp_path, capsys):
    assert main(["enhance", str(tmp_path / "missing.png"), "-o", str(tmp_path / "o"), "--model", "gamma"]) == 1
    assert "input not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["enhance", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--model", "gamma"]) == 1
    assert "no images" in capsys.readouterr().err
    write_image(tmp_path / "x.png", torch.rand(3, 12, 12) * 0.3)
    assert (
        main(
            ["enhance", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--model", "gamma", "--checkpoint", "m.pt"]
        )
        == 1
    )
    assert "give one of --model or --checkpoint" in capsys.readouterr().err
    assert main(["enhance", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--model", "sllen"]) == 1
    assert "no weights for 'sllen' ship with semprior" in capsys.readouterr().err


def test_checkpoint_rebuilds_the_prior_it_records(tmp_path, capsys):
    """A RegionPrior-trained checkpoint needs no --prior: the CLI reads it from the file (and --prior overrides)."""
    from semprior.models.deepspg import DeepSPG, DeepSPGConfig
    from semprior.priors.region import RegionPrior

    cfg = DeepSPGConfig(width=8, heads=(1, 1, 1), image_prior=True, text_prior=False)
    ckpt = tmp_path / "best.pt"
    torch.save(
        {
            "model": DeepSPG(cfg, prior=RegionPrior()).state_dict(),
            "model_config": cfg.to_dict(),
            "model_name": "deepspg",
            "prior": "region",
            "text": "none",
        },
        ckpt,
    )
    write_image(tmp_path / "x.png", torch.rand(3, 30, 41) * 0.3)
    rc = main(
        ["enhance", str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--checkpoint", str(ckpt), "--no-progress"]
    )
    assert rc == 0 and read_image(tmp_path / "o" / "x.png").shape == (3, 30, 41)
    rc = main(
        [
            "enhance",
            str(tmp_path / "x.png"),
            "-o",
            str(tmp_path / "o2"),
            "--checkpoint",
            str(ckpt),
            "--prior",
            "none",
            "--no-progress",
        ]
    )
    assert rc == 1 and "image_prior=True but the prior is missing" in capsys.readouterr().err  # clear, not silent


def test_eval_dtype_defaults_to_the_fp32_reference(pair_dirs, tmp_path, monkeypatch, eval_argv):
    """`semprior eval` runs models in fp32 unless --dtype asks otherwise; --dtype bf16 is the same autocast path."""
    import json

    from semprior.engine import precision as prec

    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))  # auto would pick bf16 here
    ckpt = _tiny_ckpt(tmp_path / "m.pt")
    runs = {}
    for name, extra in (("default", []), ("fp32", ["--dtype", "fp32"]), ("bf16", ["--dtype", "bf16"])):
        out = tmp_path / name
        args = ["--checkpoint", str(ckpt), "--float", "--out", str(out), "--grid", "0", *extra]
        assert main(eval_argv(pair_dirs, *args)) == 0
        runs[name] = json.loads((out / "metrics.json").read_text())["per_image"]
    assert runs["default"] == runs["fp32"]
    assert runs["bf16"] != runs["fp32"]  # bf16 really ran
