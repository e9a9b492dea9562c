import pytest


@pytest.fixture
def eval15_pairs(shared_data):
    """The 15 LOL-v1 eval15 pairs as ``(name, low, high)``, images ``(1, 3, H, W)`` in [0, 1]; skips without data."""
    from semprior.data.io import list_images, read_image

    root = shared_data / "lol_v1_eval15"
    lows = list_images(root / "low")
    assert len(lows) == 15
    return [(f.name, read_image(f)[None], read_image(root / "high" / f.name)[None]) for f in lows]
