"""Bad-input matrix over the public entry points: every case gives a correct result or an error that
names the problem and the fix. The CLI exits non-zero with one readable line and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from _rel_helpers import tiny_deepspg_config

import semprior as S
from semprior.cli.main import main
from semprior.data.io import ImageReadError, read_image, write_image
from semprior.engine.tiling import enhance_image


def _models():
    from semprior.models.classical import CLASSICAL
    from semprior.priors.region import RegionPrior

    torch.manual_seed(0)
    deep = S.DeepSPG(tiny_deepspg_config()).eval()
    return {
        "DeepSPG": deep,
        "RetinexDecomposer": S.RetinexDecomposer(8).eval(),
        "RegionPrior": RegionPrior(),
        "gamma": CLASSICAL["gamma"](),
        "lime": CLASSICAL["lime"](),
    }


_MODELS = None


def models():
    global _MODELS
    if _MODELS is None:
        _MODELS = _models()
    return _MODELS


#: image entry points that need 3-channel RGB: name -> callable(x) -> output
RGB_CALLS = {
    "psnr": lambda x: S.psnr(x, x),
    "ssim": lambda x: S.ssim(x, x),
    "classical_decompose": lambda x: S.classical_decompose(x),
    "RetinexDecomposer": lambda x: models()["RetinexDecomposer"](x),
    "DeepSPG": lambda x: models()["DeepSPG"](x),
    "RegionPrior": lambda x: models()["RegionPrior"](x),
    "classical.gamma": lambda x: models()["gamma"](x),
    "classical.lime": lambda x: models()["lime"](x),
    "enhance_image": lambda x: enhance_image(models()["DeepSPG"], x, tile=16, overlap=4),
}
#: entry points that take any channel count (losses)
ANY_CALLS = {
    "pixel_loss": lambda x: S.pixel_loss(x, x),
    "edge_loss": lambda x: S.edge_loss(x, x),
    "ssim_loss": lambda x: S.ssim_loss(x, x),
    "semantic_kl_loss": lambda x: S.semantic_kl_loss(x, x),
}
ALL_CALLS = {**RGB_CALLS, **ANY_CALLS}

#: bad tensors -> (exception type, words the message must contain: problem, fix)
BAD = {
    "rank3": (lambda: torch.rand(3, 16, 16), ValueError, ["(B, C, H, W)", "unsqueeze(0)"]),
    "rank5": (lambda: torch.rand(1, 1, 3, 16, 16), ValueError, ["(B, C, H, W)", "got (1, 1, 3, 16, 16)"]),
    "uint8": (
        lambda: torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8),
        TypeError,
        ["torch.uint8", ".float() / 255"],
    ),
    "int64": (lambda: torch.randint(0, 2, (1, 3, 16, 16)), TypeError, ["torch.int64", ".float()"]),
    "nan": (
        lambda: torch.rand(1, 3, 16, 16).index_fill_(2, torch.tensor([3]), float("nan")),
        ValueError,
        ["NaN", "nan_to_num"],
    ),
    "inf": (
        lambda: torch.rand(1, 3, 16, 16).index_fill_(3, torch.tensor([0]), float("inf")),
        ValueError,
        ["Inf", "nan_to_num"],
    ),
    "empty_hw": (lambda: torch.rand(1, 3, 0, 16), ValueError, ["empty", "at least"]),
    "empty_batch": (lambda: torch.rand(0, 3, 16, 16), ValueError, ["empty", "at least"]),
    "not_a_tensor": (lambda: [[0.5, 0.5]], TypeError, ["torch.Tensor", "torch.as_tensor"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("entry", sorted(ALL_CALLS))
def test_bad_tensor_is_refused_with_problem_and_fix(entry, case):
    make, exc, words = BAD[case]
    with pytest.raises(exc) as info:
        ALL_CALLS[entry](make())
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{entry}/{case}: {msg!r} lacks {w!r}"


@pytest.mark.parametrize("entry", sorted(RGB_CALLS))
@pytest.mark.parametrize("channels,hint", [(1, "grayscale"), (4, "RGBA"), (2, "3 channels")])
def test_wrong_channel_count_names_the_fix(entry, channels, hint):
    with pytest.raises(ValueError, match="3 channels") as info:
        RGB_CALLS[entry](torch.rand(1, channels, 16, 16))
    assert hint in str(info.value)


@pytest.mark.parametrize("entry", ["pixel_loss", "edge_loss", "ssim_loss", "semantic_kl_loss"])
@pytest.mark.parametrize("channels", [2, 4])
def test_losses_take_any_channel_count(entry, channels):
    x = torch.rand(2, channels, 16, 16)
    v = ANY_CALLS[entry](x)
    assert v.dim() == 0 and abs(float(v)) < 1e-5  # zero at equality, any channel count


#: image -> image entry points: 1x1 and sizes that are not multiples of the model's stride work
IMAGE_TO_IMAGE = ["DeepSPG", "classical.gamma", "classical.lime", "enhance_image"]


@pytest.mark.parametrize("entry", IMAGE_TO_IMAGE)
@pytest.mark.parametrize("hw", [(1, 1), (1, 9), (13, 7), (5, 33)])
def test_tiny_and_non_multiple_sizes_give_same_size_output(entry, hw):
    x = torch.rand(1, 3, *hw, generator=torch.Generator().manual_seed(0))
    y = RGB_CALLS[entry](x)
    assert y.shape == x.shape
    assert bool(torch.isfinite(y).all()) and float(y.min()) >= 0 and float(y.max()) <= 1


@pytest.mark.parametrize("hw", [(1, 1), (13, 7)])
def test_metrics_on_tiny_images(hw):
    x = torch.rand(1, 3, *hw)
    assert torch.isinf(S.psnr(x, x)).all()  # a correct result: identical images
    with pytest.raises(ValueError, match="at least 11x11.*use larger images"):
        S.ssim(x, x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes(dtype):
    x = torch.rand(1, 3, 12, 12).to(dtype)
    # metrics and losses compute in a wide dtype and accept any float
    assert torch.isinf(S.psnr(x, x)).all()
    assert float(S.pixel_loss(x, x)) == 0.0
    # a float32 model refuses other dtypes by name ...
    with pytest.raises(TypeError, match=r"dtype .* parameters of DeepSPG .* x\.to\(torch\.float32\)"):
        models()["DeepSPG"](x)
    # ... and enhance_image runs it in the model's dtype and returns the input's dtype
    y = enhance_image(models()["DeepSPG"], x)
    ref = models()["DeepSPG"](x.float())
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.allclose(y.float(), ref, atol=1e-2 if dtype != torch.float64 else 1e-6)


# ---------------------------------------------------------------- image files


@pytest.mark.parametrize(
    "kind",
    [
        "rgb",
        "gray",
        "rgba",
        "la",
        "palette",
        "bilevel",
        "cmyk",
        "jpeg",
        "gray16",
        "rgb16",
        "tiff_rgb",
        "tiny1x1",
        "odd",
    ],
)
def test_read_image_modes_give_rgb_in_unit_range(mode_files, kind):
    x = read_image(mode_files[kind])
    assert x.dim() == 3 and x.shape[0] == 3 and x.dtype == torch.float32
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_read_image_values_per_mode(mode_files):
    import numpy as np
    from PIL import Image

    rgb = torch.from_numpy(np.array(Image.open(mode_files["rgb"]))).permute(2, 0, 1).float() / 255
    assert torch.equal(read_image(mode_files["rgb"]), rgb)
    assert torch.equal(read_image(mode_files["rgba"]), rgb)  # alpha dropped, colour kept
    assert torch.equal(read_image(mode_files["gray"]), rgb[:1].expand(3, -1, -1))  # repeated grey
    g16 = torch.from_numpy(np.array(Image.open(mode_files["gray16"])).astype(np.float32)) / 65535
    assert torch.allclose(read_image(mode_files["gray16"])[0], g16)  # 16-bit precision kept
    assert len(torch.unique(read_image(mode_files["gray16"]))) > 256
    pal = torch.from_numpy(np.array(Image.open(mode_files["palette"]).convert("RGB"))).permute(2, 0, 1).float() / 255
    assert torch.equal(read_image(mode_files["palette"]), pal)


@pytest.mark.parametrize("kind", ["text", "empty", "truncated_png", "png_header_only", "random", "truncated_jpeg"])
def test_read_image_non_images_name_the_file(bad_files, kind):
    with pytest.raises(ImageReadError) as info:
        read_image(bad_files[kind])
    assert str(bad_files[kind]) in str(info.value)
    assert isinstance(info.value, ValueError)  # callers may catch ValueError


def test_read_image_missing_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="directory.*list_images"):
        read_image(tmp_path)


@pytest.mark.parametrize(
    "image,exc,words",
    [
        (torch.rand(2, 3, 4, 4), ValueError, "loop over it"),
        (torch.rand(4, 4), ValueError, "(3, H, W)"),
        (torch.rand(2, 4, 4), ValueError, "(3, H, W)"),
        (torch.zeros(3, 4, 4, dtype=torch.uint8), TypeError, "x.float() / 255"),
        (torch.full((3, 4, 4), float("nan")), ValueError, "nan_to_num"),
        (None, TypeError, "torch.Tensor"),
    ],
)
def test_write_image_bad_inputs(tmp_path, image, exc, words):
    with pytest.raises(exc) as info:
        write_image(tmp_path / "x.png", image)
    assert words in str(info.value)


def test_write_image_bad_suffix_and_bits(tmp_path):
    with pytest.raises(ValueError, match=r"\.png, \.jpg or \.jpeg"):
        write_image(tmp_path / "x.gif", torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="16-bit output needs PNG"):
        write_image(tmp_path / "x.jpg", torch.rand(3, 4, 4), bits=16)


# ---------------------------------------------------------------- CLI


def run_cli(argv, capsys):
    """``main(argv)`` -> (exit code, stdout, stderr); argparse errors become their exit code."""
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(rc, err, *words):
    assert rc not in (0, None), err
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.strip() and "img/s" not in ln]
    assert lines, "no error message"
    last = lines[-1]
    assert "error:" in last
    for w in words:
        assert w in last, f"{last!r} lacks {w!r}"
    return last


def test_cli_enhance_every_mode_folder(mode_files, tiny_checkpoint, tmp_path, capsys):
    folder = mode_files["rgb"].parent
    rc, out, err = run_cli(
        ["enhance", folder, "-o", tmp_path / "out", "--checkpoint", tiny_checkpoint, "--no-progress"], capsys
    )
    assert rc == 0, err
    for kind, src in mode_files.items():
        y = read_image(tmp_path / "out" / f"{src.stem}.png")
        assert y.shape == read_image(src).shape, kind


@pytest.mark.parametrize("kind", ["text", "truncated_png", "truncated_jpeg", "empty"])
def test_cli_enhance_non_image_is_one_line(bad_files, tmp_path, capsys, kind):
    # a batch goes on past an unreadable file and lists it with its reason, one line, exit 3
    rc, _, err = run_cli(["enhance", bad_files[kind], "-o", tmp_path, "--model", "gamma", "--no-progress"], capsys)
    assert rc == 3 and "Traceback" not in err
    named = [ln for ln in err.splitlines() if str(bad_files[kind]) in ln]
    assert len(named) == 1 and ("truncated" in named[0] or "not a recognised image" in named[0]), err
    # --fail-fast: the old single error line, exit 1
    rc, _, err = run_cli(
        ["enhance", bad_files[kind], "-o", tmp_path, "--model", "gamma", "--no-progress", "--fail-fast"], capsys
    )
    assert_one_line_error(rc, err, str(bad_files[kind]))


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--tile", "0"], ["--tile", ">= 1"]),
        (["--max-memory-mb", "-1"], ["max_memory_mb", "> 0"]),
        (["--max-memory-mb", "inf"], ["max_memory_mb", "finite"]),
        (["--max-memory-mb", "nan"], ["max_memory_mb", "finite"]),
        (["--tile", "8", "--overlap", "-3"], ["overlap", ">= 0"]),
        (["--tile", "8", "--overlap", "8"], ["overlap", "smaller than tile"]),
        (["--max-memory-mb", "0.0001"], ["too small", "raise max_memory_mb"]),
    ],
)
def test_cli_enhance_bad_options(mode_files, tiny_checkpoint, tmp_path, capsys, extra, words):
    argv = [
        "enhance",
        mode_files["odd"],
        "-o",
        tmp_path / "o",
        "--checkpoint",
        tiny_checkpoint,
        "--no-progress",
        *extra,
    ]
    rc, _, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, *words)


def test_cli_enhance_bad_checkpoint_and_method(mode_files, bad_files, tmp_path, capsys):
    rc, _, err = run_cli(["enhance", mode_files["rgb"], "-o", tmp_path, "--checkpoint", tmp_path / "nope.pt"], capsys)
    assert_one_line_error(rc, err, "model file not found")
    rc, _, err = run_cli(["enhance", mode_files["rgb"], "-o", tmp_path, "--checkpoint", bad_files["text"]], capsys)
    assert_one_line_error(rc, err, "weights_only=True", str(bad_files["text"]))
    rc, _, err = run_cli(["enhance", mode_files["rgb"], "-o", tmp_path, "--model", "nope"], capsys)
    assert_one_line_error(rc, err, "unknown model", "choose one of")
    rc, _, err = run_cli(["enhance", tmp_path / "missing.png", "-o", tmp_path, "--model", "gamma"], capsys)
    assert_one_line_error(rc, err, "input not found")


def test_cli_enhance_refuses_to_overwrite(mode_files, tmp_path, capsys):
    argv = ["enhance", mode_files["odd"], "-o", tmp_path, "--model", "gamma", "--no-progress"]
    assert run_cli(argv, capsys)[0] == 0
    rc, _, err = run_cli(argv, capsys)
    assert_one_line_error(rc, err, "exists", "--overwrite")
    assert run_cli(argv + ["--overwrite"], capsys)[0] == 0


def test_cli_eval_errors(bad_files, mode_files, tmp_path, capsys):
    rc, _, err = run_cli(["eval"], capsys)
    assert_one_line_error(rc, err, "--low", "--high")
    rc, _, err = run_cli(["eval", "--low", tmp_path / "nope", "--high", tmp_path], capsys)
    assert_one_line_error(rc, err, "not found")
    rc, _, err = run_cli(["eval", "--lol", tmp_path / "nope"], capsys)
    assert_one_line_error(rc, err, "expected folder", "layout")
    rc, _, err = run_cli(
        [
            "eval",
            "--low",
            bad_files["text"].parent,
            "--high",
            bad_files["text"].parent,
            "--model",
            "gamma",
            "--no-progress",
        ],
        capsys,
    )
    assert_one_line_error(rc, err, "cannot read", str(bad_files["text"].parent))
    rc, _, err = run_cli(
        [
            "eval",
            "--low",
            mode_files["rgb"].parent,
            "--high",
            mode_files["rgb"].parent,
            "--model",
            "gamma",
            "--grid",
            "-1",
        ],
        capsys,
    )
    assert_one_line_error(rc, err, "--grid")


def test_cli_argparse_errors_exit_2_without_traceback(capsys):
    for argv in (["bogus"], ["enhance"], ["enhance", "x.png", "-o", "o", "--tile", "abc", "--model", "gamma"]):
        rc, _, err = run_cli(argv, capsys)
        assert rc == 2 and "Traceback" not in err and "error:" in err.splitlines()[-1]


def test_cli_traceback_flag_reraises(mode_files, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        main(["--traceback", "enhance", str(mode_files["rgb"]), "-o", str(tmp_path), "--model", "nope"])


def test_cli_real_subprocess_one_line(bad_files, tmp_path):
    """The installed entry point, in a fresh process, with --fail-fast: exit 1, one line on stderr, no traceback."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [
        sys.executable,
        "-m",
        "semprior",
        "enhance",
        str(bad_files["truncated_png"]),
        "-o",
        str(tmp_path),
        "--model",
        "gamma",
        "--no-progress",
        "--fail-fast",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("semprior enhance: error:"), p.stderr
    assert "truncated" in lines[0] and str(bad_files["truncated_png"]) in lines[0]


