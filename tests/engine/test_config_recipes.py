"""``semprior train --config NAME`` finds the recipes that ship inside the package; a path still works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from semprior.engine.run_config import RECIPES_DIR, resolve_config, shipped_recipes

ROOT = Path(__file__).resolve().parents[2]


def test_recipes_ship_inside_the_package():
    assert RECIPES_DIR == ROOT / "semprior" / "configs"
    names = shipped_recipes()
    assert {"deepspg_lolv1", "retinexformer_lolv1", "cpu/deepspg_none_lolv1"} <= set(names)
    assert (ROOT / "configs").resolve() == RECIPES_DIR  # the clone's configs/ is the same folder, not a copy


@pytest.mark.parametrize("spelling", ["deepspg_lolv1", "deepspg_lolv1.yaml", "configs/deepspg_lolv1.yaml"])
def test_name_resolves(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the name must resolve to the shipped file
    assert resolve_config(spelling) == RECIPES_DIR / "deepspg_lolv1.yaml"


def test_a_path_wins(tmp_path):
    own = tmp_path / "deepspg_lolv1.yaml"
    own.write_text("model: {name: deepspg}\n")
    assert resolve_config(own) == own


def test_unknown_name_lists_the_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError,
        match="config file not found: deepspg_lolv2 .nor a shipped recipe.*deepspg_lolv1.*retinexformer_lolv1",
    ):
        resolve_config("deepspg_lolv2")


def test_train_cli_takes_a_recipe_name(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "semprior.cli.main", "train", "--config", "sllen_lolv1", "--print-config"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["model"]["name"] == "sllen"
    bad = subprocess.run(
        [sys.executable, "-m", "semprior.cli.main", "train", "--config", "nope"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert bad.returncode == 1 and "shipped recipe" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_set_overrides(tmp_path):
    from semprior.engine.run_config import apply_overrides

    raw = {"train": {"lr": 1e-3}, "prior": "region"}
    out = apply_overrides(raw, ["train.lr=2e-4", "train.patch_stages=[[0, 128]]", "prior=none", "data.patch_size=96"])
    assert out == {"train": {"lr": 2e-4, "patch_stages": [[0, 128]]}, "prior": "none", "data": {"patch_size": 96}}
    assert raw == {"train": {"lr": 1e-3}, "prior": "region"}  # a copy
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_overrides(raw, ["train.lr"])
    with pytest.raises(ValueError, match="prior is 'region', not a section"):
        apply_overrides(raw, ["prior.name=x"])


def test_train_cli_set(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "semprior.cli.main",
        "train",
        "--config",
        "sllen_lolv1",
        "--print-config",
        "--set",
        "train.lr=2.5e-4",
        "--set",
        "train.batch_size=3",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": ""}
    )
    assert out.returncode == 0, out.stderr
    cfg = json.loads(out.stdout)
    assert cfg["train"]["lr"] == 2.5e-4 and cfg["train"]["batch_size"] == 3
    bad = subprocess.run(
        cmd[:-4] + ["--set", "train.learning_rate=1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
    )
    assert bad.returncode == 1 and "learning_rate" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
