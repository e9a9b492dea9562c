"""``semprior enhance --dtype``: fp32 writes the reference, bf16/fp16 the autocast output, auto what resolves here."""

import pytest
import torch

from semprior.cli.main import main
from semprior.data.io import read_image, write_image
from semprior.engine import precision as prec


def _setup(tmp_path):
    from semprior.models.deepspg import DeepSPG, DeepSPGConfig

    torch.manual_seed(0)
    cfg = DeepSPGConfig(width=8, heads=(1, 1, 1), blocks=(1, 1, 1), image_prior=False, text_prior=False)
    ckpt = tmp_path / "tiny.pt"
    torch.save({"model": DeepSPG(cfg).state_dict(), "model_config": cfg.to_dict()}, ckpt)
    (tmp_path / "in").mkdir()
    for i in range(3):  # a folder: the reader and writer threads keep the input order
        g = torch.Generator().manual_seed(i)
        write_image(tmp_path / "in" / f"{i}.png", torch.rand(3, 20 + 4 * i, 28, generator=g) * 0.3)
    return ckpt


def _run(tmp_path, ckpt, name, *extra):
    out = tmp_path / name
    assert (
        main(["enhance", str(tmp_path / "in"), "-o", str(out), "--checkpoint", str(ckpt), "--no-progress", *extra]) == 0
    )
    return [read_image(out / f"{i}.png") for i in range(3)]


def test_dtype_flag(tmp_path, monkeypatch):
    ckpt = _setup(tmp_path)
    fp32 = _run(tmp_path, ckpt, "fp32", "--dtype", "fp32")
    bf16 = _run(tmp_path, ckpt, "bf16", "--dtype", "bf16")
    fp16 = _run(tmp_path, ckpt, "fp16", "--dtype", "fp16")
    for i, (a, b, c) in enumerate(zip(fp32, bf16, fp16)):
        assert a.shape == (3, 20 + 4 * i, 28) and a.shape == b.shape == c.shape
        assert (a - b).abs().max() <= 3 / 255  # bf16 moves 8-bit values by a level or two at most
        assert (a - c).abs().max() <= 2 / 255  # fp16 has 3 more mantissa bits
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    auto = _run(tmp_path, ckpt, "auto-no-bf16")  # default --dtype auto on a CPU without native bf16: fp32
    assert all(torch.equal(a, b) for a, b in zip(auto, fp32))
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    auto = _run(tmp_path, ckpt, "auto-bf16")
    assert all(torch.equal(a, b) for a, b in zip(auto, bf16))


@pytest.mark.parametrize(
    "argv",
    [["--dtype", "fp64"], ["--precision", "bf16"], ["--half"]],
    ids=["unknown-dtype", "old-precision-flag", "old-half-flag"],
)
def test_one_precision_flag(tmp_path, capsys, argv):
    with pytest.raises(SystemExit):
        main(["enhance", str(tmp_path), "-o", str(tmp_path / "o"), *argv])
    err = capsys.readouterr().err
    assert "invalid choice: 'fp64'" in err if argv[0] == "--dtype" else "unrecognized arguments" in err
