"""The conformance suite every registered model must pass (tiny configs from ``ModelEntry.tiny``).

Adding a model to ``semprior.models.registry`` puts it through every test here; nothing to add.
"""

from __future__ import annotations

import json

import pytest
import torch

import semprior
from semprior.models.io import load_model, save_pretrained
from semprior.models.protocol import config_from_dict, is_enhancer
from semprior.models.registry import get_model_entry, list_models

NAMES = list_models()
TRAINABLE = [n for n in NAMES if get_model_entry(n).training_loss is not None]
#: parameters a model's training loss does not reach by design (trained by another objective)
OTHER_OBJECTIVE = {"sllen": ("seg_head.",)}  # SLLEN's segmentation head: the alternating seg steps


def build(name: str, seed: int = 0, **extra) -> torch.nn.Module:
    torch.manual_seed(seed)
    return semprior.create_model(name, **{**get_model_entry(name).tiny, **extra})


def run(model: torch.nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)  # diffusion samplers draw their noise from the global generator
    with torch.no_grad():
        return model(x)


def batch(size: int = 16, n: int = 2, dtype=torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    high = torch.rand(n, 3, size, size, generator=g, dtype=dtype)
    return {"low": high * 0.25, "high": high}


@pytest.fixture(params=NAMES)
def name(request):
    return request.param


def test_registry_lists_every_family():
    assert {
        "deepspg",
        "deepspg-large",
        "retinexformer",
        "sllen",
        "cugd",
        "identity",
        "gamma",
        "he",
        "clahe",
        "lime",
    } <= set(NAMES)
    with pytest.raises(ValueError, match="unknown model 'nope'.*retinexformer"):
        semprior.create_model("nope")


def test_protocol_and_config_round_trip(name):
    model = build(name)
    assert is_enhancer(model), name
    cfg = model.config
    assert config_from_dict(type(cfg), json.loads(json.dumps(cfg.to_dict(), default=list))) == cfg
    with pytest.raises(ValueError, match="unknown key"):
        semprior.create_model(name, no_such_field=1)


def test_config_has_from_dict(name):
    cfg = build(name).config
    assert type(cfg).from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("hw", [(17, 22), (6, 9)])
def test_any_size(name, hw):
    model = build(name).eval()
    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(1))
    y = run(model, x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_dtypes(name, dtype):
    model = build(name).eval()
    x = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(2)) * 0.5
    ref = run(model, x)
    y = run(model.to(dtype), x.to(dtype))
    assert y.dtype == dtype and torch.isfinite(y).all()
    if dtype == torch.float64:  # float32 rounding of the reference (DDIM divides by sqrt(alpha_bar) ~ 0.03)
        torch.testing.assert_close(y.float(), ref, atol=5e-4, rtol=0)
    else:  # bf16 keeps 8 significant bits: near 1e-2 on average (histogram methods move a few pixels by a bin)
        assert float((y.float() - ref).abs().mean()) < 0.02


def test_state_dict_round_trip(name):
    a, b = build(name, seed=0).eval(), build(name, seed=1).eval()
    b.load_state_dict(a.state_dict(), strict=True)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    assert torch.equal(run(a, x), run(b, x))


def test_from_pretrained_round_trip(name, tmp_path):
    model = build(name).eval()
    save_pretrained(model, tmp_path)
    record = json.loads((tmp_path / "config.json").read_text())
    assert record["format"] == "semprior-model" and get_model_entry(record["model"]).config_cls is type(model.config)
    back = semprior.from_pretrained(tmp_path)
    assert type(back) is type(model) and back.config == model.config and not back.training
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(5))
    assert torch.equal(run(model, x), run(back, x))
    assert torch.equal(run(model, x), run(load_model(tmp_path / "model.safetensors"), x))


def test_frozen_prior_not_in_state_dict(name):
    model = build(name)
    prior = getattr(model, "prior", None)
    if prior is None:
        pytest.skip(f"{name} has no frozen prior")
    ids = {id(p) for p in prior.parameters()}
    assert not any(id(p) in ids for p in model.parameters())
    frozen = {t.data_ptr() for t in [*prior.parameters(), *prior.buffers()] if t.numel()}
    assert not any(v.data_ptr() in frozen for v in model.state_dict().values() if v.numel())


