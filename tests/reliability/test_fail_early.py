"""Long work fails before it starts: unreadable training files stop the run before step 0, damaged weights at load."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from semprior.cli.main import main
from semprior.data.io import ImageReadError


def _pairs(root):
    """Four 32x32 pairs, the low image of pair 2 truncated (the helper of test_datasets_corrupt.py)."""
    from test_datasets_corrupt import _folder_pair

    return _folder_pair(root, size=32, broken=[("low", 2, "truncated")])


YAML = (
    "model: {name: deepspg, width: 4, heads: [1, 1, 1], retinex_width: 4, illum_width: 4}\nprior: none\n"
    "data: {kind: paired, low_dir: LOW, high_dir: HIGH, patch_size: 16SKIP}\n"
    "train: {steps: 2, batch_size: 2, progress: false, loss_curve: false}\n"
)


def _yaml(tmp_path, low, high, skip=False):
    p = tmp_path / "run.yaml"
    p.write_text(
        YAML.replace("LOW", str(low)).replace("HIGH", str(high)).replace("SKIP", ", skip_corrupt: true" if skip else "")
    )
    return str(p)


def test_an_unreadable_training_file_stops_the_run_before_step_0(tmp_path, capsys):
    low, high = _pairs(tmp_path)
    out = tmp_path / "run"
    assert main(["train", "--config", _yaml(tmp_path, low, high), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 unreadable training file(s)" in err and str(low / "2.png") in err
    assert "data.skip_corrupt: true" in err
    assert not (out / "last.pt").exists() and not (out / "log.jsonl").exists()


def test_the_advice_works_skip_corrupt_in_the_yaml(tmp_path, capsys):
    low, high = _pairs(tmp_path)
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", "--config", _yaml(tmp_path, low, high, skip=True), "--out", str(out)]) == 0
    assert any("skipped 1 unreadable image file(s)" in str(w.message) and "2.png" in str(w.message) for w in caught)
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2


def test_the_dataset_error_names_the_yaml_option(tmp_path):
    from semprior.data import PairedFolder

    low, high = _pairs(tmp_path)
    ds = PairedFolder(low, high)
    with pytest.raises(ImageReadError, match=r"skip_corrupt=True \(YAML: data.skip_corrupt: true\)"):
        [ds[i] for i in range(len(ds))]


def test_nan_weights_are_refused_at_load_naming_the_tensor(tmp_path, capsys):
    import safetensors.torch

    import semprior
    from semprior.models.io import load_model, save_pretrained

    d = save_pretrained(semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1)), tmp_path / "m")
    state = safetensors.torch.load_file(str(d / "model.safetensors"))
    key = sorted(k for k, v in state.items() if v.is_floating_point())[3]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    state[key].view(-1)[-1] = float("inf")
    safetensors.torch.save_file(state, str(d / "model.safetensors"))
    with pytest.raises(ValueError, match=rf"model.safetensors: tensor '{key}' holds 2 NaN/Inf value\(s\)"):
        load_model(d)
    # a trainer checkpoint goes through the same loader
    ck = tmp_path / "last.pt"
    torch.save(
        {
            "model": state,
            "model_name": "retinexformer",
            "model_config": semprior.create_model("retinexformer", width=4, blocks=(1, 1, 1)).config.to_dict(),
        },
        ck,
    )
    with pytest.raises(ValueError, match=rf"last.pt: tensor '{key}' holds 2 NaN/Inf"):
        load_model(ck)
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    assert main(["enhance", str(img), "-o", str(tmp_path / "o"), "--checkpoint", str(d)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "NaN/Inf" in err and key in err
    assert not (tmp_path / "o" / "a.png").exists()
