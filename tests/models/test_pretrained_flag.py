"""timm's ``pretrained=True/False`` spelling: True loads the default shipped weights, or says what to pass."""

from __future__ import annotations

import importlib

import pytest
import torch

from semprior.models import create_model
from semprior.models.factory import pretrained_path as shipped_path


def test_pretrained_true_is_the_default_shipped_tag():
    a = create_model("deepspg", pretrained=True)
    b = create_model("deepspg", pretrained="lolv1-cpu")
    assert not a.training
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert shipped_path("deepspg").name == "deepspg-lolv1-cpu"


def test_pretrained_false_is_random_init():
    assert create_model("deepspg", pretrained=False, width=8, heads=(1, 1, 1)).training


def test_pretrained_true_without_shipped_weights_says_what_to_pass():
    with pytest.raises(ValueError, match="no weights for 'sllen' ship with semprior.*pretrained=PATH"):
        create_model("sllen", pretrained=True)


def test_import_metrics_niqe_gives_the_module():
    mod = importlib.import_module("semprior.metrics.niqe")
    import semprior.metrics

    assert semprior.metrics.niqe is mod and callable(mod.niqe)
    import semprior

    assert semprior.niqe is mod.niqe