@pytest.mark.parametrize(
    "content,words",
    [
        ("train: [unclosed\n", ["not valid YAML", "line 2"]),
        (b"\xff\xfe\x00binary", ["not a UTF-8 text file"]),
        ("- 1\n- 2\n", ["YAML mapping"]),
        ("bogus_key: 1\n", ["unknown key", "valid keys"]),
        ("train:\n  steps: abc\n", ["config.train"]),
    ],
)
def test_cli_train_bad_configs(tmp_path, capsys, content, words):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content if isinstance(content, bytes) else content.encode())
    rc, _, err = run_cli(["train", "--config", cfg, "--print-config"], capsys)
    assert_one_line_error(rc, err, *words)


def test_cli_train_and_weights_missing_paths(tmp_path, capsys, bad_files):
    rc, _, err = run_cli(["train", "--config", tmp_path / "nope.yaml"], capsys)
    assert_one_line_error(rc, err, "config file not found")
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("train:\n  steps: 1\n")
    rc, _, err = run_cli(["train", "--config", cfg, "--steps", "-5", "--print-config"], capsys)
    assert_one_line_error(rc, err, "steps must be >= 1")
    rc, _, err = run_cli(["train", "--config", cfg, "--resume", bad_files["text"], "--out", tmp_path / "r"], capsys)
    assert_one_line_error(rc, err, "could not load checkpoint", str(bad_files["text"]))
    rc, _, err = run_cli(["weights", "--dir", tmp_path / "nope"], capsys)
    assert_one_line_error(rc, err, "does not exist")


