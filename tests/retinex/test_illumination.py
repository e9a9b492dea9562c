import pytest
import torch

from semprior.retinex import IlluminationEstimator


def _official_key_shapes(mid: int, n_in: int = 4, n_out: int = 3) -> dict[str, tuple[int, ...]]:
    # Retinexformer Illumination_Estimator layout (RetinexFormer_arch.py)
    return {
        "conv1.weight": (mid, n_in, 1, 1),
        "conv1.bias": (mid,),
        "depth_conv.weight": (mid, mid // n_in, 5, 5),
        "depth_conv.bias": (mid,),
        "conv2.weight": (n_out, mid, 1, 1),
        "conv2.bias": (n_out,),
    }


@pytest.mark.parametrize("mid", [4, 40])
def test_layout_matches_retinexformer(mid):
    est = IlluminationEstimator(mid)
    shapes = {k: tuple(v.shape) for k, v in est.state_dict().items()}
    assert shapes == _official_key_shapes(mid)
    # n_fea_middle=40: 200 + 10040 + 123
    if mid == 40:
        assert sum(p.numel() for p in est.parameters()) == 10363


def test_strict_load_of_synthetic_official_checkpoint():
    sd = {k: torch.randn(s) for k, s in _official_key_shapes(8).items()}
    est = IlluminationEstimator(8)
    est.load_state_dict(sd, strict=True)
    x = torch.rand(1, 3, 6, 6)
    fea, illu = est(x)
    # recompute the official forward by hand
    inp = torch.cat([x, x.mean(dim=1).unsqueeze(1)], dim=1)
    f = torch.nn.functional
    x1 = f.conv2d(inp, sd["conv1.weight"], sd["conv1.bias"])
    ref_fea = f.conv2d(x1, sd["depth_conv.weight"], sd["depth_conv.bias"], padding=2, groups=4)
    ref_map = f.conv2d(ref_fea, sd["conv2.weight"], sd["conv2.bias"])
    torch.testing.assert_close(fea, ref_fea)
    torch.testing.assert_close(illu, ref_map)


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of n_fea_in=4"):
        IlluminationEstimator(10)
    with pytest.raises(ValueError, match="must have 3 channels"):
        IlluminationEstimator(8)(torch.rand(1, 4, 8, 8))
