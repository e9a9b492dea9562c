import os

import pytest
import torch
import torch.multiprocessing as mp
from _toy import ToyEnhancer, ToyPairs, ddp_worker, toy_loss  # noqa: E402

from semprior.engine import TrainConfig, Trainer  # noqa: E402


@pytest.mark.slow
def test_two_process_gloo_replicas_agree_and_match_single_process(tmp_path, monkeypatch):
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only
    steps = 4
    mp.spawn(ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path), steps), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # 2 ranks x batch 2 see the same 4 samples per step as 1 process x batch 4: same averaged gradient
    torch.manual_seed(0)
    single = Trainer(
        ToyEnhancer(dropout=0.0), toy_loss, ToyPairs(), TrainConfig(steps=steps, batch_size=4, lr=1e-2, progress=False)
    )
    single.fit()
    torch.manual_seed(0)
    start = ToyEnhancer(dropout=0.0).state_dict()
    for k, v in single.model.state_dict().items():
        torch.testing.assert_close(r0[k], v, rtol=1e-4, atol=1e-5)
    assert any(not torch.equal(start[k], r0[k]) for k in r0)
    assert not os.environ.get("RANK")
