"""Bounded fuzzing (seconds): ``read_image`` on random and mutated files, and the CLI on random argv.

``read_image`` must return a valid ``(3, H, W)`` image in ``[0, 1]`` or raise ``ImageReadError`` -- never
another exception, never hang. The CLI must exit with an integer code and print no traceback.
"""

from __future__ import annotations

import contextlib
import io
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semprior.cli.main import main
from semprior.data.io import ImageReadError, read_image, write_image

PER_CASE_SECONDS = 10


class _Hang(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float):
    def on_alarm(signum, frame):
        raise _Hang(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)  # an outer timer (pytest-timeout) is restored after
    t0 = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if outer:
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - t0), 0.001))


def _seeds(folder: Path) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    out = {}
    for name, im, kw in [
        ("rgb.png", Image.fromarray(rgb), {}),
        ("gray.png", Image.fromarray(rgb[..., 0]), {}),
        ("palette.png", Image.fromarray(rgb).convert("P"), {}),
        ("rgba.png", Image.fromarray(np.dstack([rgb, rgb[..., :1]]), mode="RGBA"), {}),
        ("photo.jpg", Image.fromarray(rgb), {"quality": 90}),
        ("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), {}),
        ("image.bmp", Image.fromarray(rgb), {}),
        ("image.tif", Image.fromarray(rgb), {}),
    ]:
        im.save(folder / name, **kw)
        out[name] = (folder / name).read_bytes()
    write_image(folder / "rgb16.png", torch.rand(3, 7, 5, generator=torch.Generator().manual_seed(0)), bits=16)
    out["rgb16.png"] = (folder / "rgb16.png").read_bytes()
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    kind = rng.choice(["header", "flip", "truncate", "splice", "dims", "zero"])
    if kind == "header":  # overwrite bytes in the first 64 (signatures, IHDR/SOF, sizes)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(min(64, len(b)))] = rng.randrange(256)
    elif kind == "flip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        b = b[: rng.randrange(len(b))]
    elif kind == "splice":
        i = rng.randrange(len(b))
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 32)))
    elif kind == "dims":  # big-endian width/height of a PNG IHDR (or whatever lies there)
        off = rng.choice([16, 20])
        b[off : off + 4] = rng.choice([0, 1, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF]).to_bytes(4, "big")
    else:
        i = rng.randrange(len(b))
        b[i : i + rng.randint(1, 64)] = bytes(min(64, len(b) - i))
    return bytes(b)


def _check_read(path: Path) -> str:
    try:
        with time_limit(PER_CASE_SECONDS):
            x = read_image(path)
    except ImageReadError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        return "error"
    assert x.dim() == 3 and x.shape[0] == 3 and x.dtype == torch.float32 and x.numel() > 0
    assert bool(torch.isfinite(x).all()) and float(x.min()) >= 0 and float(x.max()) <= 1
    return "ok"


@pytest.mark.filterwarnings("ignore::UserWarning")  # PIL warns about the corrupt TIFF/EXIF tags we feed it
def test_fuzz_read_image(tmp_path):
    seeds = _seeds(tmp_path)
    rng = random.Random(1234)
    outcomes = {"ok": 0, "error": 0}
    t0, cases = time.monotonic(), 0
    target = tmp_path / "fuzz"
    for i in range(600):
        if time.monotonic() - t0 > 20:  # bounded in time as well as in count
            break
        name = rng.choice(sorted(seeds))
        data = _mutate(seeds[name], rng) if i % 10 else bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
        path = target.with_suffix(Path(name).suffix)
        path.write_bytes(data)
        try:
            outcomes[_check_read(path)] += 1
        except Exception as exc:  # noqa: BLE001 - report the mutation that escaped
            keep = tmp_path / f"crash_{i}{path.suffix}"
            keep.write_bytes(data)
            raise AssertionError(
                f"read_image raised {type(exc).__name__}: {exc} on a mutation of {name} (saved {keep})"
            ) from exc
        cases += 1
    assert cases >= 100, f"only {cases} cases ran in the time bound"
    print("read_image fuzz:", cases, "cases", outcomes)
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes  # both paths exercised


