"""One vocabulary for model configs (`width`, `depth`, `heads`, `blocks`, `stages`); no other names."""

from __future__ import annotations

import dataclasses
import typing

import pytest
import torch

import semprior
from semprior.models.deepspg import DeepSPGConfig
from semprior.models.registry import MODELS, list_models
from semprior.models.retinexformer import RetinexformerConfig

#: field names that mean "a width" or "a depth" in other codebases; semprior says width / depth / blocks / stages
FORBIDDEN = {
    "channels",
    "n_feat",
    "nf",
    "dim",
    "base_dim",
    "base_channels",
    "num_channels",
    "num_features",
    "feat",
    "level",
    "levels",
    "num_levels",
    "n_levels",
    "num_blocks",
    "n_blocks",
    "stage",
    "num_stages",
    "num_heads",
    "n_heads",
}
#: channel counts of the image (not widths of the network)
IMAGE_CHANNELS = {"in_channels", "out_channels"}


# ------------------------------------------------------------------------------ the vocabulary
@pytest.mark.parametrize("name", list_models())
def test_every_registered_config_speaks_the_vocabulary(name):
    cls = MODELS[name].config_cls
    names = {f.name for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    bad = sorted(names & FORBIDDEN)
    assert not bad, (
        f"{cls.__name__} uses {bad}: write width (base channels), depth (down-samplings), blocks, stages, heads"
    )
    channel_fields = sorted(n for n in names - IMAGE_CHANNELS if "channel" in n or n.endswith(("_dim", "_feat")))
    allowed = {"context_dim"}  # CUGD: the channels of the prior's features it reads (an input, not a width)
    assert set(channel_fields) <= allowed, (
        f"{cls.__name__} names a width {channel_fields}: use width / <part>_width (docs/models.md, vocabulary)"
    )
    for key in ("width", "depth", "stages") + tuple(n for n in names if n.endswith("_width")):
        if key in names:
            assert hints[key] is int, f"{cls.__name__}.{key} must be an int"
    assert not hasattr(cls, "RENAMED_FIELDS"), "no renamed-field aliases: 0.1.0 was never published"


WITH_WIDTH = [n for n in list_models() if "width" in {f.name for f in dataclasses.fields(MODELS[n].config_cls)}]


@pytest.mark.parametrize("name", WITH_WIDTH)
def test_width_means_the_channels_of_the_first_level(name):
    assert {"deepspg", "retinexformer", "sllen", "cugd"} <= set(WITH_WIDTH)
    """The convolution that reads the image (3 channels, or 6 with a condition) gives ``width`` channels."""
    entry = MODELS[name]
    for width in (8, 16):
        model = semprior.create_model(name, **{**entry.tiny, "width": width})
        firsts = {m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels in (3, 6)}
        assert width in firsts, f"{name}: width={width} but the image-reading convs give {sorted(firsts)}"


def test_old_names_are_unknown_keys():
    """No pre-release aliases: an old name is an unknown key.

    The official Retinexformer names go through ``from_official``.
    """
    with pytest.raises(ValueError, match="unknown key"):
        DeepSPGConfig.from_dict({"channels": 8})
    with pytest.raises(ValueError, match="unknown key"):
        RetinexformerConfig.from_dict({"n_feat": 8})
    assert RetinexformerConfig.from_official({"n_feat": 8, "num_blocks": [1, 1, 1]}).width == 8
