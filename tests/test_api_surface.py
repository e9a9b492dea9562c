"""Public API snapshot: adding or removing a public name must be a deliberate edit of this list."""

from __future__ import annotations

import importlib

import semprior

# sorted(semprior.__all__), written out literally
API = [
    "CLIPPromptLoss",
    "CUGD",
    "CUGDConfig",
    "CUIEBlock",
    "DeepSPG",
    "DeepSPGConfig",
    "EdgeLoss",
    "HRNetPrior",
    "IGAttentionBlock",
    "IlluminationEstimator",
    "ImageReadError",
    "LossWeights",
    "LowLightConfig",
    "MetricProtocol",
    "PairedFolder",
    "Phase",
    "PhaseSchedule",
    "PixelLoss",
    "PriorOutput",
    "PriorSpec",
    "RegionPrior",
    "RetinexDecomposer",
    "RetinexOutput",
    "Retinexformer",
    "RetinexformerConfig",
    "SAMPrior",
    "SEM",
    "SLLEN",
    "SLLENConfig",
    "SSIMLoss",
    "SegPrior",
    "SemanticContextLoss",
    "SemanticKLLoss",
    "SyntheticPairs",
    "TimmPrior",
    "TrainConfig",
    "Trainer",
    "__version__",
    "channel_attention",
    "classical_decompose",
    "create_model",
    "edge_loss",
    "enhance",
    "evaluate_unpaired",
    "from_pretrained",
    "list_images",
    "list_models",
    "load_model",
    "niqe",
    "pixel_loss",
    "psnr",
    "read_image",
    "save_pretrained",
    "semantic_context_loss",
    "semantic_kl_loss",
    "ssim",
    "ssim_loss",
    "synthesize_low_light",
    "write_image",
]

#: Names listed in ``semprior._EXPORTS`` whose module does not exist yet. The integrator
#: empties this set once every module has landed; a name here may fail to resolve.
PENDING: set[str] = set()


def test_snapshot_is_sorted_and_unique():
    assert sorted(API) == API
    assert len(API) == len(set(API))


def test_all_matches_snapshot():
    current = sorted(semprior.__all__)
    added, removed = sorted(set(current) - set(API)), sorted(set(API) - set(current))
    assert current == API, (
        f"public API changed: added {added}, removed {removed}; update tests/test_api_surface.py deliberately"
    )


def test_every_name_resolves():
    assert set(API) >= PENDING, f"PENDING lists names that are not public: {sorted(PENDING - set(API))}"
    for name in API:
        if name in PENDING:
            continue
        obj = getattr(semprior, name)
        assert obj is not None, name
        if name != "__version__":
            module = semprior._EXPORTS[name]
            assert getattr(importlib.import_module(module), name) is obj, name
    assert set(dir(semprior)) >= set(API)


def test_unknown_name_raises_attribute_error():
    try:
        semprior.DefinitelyNotAName  # noqa: B018
    except AttributeError as exc:
        assert "DefinitelyNotAName" in str(exc)
    else:
        raise AssertionError("semprior.DefinitelyNotAName should raise AttributeError")
