"""Configs are bounded and every shape/type error is one line naming the file and the key."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from semprior._config import ConfigError, load_yaml
from semprior._memory import ModelTooLarge, available_bytes, check_model_fits
from semprior.cli.main import main


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    import semprior
    from semprior.models.io import save_pretrained

    net = semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1))
    return save_pretrained(net, tmp_path_factory.mktemp("pre"))


def _variant(pretrained, tmp_path, text: str):
    d = tmp_path / "m"
    d.mkdir()
    shutil.copy(pretrained / "model.safetensors", d)
    (d / "config.json").write_text(text)
    return d


def _record(pretrained):
    return json.loads((pretrained / "config.json").read_text())


CASES = {
    "json_list": (lambda r: "[1, 2]", r"config.json is not a semprior model config .*got list"),
    "prior_string": (lambda r: json.dumps({**r, "prior": "hrnet"}), r'config.json: "prior" must be null or an object'),
    "format_version_inf": (
        lambda r: json.dumps(r).replace('"format_version": 1', '"format_version": 1e999'),
        r'config.json: "format_version" must be a whole number, got inf',
    ),
    "format_version_string": (
        lambda r: json.dumps({**r, "format_version": "1"}),
        r'"format_version" must be a whole number',
    ),
    "bad_json": (lambda r: '{"format": ', r"config.json is not valid JSON \(Expecting value at line 1, column 12\)"),
    "model_not_string": (
        lambda r: json.dumps({**r, "model": ["retinexformer"]}),
        r'config.json: "model" must be a registry name',
    ),
    "model_unknown": (
        lambda r: json.dumps({**r, "model": ""}),
        r"""config.json: "model" must be a registry name .*got ''""",
    ),
    "config_list": (lambda r: json.dumps({**r, "config": [1]}), r'config.json: "config" must be an object'),
    "blocks_int": (
        lambda r: json.dumps({**r, "config": {**r["config"], "blocks": 5}}),
        r"config.json: retinexformer config.blocks must be a list \(e.g. \[1, 1, 1\]\), got 5",
    ),
    "width_bool": (
        lambda r: json.dumps({**r, "config": {**r["config"], "width": True}}),
        r"config.json: retinexformer config.width must be an integer, got True \(a boolean\)",
    ),
    "width_string": (
        lambda r: json.dumps({**r, "config": {**r["config"], "width": "wide"}}),
        r"config.width must be an integer, got 'wide'",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_json_shape_errors_are_one_line_naming_file_and_key(pretrained, tmp_path, case, capsys):
    from semprior.models.io import load_model

    make, pattern = CASES[case]
    d = _variant(pretrained, tmp_path, make(_record(pretrained)))
    with pytest.raises(ConfigError, match=pattern) as info:
        load_model(d)
    assert str(d / "config.json") in str(info.value) and "\n" not in str(info.value)
    assert main(["enhance", str(tmp_path / "none.png"), "-o", str(tmp_path / "o"), "--checkpoint", str(d)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_config_json_width_20000_is_refused_before_allocation(pretrained, tmp_path):
    from semprior.models.io import load_model

    r = _record(pretrained)
    d = _variant(pretrained, tmp_path, json.dumps({**r, "config": {**r["config"], "width": 20000}}))
    t0 = time.perf_counter()
    with pytest.raises(
        ModelTooLarge,
        match=r"config.json: the model needs \d+\.\d GiB for its weights .* "
        r"The size comes from `width: 20000` \(default \d+\): lower it",
    ):
        load_model(d)
    assert time.perf_counter() - t0 < 60  # decided on the meta device, not by allocating


def test_the_bound_follows_the_memory_available(monkeypatch):
    """A small model passes; the same model is refused once the limit is below its size."""
    import torch

    build = lambda c: torch.nn.Linear(c, c)  # noqa: E731
    assert check_model_fits(build, 100, "x") == (100 * 100 + 100) * 4
    monkeypatch.setenv("SEMPRIOR_MAX_MODEL_MB", "0.01")
    with pytest.raises(ModelTooLarge, match=r"^x: the model needs 0.0 GiB .*0.0 GiB are available"):
        check_model_fits(build, 100, "x")
    assert check_model_fits(build, 10, "x") == 440
    avail = available_bytes()
    assert avail is None or avail > 0


def _yaml(tmp_path, text):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


YAML_CASES = {
    "data: 5\n": r"config.data must be a mapping of DataConfig fields",
    "train: [1, 2]\n": r"config.train must be a mapping of TrainConfig fields",
    "train: {steps: true}\n": r"config.train.steps must be an integer, got True \(a boolean\)",
    "train: {lr: .inf}\n": r"config.train.lr must be a finite number",
    "model: {blocks: 5}\n": r"deepspg config.blocks must be a list",
    "model: 7\n": r"config.model must be a mapping",
    "prior: 5\n": r"config.prior must be a string, got 5 \(int\); quote it",
    "train: {betas: [0.9, x]}\n": r"config.train.betas\[1\] must be a number, got 'x'",
    "train: {restart_periods: [10, 2.5]}\n": r"config.train.restart_periods\[1\] must be an integer, got 2.5",
    "[1, 2]\n": r"must hold a YAML mapping at the top level, got list",
}


@pytest.mark.parametrize("text", sorted(YAML_CASES))
def test_yaml_shape_errors_are_one_line_naming_file_and_key(tmp_path, capsys, text):
    p = _yaml(tmp_path, text)
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "o"), "--print-config"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(p) in err, err
    import re

    assert re.search(YAML_CASES[text], err), err


def test_yaml_model_too_large_names_the_file_and_field(tmp_path, capsys):
    p = _yaml(tmp_path, "model: {width: 20000}\nprior: none\ntrain: {steps: 1, progress: false}\n")
    assert main(["train", "--config", str(p), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{p}: model: the model needs" in err and "`width: 20000`" in err
    assert not (tmp_path / "o").exists()


def _bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_fails_fast(tmp_path, capsys):
    p = _yaml(tmp_path, _bomb())
    assert p.stat().st_size < 1024
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"run.yaml expands to more than 1,000,000 values once its YAML aliases"):
        load_yaml(p)
    assert time.perf_counter() - t0 < 5
    assert main(["train", "--config", str(p)]) == 1
    assert capsys.readouterr().err.count("\n") == 1


def test_yaml_small_aliases_still_work_and_self_reference_is_refused(tmp_path):
    assert load_yaml(_yaml(tmp_path, _bomb(3)))["a2"][0][0] == ["x"] * 9
    with pytest.raises(ValueError, match="refers to itself"):
        load_yaml(_yaml(tmp_path, "a: &a [*a]\n"))
    with pytest.raises(ValueError, match="nests YAML lists or mappings too deeply"):
        load_yaml(_yaml(tmp_path, "a: " + "[" * 5000 + "]" * 5000 + "\n"))


@pytest.mark.parametrize("field", [{"stages": 10**9}, {"blocks": [1, 10**9, 1]}])
def test_config_json_a_billion_layers_is_refused_before_building_them(pretrained, tmp_path, field):
    """Meta tensors are free but Python modules are not: the build stops at MAX_MODULES submodules."""
    import resource

    from semprior.models.io import load_model

    r = _record(pretrained)
    d = _variant(pretrained, tmp_path, json.dumps({**r, "config": {**r["config"], **field}}))
    name = next(iter(field))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    with pytest.raises(
        ModelTooLarge, match=rf"config.json: the model would have more than 20,000 submodules .*`{name}: "
    ):
        load_model(d)
    assert time.perf_counter() - t0 < 60
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 2 * 2**20  # KiB: under 2 GiB more


def test_config_json_a_width_too_large_to_address_is_refused_not_allocated(pretrained, tmp_path):
    """The meta build overflows (sizes past 2**63 bytes): refused, never handed to the allocator."""
    from semprior.models.io import load_model

    r = _record(pretrained)
    d = _variant(pretrained, tmp_path, json.dumps({**r, "config": {**r["config"], "width": 64451728759479808}}))
    with pytest.raises(ModelTooLarge, match=r"config.json: the model has a tensor too large to address .*`width: "):
        load_model(d)