# ---------------------------------------------------------------- kernels


@pytest.mark.parametrize("fn", ["channel_attention", "ig_channel_attention"])
def test_kernel_entry_points_bad_inputs(fn):
    from semprior import kernels

    f = getattr(kernels, fn)
    q = torch.randn(1, 2, 4, 16)

    ones = torch.ones(2)

    def call(q=q, k=q, v=q, t=ones, **kw):
        return f(q, k, v, torch.rand_like(v), t, **kw) if fn.startswith("ig") else f(q, k, v, t, **kw)

    with pytest.raises(ValueError, match=r"\(B, heads, c, N\)"):
        call(q=q[0])
    with pytest.raises(TypeError, match="floating point"):
        call(q=q.long(), k=q.long())
    with pytest.raises(ValueError, match="same shape"):
        call(k=torch.randn(1, 2, 3, 16))
    with pytest.raises(ValueError, match="N = 0"):
        e = torch.randn(1, 2, 4, 0)
        call(q=e, k=e, v=e)
    with pytest.raises(ValueError, match="temperature"):
        call(t=torch.ones(3))
    with pytest.raises(ValueError, match="unknown channel-attention backend.*choose one of"):
        call(backend="cuda-magic")
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        with pytest.raises(RuntimeError, match="backend 'triton' cannot run this input: .*Pick another backend"):
            call(backend="triton")  # a forced backend that cannot run says why; no silent fallback
    out = call(q=torch.randn(1, 1, 1, 1), k=torch.randn(1, 1, 1, 1), v=torch.randn(1, 1, 1, 1), t=torch.ones(1))
    assert out.shape == (1, 1, 1, 1)  # one channel, one pixel: a correct (trivial) result
