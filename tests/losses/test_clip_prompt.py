"""CLIPPromptLoss with a 2-layer width-64 open_clip model (random init, offline)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from semprior import CLIPPromptLoss  # noqa: E402
from semprior.losses.clip_prompt import clip_prompt_loss  # noqa: E402


def tiny_clip():
    torch.manual_seed(0)
    return open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(layers=2, width=64, patch_size=16, image_size=32, head_width=32),
        text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=2, layers=2),
    )


@pytest.fixture(scope="module")
def loss_fn():
    return CLIPPromptLoss(model_obj=tiny_clip())


def test_gradients_reach_the_image_not_clip(loss_fn):
    img = torch.rand(2, 3, 45, 61, requires_grad=True)
    loss = loss_fn(img)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss_fn.clip.parameters())


def test_text_features_computed_once(monkeypatch):
    clip = tiny_clip()
    calls = []
    real = clip.encode_text
    monkeypatch.setattr(clip, "encode_text", lambda *a, **k: calls.append(1) or real(*a, **k))
    fn = CLIPPromptLoss(model_obj=clip)
    assert len(calls) == 1
    for _ in range(3):
        fn(torch.rand(1, 3, 32, 32))
    assert len(calls) == 1
    assert fn.text_features.shape == (2, 32)
    assert "text_features" not in fn.state_dict()  # cached buffer, not a checkpoint entry


def test_value_matches_the_definition(loss_fn):
    img = torch.rand(3, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=16)
    with torch.no_grad():
        t = F.normalize(loss_fn.clip.encode_text(tok(["low-light image", "high-light image"])), dim=-1)
        x = F.interpolate(img, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
        mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)
        std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
        f = F.normalize(loss_fn.clip.encode_image((x - mean) / std), dim=-1)
        want = f @ t[0] - f @ t[1]
    got = CLIPPromptLoss(model_obj=loss_fn.clip, reduction="none")(img)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss_fn(img), want.mean(), rtol=1e-5, atol=1e-6)


def test_softmax_variant_and_reduction():
    fn = CLIPPromptLoss(model_obj=tiny_clip(), variant="softmax", reduction="none")
    out = fn(torch.rand(2, 3, 32, 32))
    assert out.shape == (2,) and (out >= 0).all()
    t = torch.eye(2, 4)
    low = clip_prompt_loss(torch.tensor([[1.0, 0, 0, 0]]), t, variant="softmax")
    high = clip_prompt_loss(torch.tensor([[0.0, 1, 0, 0]]), t, variant="softmax")
    assert high < low


def test_frozen_under_train_and_follows_float64():
    fn = CLIPPromptLoss(model_obj=tiny_clip())
    torch.nn.Sequential(torch.nn.Identity(), fn).train()
    assert not fn.training and not fn.clip.training
    out = fn(torch.rand(1, 3, 32, 32, dtype=torch.float64))
    assert out.dtype == torch.float64


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(prompts=("only one",)), ValueError, "two non-empty"),
        (dict(variant="l2"), ValueError, "cosine"),
        (dict(reduction="avg"), ValueError, "reduction"),
    ],
)
def test_bad_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        CLIPPromptLoss(model_obj=tiny_clip(), **kwargs)


def test_weights_never_downloaded_implicitly(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        CLIPPromptLoss("ViT-B-16", pretrained="openai")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        CLIPPromptLoss("ViT-B-16", pretrained=str(tmp_path / "clip.pt"))
    with pytest.raises(ValueError, match="not an open_clip pretrained tag"):
        CLIPPromptLoss("ViT-B-16", pretrained="no-such-tag")


def test_bad_image(loss_fn):
    with pytest.raises(ValueError, match="3 channels"):
        loss_fn(torch.rand(1, 4, 32, 32))


def test_openai_torchscript_file_is_rebuilt_with_quickgelu(tmp_path):
    """A scripted CLIP with the OpenAI layout (head width 64, QuickGELU), saved like ViT-B-16.pt."""
    torch.manual_seed(0)
    ref = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(layers=2, width=64, patch_size=16, image_size=32, head_width=64),
        text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=1, layers=2),
        quick_gelu=True,
    ).eval()
    with torch.no_grad():  # OpenAI files hold fp16 weights; open_clip rebuilds them in fp16 first
        for p in ref.parameters():
            p.copy_(p.half().float())
    # OpenAI's JIT files carry these three as tensors (their clip.py reads input_resolution.item()
    # and model.py deletes the three keys before building); attn_mask is not in their state dict.
    scripted_src = copy.deepcopy(ref)
    for name, value in (("input_resolution", 32), ("context_length", 16), ("vocab_size", 49408)):
        if hasattr(scripted_src, name):
            delattr(scripted_src, name)
        scripted_src.register_buffer(name, torch.tensor(value))
    if "attn_mask" in scripted_src._buffers:  # a plain attribute in OpenAI's model, not a buffer
        scripted_src.attn_mask = scripted_src._buffers.pop("attn_mask")
    path = tmp_path / "ViT-B-16.pt"
    scripted = torch.jit.script(scripted_src)
    keys = set(scripted.state_dict())
    assert {"input_resolution", "context_length", "vocab_size"} <= keys and "attn_mask" not in keys
    scripted.save(str(path))
    with pytest.raises(ValueError, match="not a published one.*allow_unverified=True"):
        CLIPPromptLoss("ViT-B-16", pretrained=str(path))
    fn = CLIPPromptLoss("ViT-B-16", pretrained=str(path), allow_unverified=True)
    assert fn.image_size == (32, 32)
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(fn.clip.encode_image(x), ref.encode_image(x), rtol=1e-5, atol=1e-5)
    acts = {type(m).__name__ for m in fn.clip.modules()}
    assert "QuickGELU" in acts and "GELU" not in acts


def test_a_published_torchscript_file_needs_no_opt_in(tmp_path, monkeypatch):
    """A file whose sha256 is a published one is read without allow_unverified (the hash is faked here)."""
    import semprior.losses.clip_prompt as C
    from semprior.weights import sha256_file

    torch.manual_seed(0)
    ref = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(layers=2, width=64, patch_size=16, image_size=32, head_width=64),
        text_cfg=dict(context_length=16, vocab_size=49408, width=64, heads=1, layers=2),
        quick_gelu=True,
    )
    with torch.no_grad():  # open_clip rebuilds OpenAI weights in fp16 first
        for p in ref.parameters():
            p.copy_(p.half().float())
    path = tmp_path / "ViT-B-16.pt"
    torch.jit.script(ref).save(str(path))
    monkeypatch.setattr(C, "_published_torchscript", lambda: {sha256_file(path): "ViT-B-16.pt"})
    fn = CLIPPromptLoss("ViT-B-16", pretrained=str(path))
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(fn.clip.encode_image(x), ref.eval().encode_image(x), rtol=1e-5, atol=1e-5)
