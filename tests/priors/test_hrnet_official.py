"""HRNetPrior equals the official forward: known answers measured with the official code.

How the answers were made (outside this repository; see docs/weights.md): the official models
(HRNet-Semantic-Segmentation ``HighResolutionNet`` from the HRNet-OCR branch with the ADE20K /
Pascal-Context configs, and the master branch's W18-small-v1 config; CSAIL ``HRNetV2`` + ``C1``)
were built, filled with :func:`_official_layouts.fill` (deterministic per key name, stored in
float32 as the real releases are), saved as the official training scripts save them, loaded
through ``HRNetPrior``'s default path (built in float32, as a user builds it), and both run in
float64 on :func:`_official_layouts.seeded_image` inputs. The largest difference between
the two was 0 for every case below; the official outputs' fingerprints
(:func:`_official_layouts.summary`) are stored in ``hrnet_official_answers.json``.

Default arguments everywhere: the release decides ``align_corners`` (ADE20K True, Pascal-Context
and CSAIL False) and no input is padded (sizes that are not multiples of 32 included).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from _official_layouts import (
    csail_decoder_keys,
    hrnet_backbone_keys,
    hrnet_seg_keys,
    official_state,
    seeded_image,
    summary,
)

from semprior.priors import HRNetPrior

ANSWERS = json.loads((Path(__file__).parent / "hrnet_official_answers.json").read_text())["cases"]
#: the releases' real layouts: the ADE20K file is a PyTorch-0.4 one (no num_batches_tracked)
LAYOUTS = {
    "w18_small/ade20k": ("w18_small", "ade20k", 150, "torch"),
    "w18_small/pascal_context": ("w18_small", "pascal_context", 59, "torch"),
    "w48/ade20k": ("w48", "ade20k", 150, "inplace_abn"),
    "w48/pascal_context": ("w48", "pascal_context", 59, "torch"),
}
_CACHE: dict = {}


def _prior(tag: str, tmp_path_factory) -> HRNetPrior:
    if tag not in _CACHE:
        d = tmp_path_factory.mktemp(tag.replace("/", "-"))
        if tag == "csail/w48":  # as CSAIL's train.py checkpoint() writes them
            folder = d / "ade20k-hrnetv2-c1"
            folder.mkdir()
            torch.save(
                official_state(hrnet_backbone_keys("w48", "csail"), torch.float32), folder / "encoder_epoch_30.pth"
            )
            torch.save(official_state(csail_decoder_keys(), torch.float32), folder / "decoder_epoch_30.pth")
            _CACHE[tag] = HRNetPrior("w48", dataset="ade20k", weights=folder).double()
        else:  # FullModel(model, loss).state_dict(), as tools/train.py writes it
            variant, dataset, k, bn = LAYOUTS[tag]
            torch.save(official_state(hrnet_seg_keys(variant, k, bn), torch.float32), d / "final_state.pth")
            _CACHE[tag] = HRNetPrior(variant, dataset=dataset, weights=d / "final_state.pth").double()
    return _CACHE[tag]


def _check(got: list[float], want: list[float], what: str) -> None:
    # float64 through a deep net on another CPU: ~1e-13 relative; a wrong resize changes the
    # outputs by 1e-3 or more (see test_the_fingerprint_detects_padding_and_align_corners)
    scale = want[1]  # sum of magnitudes
    assert abs(got[0] - want[0]) <= 1e-9 * scale, f"{what}: sum {got[0]!r} != {want[0]!r}"
    assert abs(got[1] - want[1]) <= 1e-9 * scale, f"{what}: abs-sum {got[1]!r} != {want[1]!r}"
    torch.testing.assert_close(torch.tensor(got[2:]), torch.tensor(want[2:]), rtol=0, atol=1e-8, msg=what)


def _size(case: str) -> tuple[int, int]:
    h, w = case.split(" ")[1].split("x")
    return int(h), int(w)


def _params():
    for case in sorted(ANSWERS):
        marks = [pytest.mark.slow] if ("w48" in case or "400x600" in case) else []
        yield pytest.param(case, id=case.replace(" ", "-"), marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_equals_the_official_forward(case, tmp_path_factory):
    tag = case.split(" ")[0]
    h, w = _size(case)
    want = ANSWERS[case]
    assert want["max_diff_vs_official"] == 0.0  # what the official comparison measured
    prior = _prior(tag, tmp_path_factory)
    out = prior(seeded_image(h, w, seed=h * 1000 + w))
    assert out.logits.dtype == torch.float64 and out.logits.shape[-2:] == (-(-h // 4), -(-w // 4))
    _check(summary(out.logits), want["logits"], f"{case} logits")
    for i, (f, fw) in enumerate(zip(out.features, want["feats"])):
        _check(summary(f), fw, f"{case} branch {i}")


def test_the_fingerprint_detects_padding_and_align_corners(tmp_path_factory):
    """The known answers can fail: padding to a multiple of 32 (the former forward) or the other
    align_corners moves the logits far beyond the tolerance."""
    case = "w18_small/ade20k 72x104"
    prior = _prior("w18_small/ade20k", tmp_path_factory)
    x = seeded_image(72, 104, seed=72 * 1000 + 104)
    exact = prior(x).logits
    padded = prior(F.pad(x, (0, 24, 0, 24), mode="replicate")).logits[..., :18, :26]
    assert (padded - exact).abs().max() > 1e-3
    with pytest.raises(AssertionError):
        _check(summary(padded), ANSWERS[case]["logits"], "padded")
    prior.align_corners = False
    try:
        other = prior(x).logits
    finally:
        prior.align_corners = True
    assert (other - exact).abs().max() > 1e-3
    with pytest.raises(AssertionError):
        _check(summary(other), ANSWERS[case]["logits"], "align_corners=False")
