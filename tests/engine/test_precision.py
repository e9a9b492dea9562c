"""Inference precision: what ``auto`` picks, and every fast path within its stated error of fp32 eager."""

import pytest
import torch

from semprior.engine import precision as prec
from semprior.engine.precision import MIN_PSNR_DB, autocast_for, resolve_precision, slower_note
from semprior.engine.tiling import enhance_image
from semprior.models.deepspg import DeepSPG, DeepSPGConfig

CPU = torch.device("cpu")


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a.double() - b.double()).pow(2).mean()))


def _dark_image(h: int = 48, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A smooth dark test image (low-light statistics, not noise)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g) * 0.25
    return torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.fixture
def bf16_cpu(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))


def test_forced_precisions_and_bad_names():
    assert (
        resolve_precision(
            "fp32", DeepSPG(DeepSPGConfig(width=8, heads=(1, 1, 1), image_prior=False, text_prior=False)), CPU
        )
        == "fp32"
    )
    assert resolve_precision("bf16", torch.nn.Identity(), CPU) == "bf16"
    assert resolve_precision("fp16", torch.nn.Identity(), CPU) == "fp16"
    with pytest.raises(ValueError, match="unknown precision 'half'.*auto"):
        resolve_precision("half", torch.nn.Identity(), CPU)
    with pytest.raises(ValueError, match="resolve 'auto'"), autocast_for("auto", CPU):
        pass


def test_auto_needs_native_bf16_and_a_stated_error(bf16_cpu):
    net = torch.nn.Conv2d(3, 3, 1)
    assert resolve_precision("auto", net, CPU) == "fp32"  # states no error: the reference
    net.bf16_inference_psnr_db = MIN_PSNR_DB + 5
    assert resolve_precision("auto", net, CPU) == "bf16"
    net.bf16_inference_psnr_db = MIN_PSNR_DB - 1
    assert resolve_precision("auto", net, CPU) == "fp32"  # too far from fp32
    assert DeepSPG.bf16_inference_psnr_db >= MIN_PSNR_DB
    assert resolve_precision("auto", DeepSPG.__new__(DeepSPG), torch.device("meta")) == "fp32"  # no GPU timing yet


def test_auto_is_fp32_without_native_bf16(no_bf16_cpu):
    net = torch.nn.Conv2d(3, 3, 1)
    net.bf16_inference_psnr_db = 60.0
    assert resolve_precision("auto", net, CPU) == "fp32"


def test_slower_note_names_the_missing_instructions(monkeypatch):
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert "no avx512_bf16 / amx_bf16" in slower_note("bf16", CPU)
    assert "no avx512_fp16 / amx_fp16" in slower_note("fp16", CPU)
    assert slower_note("fp32", CPU) is None and slower_note("auto", CPU) is None
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert slower_note("bf16", CPU) is None
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"amx_bf16", "amx_fp16"}))
    assert slower_note("fp16", CPU) is None and slower_note("bf16", CPU) is None
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset())
    assert "instruction set is unknown" in slower_note("bf16", CPU)


def test_cpu_flags_are_read_from_cpuinfo():
    flags = prec.cpu_bf16_flags()
    assert set(flags) <= {"avx512_bf16", "amx_bf16"}


def _deepspg_random(width: int = 16) -> DeepSPG:
    torch.manual_seed(0)
    cfg = DeepSPGConfig(width=width, heads=(1, 2, 4), image_prior=False, text_prior=False)
    return DeepSPG(cfg).eval()


@pytest.mark.parametrize("mode", ["bf16", "fp16"])
@pytest.mark.parametrize("whole", [True, False], ids=["whole-graph", "banded"])
def test_autocast_deepspg_random_init_within_bound(whole, mode):
    net = _deepspg_random()
    if not whole:
        net.whole_graph_max_pixels = 0
    x = _dark_image()
    ref = enhance_image(net, x, precision="fp32")
    fast = enhance_image(net, x, precision=mode)
    assert fast.dtype == torch.float32 and fast.shape == x.shape
    assert not torch.equal(fast, ref)  # bf16 really ran
    assert _psnr(fast, ref) >= MIN_PSNR_DB


def test_bf16_shipped_deepspg_within_its_stated_error():
    from semprior.models import get_model_entry
    from semprior.models.factory import create_model_for_inference

    if not get_model_entry("deepspg").shipped_tags:
        pytest.skip("the shipped DeepSPG weights are not installed")
    net = create_model_for_inference("deepspg")
    x = _dark_image(64, 96, seed=1)
    ref = enhance_image(net, x, precision="fp32")
    fast = enhance_image(net, x, precision="bf16")
    assert not torch.equal(fast, ref)
    # the stated figure comes from real photos; a small synthetic one must stay within the 40 dB bound
    assert _psnr(fast, ref) >= MIN_PSNR_DB


def test_auto_runs_bf16_for_deepspg_exactly_when_resolved(bf16_cpu):
    net = _deepspg_random(8)
    x = _dark_image(24, 32)
    auto = enhance_image(net, x)  # precision="auto"
    assert torch.equal(auto, enhance_image(net, x, precision="bf16"))
    double = _deepspg_random(8).double()
    assert torch.equal(enhance_image(double, x.double()), enhance_image(double, x.double(), precision="fp32"))


def test_auto_runs_fp32_without_native_bf16(no_bf16_cpu):
    net = _deepspg_random(8)
    x = _dark_image(24, 32)
    assert torch.equal(enhance_image(net, x), enhance_image(net, x, precision="fp32"))