@pytest.mark.parametrize("width,height", [(0, 5), (5, 0), (0x7FFFFFFF, 1), (40000, 40000)])
def test_png16_header_with_absurd_dimensions(tmp_path, width, height):
    write_image(tmp_path / "a.png", torch.rand(3, 4, 4), bits=16)
    b = bytearray((tmp_path / "a.png").read_bytes())
    b[16:20], b[20:24] = width.to_bytes(4, "big"), height.to_bytes(4, "big")
    (tmp_path / "a.png").write_bytes(bytes(b))
    with time_limit(PER_CASE_SECONDS), pytest.raises(ImageReadError, match="a.png"):
        read_image(tmp_path / "a.png")


# ---------------------------------------------------------------- CLI argv


def _vocabulary(tmp_path: Path) -> list[str]:
    img = tmp_path / "in" / "x.png"
    write_image(img, torch.rand(3, 12, 12))
    (tmp_path / "in" / "notes.png").write_text("not an image")
    (tmp_path / "bad.yaml").write_text("train: [unclosed\n  steps: {")
    (tmp_path / "unknown.yaml").write_text("nope: 1\n")
    return [
        str(tmp_path / "bad.yaml"),
        str(tmp_path / "unknown.yaml"),
        "enhance",
        "eval",
        "train",
        "weights",
        "bogus",
        "--traceback",
        "-h",
        "--help",
        str(img),
        str(img.parent),
        str(tmp_path / "missing.png"),
        str(tmp_path / "in" / "notes.png"),
        "-o",
        "--out",
        str(tmp_path / "o"),
        "--model",
        "gamma",
        "lime",
        "he",
        "nope",
        "--checkpoint",
        str(img),
        "--tile",
        "0",
        "-1",
        "7",
        "abc",
        "1e9",
        "--overlap",
        "--max-memory-mb",
        "nan",
        "inf",
        "0.001",
        "--low",
        "--high",
        "--lol",
        "--split",
        "--grid",
        "--space",
        "y",
        "rgb",
        "--crop-border",
        "--float",
        "--config",
        "--resume",
        "--overwrite",
        "--no-progress",
        "--prior",
        "region",
        "",
        " ",
        "--",
        "-",
        "é☃",
        "--tile=",
        "--method=",
        "-ooo",
        "\x00"[:0] + "x" * 300,
    ]


def test_fuzz_cli_argv(tmp_path, monkeypatch):
    vocab = _vocabulary(tmp_path)
    options = [v for v in vocab if v.startswith("--") and len(v) > 2]
    numbers = ["0", "-1", "7", "abc", "1e9", "nan", "inf", "-inf", "0.001", "3", "99999"]
    monkeypatch.chdir(tmp_path)
    rng = random.Random(99)
    t0, runs, codes = time.monotonic(), 0, {}
    for _ in range(150):
        if time.monotonic() - t0 > 25:
            break
        if rng.random() < 0.3:  # unstructured token soup
            argv = [rng.choice(vocab) for _ in range(rng.randint(0, 7))]
        else:  # a real sub-command with random options, each followed by a random value
            argv = [rng.choice(["enhance", "eval", "train"])]
            for _ in range(rng.randint(0, 4)):
                value = rng.choice(numbers) if rng.random() < 0.5 else rng.choice(vocab)
                argv += [rng.choice(options), value]
            if argv[0] == "enhance":
                argv += [rng.choice(vocab[10:14]), "-o", str(tmp_path / "o"), "--model", rng.choice(["gamma", "nope"])]
        argv = [a for a in argv if a not in ("--traceback", "-h", "--help")]  # those print tracebacks / help on purpose
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                with time_limit(30):
                    rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if exc.code is not None else 0
            except Exception as exc:  # noqa: BLE001
                raise AssertionError(f"main({argv!r}) raised {type(exc).__name__}: {exc}") from exc
        assert isinstance(rc, int), (argv, rc)
        assert "Traceback" not in err.getvalue(), (argv, err.getvalue())
        if rc not in (0, 2):  # errors from a sub-command: the last line is one readable error line
            last = err.getvalue().strip().splitlines()[-1]
            assert "error:" in last, (argv, err.getvalue())
        codes[rc] = codes.get(rc, 0) + 1
        runs += 1
    print("cli fuzz:", runs, "runs, exit codes", codes)
    assert runs >= 30 and len(codes) >= 2, codes