@pytest.mark.parametrize("name", TRAINABLE)
def test_rebuild_from_training_checkpoint(name, tmp_path):
    from semprior.engine.trainer import TrainConfig, Trainer

    entry = get_model_entry(name)
    model = build(name)
    data = [{k: v[0] for k, v in batch(12).items()} for _ in range(2)]
    extra = {
        "model_config": model.config.to_dict(),
        "model_name": name,
        "text": "none",
        "prior": entry.prior if entry.prior is not None else "none",
    }
    trainer = Trainer(
        model, entry.training_loss, data, TrainConfig(steps=1, batch_size=2, progress=False), extra=extra, device="cpu"
    )
    trainer.fit()
    trainer.save(tmp_path / "last.pt")
    back = load_model(tmp_path / "last.pt")
    assert type(back) is type(model) and not back.training
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(6))
    assert torch.equal(run(model.eval(), x), run(back, x))


def _step(model, loss_fn, b, opt=None):
    torch.manual_seed(7)  # same timesteps, noise and IEF layer every step: a fixed objective
    total, terms = loss_fn(model, b)
    assert total.dim() == 0 and torch.isfinite(total) and isinstance(terms, dict)
    if opt is not None:
        opt.zero_grad(set_to_none=True)
    total.backward()
    if opt is not None:
        opt.step()
    return float(total.detach())


@pytest.mark.parametrize("name", TRAINABLE)
def test_training_loss_is_the_models_loss(name):
    model = build(name).train()
    b = batch()
    torch.manual_seed(11)
    total, _ = get_model_entry(name).training_loss(model, b)
    torch.manual_seed(11)
    own, _ = model.loss(b["low"], b["high"])
    torch.testing.assert_close(total, own)


@pytest.mark.parametrize("name", TRAINABLE)
def test_gradients_reach_every_trainable_parameter(name):
    model = build(name).train()
    loss_fn = get_model_entry(name).training_loss
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    _step(model, loss_fn, batch(), opt)  # one step: zero-initialised output layers start passing gradient
    model.zero_grad(set_to_none=True)
    seen: dict[str, bool] = {}
    for seed in range(6):  # union over a few draws (SLLEN picks one IEF layer per step)
        torch.manual_seed(seed)
        total, _ = loss_fn(model, batch())
        total.backward()
        for n, p in model.named_parameters():
            if p.requires_grad:
                seen[n] = seen.get(n, False) or (p.grad is not None and bool(p.grad.abs().sum() > 0))
    skip = OTHER_OBJECTIVE.get(name, ())
    missing = [n for n, ok in seen.items() if not ok and not n.startswith(skip)]
    assert seen and not missing, f"{name}: no gradient reaches {missing}"


@pytest.mark.parametrize("name", TRAINABLE)
def test_a_few_steps_lower_the_loss_and_frozen_parts_stay_frozen(name):
    model = build(name).train()
    loss_fn = get_model_entry(name).training_loss
    prior = getattr(model, "prior", None)
    before = [t.clone() for t in prior.state_dict().values()] if prior is not None else []
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    b = batch()
    losses = [_step(model, loss_fn, b, opt) for _ in range(8)]
    assert losses[-1] < 0.9 * losses[0], losses
    if prior is not None:
        assert not prior.training and model.training
        assert all(not p.requires_grad and p.grad is None for p in prior.parameters())
        assert all(torch.equal(a, c) for a, c in zip(before, prior.state_dict().values()))


def test_torch_export(name, tmp_path):
    model = build(name).eval()
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():  # inference graph: priors' no_grad regions need no wrapper node (saveable)
        exported = torch.export.export(model, (x,))
    torch.export.save(exported, tmp_path / "model.pt2")
    y = run(torch.export.load(tmp_path / "model.pt2").module(), x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    torch.testing.assert_close(y, run(model, x), atol=1e-5, rtol=1e-5)


def test_inputs_outside_unit_range_are_rejected(name):
    model = build(name).eval()
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        run(model, torch.full((1, 3, 8, 8), 1.5))
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        run(model, torch.full((1, 3, 8, 8), -0.1))
    run(model, torch.zeros(1, 3, 8, 8))  # both ends are inside
    run(model, torch.ones(1, 3, 8, 8))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["deepspg", "retinexformer"])
def test_compiles_as_one_graph(name):
    """No graph break: the input checks and the streaming kernel step aside while compiling."""
    torch._dynamo.reset()
    model = build(name).eval()
    x = torch.rand(1, 3, 16, 24, generator=torch.Generator().manual_seed(9))
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    torch.testing.assert_close(run(compiled, x), run(model, x), atol=1e-5, rtol=1e-5)
