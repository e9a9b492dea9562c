"""The fitted NIQE pristine model: the shipped data file holds exactly the model that was fitted.

The hashes are of the float64 arrays as the fit wrote them (computed from the Python module the
model was stored in before it became ``niqe_fitted_params.npz``): a refit changes them on purpose.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from semprior.metrics.niqe import fitted_niqe_model

MEAN_SHA256 = "bee1ddc4281791c6fc5637883315fcd4bfddebb33352ed473f5133a1d8996d72"
COV_SHA256 = "aeda6b9ff9dc06b4d8ed8f5adb550c79b0c024e0240ee17c9df0a5ee58d66a1a"


def _sha256(t: torch.Tensor) -> str:
    a = t.numpy()
    assert a.dtype == np.float64 and a.flags.c_contiguous
    return hashlib.sha256(a.tobytes()).hexdigest()


def test_fitted_model_is_the_one_that_was_fitted():
    m = fitted_niqe_model()
    assert m.mean.shape == (36,) and m.cov.shape == (36, 36)
    assert m.mean.dtype == m.cov.dtype == torch.float64
    assert m.patches == 564 and m.source == "110 photos: cbsd68, kodak24, mcmaster"
    assert m.mean[0].item() == 2.931785460992908
    assert m.cov[0, 0].item() == 0.5457992274258977
    assert m.cov[3, 17].item() == 0.001673235190919437
    assert m.cov[35, 35].item() == 0.0076313737035197116
    assert _sha256(m.mean) == MEAN_SHA256
    assert _sha256(m.cov) == COV_SHA256
    assert torch.equal(m.cov, m.cov.T)


@pytest.mark.parametrize("corrupt", ["mean", "cov"])
def test_a_changed_array_changes_the_hash(corrupt):
    m = fitted_niqe_model()
    t = getattr(m, corrupt).clone()
    t.view(-1)[5] += 1e-12
    assert _sha256(t) != (MEAN_SHA256 if corrupt == "mean" else COV_SHA256)


def test_save_and_load_round_trip_bit_for_bit(tmp_path):
    from semprior.metrics.niqe import load_niqe_model, save_niqe_model

    m = fitted_niqe_model()
    back = load_niqe_model(save_niqe_model(m, tmp_path / "m.npz"))
    assert torch.equal(back.mean, m.mean) and torch.equal(back.cov, m.cov)
    assert (back.patches, back.source) == (m.patches, m.source)


def test_a_file_that_is_not_a_niqe_model_is_refused_in_one_line(tmp_path):
    from semprior.metrics.niqe import load_niqe_model

    np.savez(tmp_path / "x.npz", mean=np.zeros(36))
    with pytest.raises(ValueError, match=r"x.npz is not a NIQE model file \(no \['cov', 'patches', 'source'\]\)"):
        load_niqe_model(tmp_path / "x.npz")
