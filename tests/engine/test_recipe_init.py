"""``init`` in the run config: start a run from trained weights (fine-tuning, a second stage)."""

import dataclasses

import pytest
import torch

from semprior.engine.recipe import RunConfig, build_model, init_weights, run_training
from semprior.engine.run_config import from_dict
from semprior.models.io import load_model, save_pretrained

TINY_MODEL = {"width": 8, "heads": [1, 1, 2], "retinex_width": 8, "illum_width": 8}


def _run(tmp_path, name="a", **over):
    cfg = {
        "model": TINY_MODEL,
        "prior": "none",
        "data": {"patch_size": 16, "length": 4, "val_items": 2, "val_size": 16},
        "train": {"steps": 2, "batch_size": 2, "progress": False, "log_every": 1, "loss_curve": False},
        "out_dir": str(tmp_path / name),
        **over,
    }
    return from_dict(RunConfig, cfg)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("init")
    run_training(_run(tmp, "first"))
    save_pretrained(load_model(tmp / "first" / "last.pt"), tmp / "folder")
    return tmp


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)  # exact copies


@pytest.mark.parametrize("source", ["first/last.pt", "folder", "folder/model.safetensors"])
def test_init_loads_every_trainable_weight_from_any_model_file(trained, source):
    run = _run(trained, init=str(trained / source))
    model = build_model(run)
    assert not _same(model, load_model(trained / "first" / "last.pt"))  # random start differs
    rec = init_weights(model, run)
    assert _same(model, load_model(trained / "first" / "last.pt"))
    assert rec["source"] == str(trained / source) and len(rec["sha256"]) == 64


def test_a_run_started_with_init_records_it_and_trains_from_those_weights(trained, tmp_path):
    run = _run(
        tmp_path,
        "second",
        init=str(trained / "folder"),
        train={"steps": 1, "batch_size": 2, "progress": False, "log_every": 1, "loss_curve": False, "lr": 1e-12},
    )
    model, _, _ = run_training(run)
    ck = torch.load(tmp_path / "second" / "last.pt", weights_only=True)
    assert ck["init"]["path"] == str(trained / "folder") and ck["step"] == 1
    first = load_model(trained / "first" / "last.pt").state_dict()
    # one step at lr 1e-12 barely moves the weights: the run started from the file, not from random ones
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, first[k], atol=1e-6, rtol=0)
    # resume continues the checkpoint and does not load init again (it would undo the training)
    resumed = dataclasses.replace(run, resume=str(tmp_path / "second" / "last.pt"), init=str(tmp_path / "missing"))
    run_training(resumed, until=1)


def test_a_resumed_run_keeps_its_record_of_the_init_weights(trained, tmp_path):
    run = _run(tmp_path, "staged", init=str(trained / "folder"))
    run_training(run, until=1)
    first = torch.load(tmp_path / "staged" / "last.pt", weights_only=True)
    assert first["step"] == 1 and first["init"]["path"] == str(trained / "folder")
    run_training(dataclasses.replace(run, resume=str(tmp_path / "staged" / "last.pt")))
    end = torch.load(tmp_path / "staged" / "last.pt", weights_only=True)
    assert end["step"] == 2 and end["init"] == first["init"]  # where the stage started survives the resume


def test_init_refuses_files_that_do_not_fit(trained):
    with pytest.raises(FileNotFoundError, match=r"init: .*missing not found; give a model file"):
        init_weights(build_model(_run(trained)), _run(trained, init=str(trained / "missing")))
    other_prior = _run(trained, prior="region", init=str(trained / "folder"))
    with pytest.raises(
        ValueError,
        match=r"does not fit the deepspg of this run \(prior 'region'\).*image_prior \(file False, run True\)",
    ):
        init_weights(build_model(other_prior), other_prior)
    wider = _run(trained, model={**TINY_MODEL, "width": 16}, init=str(trained / "folder"))
    with pytest.raises(ValueError, match=r"[1-9][0-9]* of another shape .*width \(file 8, run 16\)"):
        init_weights(build_model(wider), wider)
    rfx = from_dict(
        RunConfig,
        {
            "model": {"name": "retinexformer", "width": 8, "blocks": [1, 1, 1]},
            "prior": "none",
            "init": str(trained / "folder"),
        },
    )
    with pytest.raises(ValueError, match=r"init: .*holds a 'deepspg' model, not 'retinexformer'"):
        init_weights(build_model(rfx), rfx)


def test_init_shipped_takes_the_weights_that_ship_with_semprior():
    from semprior.models import get_model_entry
    from semprior.models.factory import create_model_for_inference

    if not get_model_entry("deepspg").shipped_tags:
        pytest.fail("semprior/pretrained/deepspg-lolv1-cpu is missing from the checkout")
    run = from_dict(RunConfig, {"model": {"name": "deepspg"}, "prior": "none", "init": "shipped"})
    model = build_model(run)
    init_weights(model, run)
    assert _same(model, create_model_for_inference("deepspg"))
    bad = dataclasses.replace(run, init="shipped:nope")
    with pytest.raises(ValueError, match="no pretrained tag 'nope'"):
        init_weights(build_model(run), bad)
