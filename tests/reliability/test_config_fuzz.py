"""Property-based fuzzing of configs, YAML, config.json and image headers: clear errors only, never a traceback.

Every generated case must either load or raise the library's own error types (``ValueError``, of
which ``ConfigError``/``ModelTooLarge``/``ImageReadError`` are kinds) with a one-line message.
``SEMPRIOR_FUZZ_EXAMPLES`` sets the examples per test (default 200, quick; thousands by hand).
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semprior._config import from_dict, load_yaml

EXAMPLES = int(os.environ.get("SEMPRIOR_FUZZ_EXAMPLES", "200"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

RUN_KEYS = [
    "model",
    "prior",
    "text",
    "weights_dir",
    "data",
    "train",
    "out_dir",
    "resume",
    "init",
    "segmentation",
    "phases",
    "bogus",
]
TRAIN_KEYS = [
    "steps",
    "epochs",
    "batch_size",
    "lr",
    "betas",
    "lr_schedule",
    "patch_stages",
    "seed",
    "ema_decay",
    "precision",
    "progress",
    "restart_periods",
    "grad_clip",
    "val_every",
]
DATA_KEYS = ["kind", "root", "low_dir", "high_dir", "patch_size", "length", "val_holdout", "synthesis", "skip_corrupt"]
MODEL_KEYS = [
    "name",
    "width",
    "blocks",
    "heads",
    "retinex_width",
    "illum_width",
    "depth",
    "stages",
    "loss",
    "backend",
    "coarse_to_fine",
    "image_prior",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            "deepspg",
            "retinexformer",
            "region",
            "none",
            "clip",
            "paired",
            "synthetic",
            "lol-v1",
            "1e-4",
            "cosine",
            "fp32",
            "bf16",
            "auto",
            "sllen",
            "cugd",
            "hrnet",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)


def _section(keys):
    return st.dictionaries(st.sampled_from(keys), values, max_size=4)


run_configs = st.one_of(
    values,
    st.fixed_dictionaries(
        {},
        optional={
            "model": st.one_of(values, _section(MODEL_KEYS)),
            "prior": st.one_of(values, st.sampled_from(["none", "region"])),
            "text": values,
            "data": st.one_of(values, _section(DATA_KEYS)),
            "train": st.one_of(values, _section(TRAIN_KEYS)),
            "phases": values,
            "segmentation": values,
            "bogus": values,
        },
    ),
)


def _well_typed(obj, where="config"):
    """What loaded has the types its fields declare (a boolean is not an int, numbers are finite)."""
    import dataclasses
    import math
    import typing

    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        v, tp = getattr(obj, f.name), hints[f.name]
        here = f"{where}.{f.name}"
        if dataclasses.is_dataclass(v):
            _well_typed(v, here)
        elif tp is int:
            assert type(v) is int, (here, v)
        elif tp is float:
            assert type(v) is float and math.isfinite(v), (here, v)
        elif tp is bool:
            assert type(v) is bool, (here, v)
        elif tp is str:
            assert type(v) is str, (here, v)
        elif typing.get_origin(tp) is tuple:
            assert type(v) is tuple, (here, v)
        elif typing.get_origin(tp) is dict:
            assert isinstance(v, dict), (here, v)
        elif dataclasses.is_dataclass(tp):
            raise AssertionError(f"{here} is {v!r}, not a {tp.__name__}")


def _one_line_library_error(exc: BaseException) -> None:
    assert isinstance(exc, ValueError), f"{type(exc).__name__}: {exc}"
    assert "\n" not in str(exc) and str(exc), repr(exc)


@SETTINGS
@given(run_configs)
def test_run_config_loads_or_gives_one_clear_line(monkeypatch, raw):
    from semprior.engine.recipe import RunConfig

    monkeypatch.setenv("SEMPRIOR_MAX_MODEL_MB", "20")
    try:
        run = from_dict(RunConfig, raw, "config")
        cfg = run.model_config()
    except Exception as exc:  # noqa: BLE001 - the property: only the library's errors
        _one_line_library_error(exc)
        return
    _well_typed(run)
    _well_typed(cfg)


@st.composite
def yaml_texts(draw):
    """YAML built from random values, with anchors and aliases (nested up to a bomb), or random text."""
    kind = draw(st.sampled_from(["dump", "aliases", "text", "bytes"]))
    if kind == "dump":
        import yaml

        return yaml.safe_dump(draw(values), default_flow_style=draw(st.booleans()))
    if kind == "aliases":
        levels, fan = draw(st.integers(1, 12)), draw(st.integers(1, 12))
        lines = [f"a0: &a0 [{', '.join(['x'] * fan)}]"]
        lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * fan)}]" for i in range(1, levels)]
        where = draw(st.sampled_from(["", "train: {patch_stages: *A}", "model: {blocks: *A}", "train: {steps: *A}"]))
        if where:
            lines.append(where.replace("A", f"a{levels - 1}"))
        return "\n".join(lines) + "\n"
    if kind == "text":
        return draw(st.text(alphabet=st.sampled_from(list("ab: -[]{}&*!|>'\"#%@`\n\t,?0123456789.e")), max_size=80))
    return draw(st.binary(max_size=80)).decode("latin-1")


@SETTINGS
@given(yaml_texts())
def test_yaml_loads_or_gives_one_clear_line(tmp_path_factory, text):
    from semprior.engine.recipe import RunConfig

    path = tmp_path_factory.mktemp("y") / "run.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        raw = load_yaml(path)
        run = from_dict(RunConfig, raw, "config")
        cfg = run.model_config()
    except Exception as exc:  # noqa: BLE001
        _one_line_library_error(exc)
        return
    _well_typed(run)
    _well_typed(cfg)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    import semprior
    from semprior.models.io import save_pretrained

    return save_pretrained(
        semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1)), tmp_path_factory.mktemp("p")
    )


@SETTINGS
@given(st.data())
def test_config_json_loads_or_gives_one_clear_line(pretrained, tmp_path_factory, monkeypatch, data):
    import shutil

    from semprior.models.io import load_model

    monkeypatch.setenv("SEMPRIOR_MAX_MODEL_MB", "20")
    record = json.loads((pretrained / "config.json").read_text())
    path = data.draw(
        st.sampled_from(
            [
                "",
                "format_version",
                "model",
                "config",
                "prior",
                "config.width",
                "config.blocks",
                "config.depth",
                "config.stages",
                "config.bogus",
                "config.backend",
            ]
        )
    )
    value = data.draw(values)
    if path == "":
        record = value
    elif path.startswith("config."):
        record["config"][path.split(".", 1)[1]] = value
    else:
        record[path] = value
    d = tmp_path_factory.mktemp("m")
    shutil.copy(pretrained / "model.safetensors", d)
    (d / "config.json").write_text(json.dumps(record))
    try:
        load_model(d)
    except Exception as exc:  # noqa: BLE001
        _one_line_library_error(exc)
        assert str(d) in str(exc), exc


def _png(width: int, height: int, depth: int, color: int, interlace: int, body: bytes) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(body)) + chunk(b"IEND", b"")


@SETTINGS
@given(
    width=st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    height=st.one_of(st.integers(0, 64), st.integers(0, 2**32 - 1)),
    depth=st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]),
    color=st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
    interlace=st.sampled_from([0, 1, 2]),
    body=st.binary(max_size=256),
)
def test_png_headers_read_or_give_one_clear_line(tmp_path_factory, width, height, depth, color, interlace, body):
    """Any IHDR (valid CRC, so the decoder trusts it): an image in [0, 1], or ImageReadError naming the file."""
    from semprior.cli.enhance import _pixels
    from semprior.data.io import ImageReadError, read_image

    path = tmp_path_factory.mktemp("png") / "x.png"
    path.write_bytes(_png(width, height, depth, color, interlace, body))
    assert _pixels(path) >= 0  # the header probe of enhance's memory bound never raises
    try:
        img = read_image(path)
    except ImageReadError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    assert img.shape[0] == 3 and img.shape[-2:] == (height, width)
    assert float(img.min()) >= 0 and float(img.max()) <= 1
