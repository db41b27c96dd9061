"""berts.embed.losses against hand computations; MNRL's gathered negatives: 2 gloo processes = one
process with the doubled batch (loss and gradients)."""
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from berts.embed.losses import CoSENTLoss, CosineSimilarityLoss, MultipleNegativesRankingLoss, SimCSELoss


def test_mnrl_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    p = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    c = 1 / math.sqrt(2)
    # cos(a0, p0) = c, cos(a0, p1) = 0; cos(a1, p0) = c, cos(a1, p1) = 1
    s = 20.0
    want = (-(s * c - math.log(math.exp(s * c) + math.exp(0)))
            - (s * 1 - math.log(math.exp(s * c) + math.exp(s * 1)))) / 2
    assert MultipleNegativesRankingLoss()(a, p).item() == pytest.approx(want, abs=1e-6)
    # a hard negative per anchor joins every anchor's candidates
    n = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])  # cos(a0, n0) = 1, cos(a0, n1) = -1; a1: 0, 0
    s = 2.0
    row0 = -(s * c - math.log(math.exp(s * c) + 1 + math.exp(s) + math.exp(-s)))
    row1 = -(s - math.log(math.exp(s * c) + math.exp(s) + 1 + 1))
    got = MultipleNegativesRankingLoss(scale=s)(a, p, n)
    assert got.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    # [B, K, D] negatives are the same thing
    assert MultipleNegativesRankingLoss(scale=s)(a, p, n[:, None]).item() == pytest.approx(got.item())


def test_simcse_is_mnrl_on_two_views():
    torch.manual_seed(0)
    table = torch.randn(10, 4)
    noise = torch.randn(6, 4)
    ids = torch.tensor([[1, 2, 3], [4, 5, 0], [6, 0, 0]])
    mask = (ids > 0).long()

    def embed(i, m):  # a stand-in encoder: mean of token vectors, plus "dropout" noise per row
        assert i.shape == (6, 3) and torch.equal(i[:3], i[3:])
        return (table[i] * m[..., None]).sum(1) / m.sum(1, keepdim=True) + noise

    base = (table[ids] * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    want = MultipleNegativesRankingLoss()(base + noise[:3], base + noise[3:])
    assert SimCSELoss()(embed, ids, mask).item() == pytest.approx(want.item(), abs=1e-6)


def test_cosent_by_hand():
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])  # cos 1, c, 0
    c = 1 / math.sqrt(2)
    gold = torch.tensor([0.5, 1.0, 0.0])  # order wanted: pair 1 > pair 0 > pair 2
    s = 20.0
    # for each (i, j) with gold_i > gold_j: exp(s * (cos_j - cos_i))
    terms = [s * (1 - c), s * (0 - c), s * (0 - 1)]  # (1,0), (1,2), (0,2)
    want = math.log(1 + sum(math.exp(t) for t in terms))
    assert CoSENTLoss()(u, v, gold).item() == pytest.approx(want, abs=1e-6)
    # a perfect order and a big scale: near 0
    assert CoSENTLoss(scale=100)(u, v, torch.tensor([2.0, 1.0, 0.0])).item() < 1e-6


def test_cosine_similarity_mse_by_hand():
    u = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    v = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    gold = torch.tensor([1.0, 0.5])
    want = ((1 / math.sqrt(2) - 1) ** 2 + (0 - 0.5) ** 2) / 2
    assert CosineSimilarityLoss()(u, v, gold).item() == pytest.approx(want, abs=1e-6)


# ------------------------------------------------------------------------- gathered negatives, 2 ranks
WORKER = textwrap.dedent("""
    import sys, torch, torch.distributed as dist
    from berts.embed.losses import MultipleNegativesRankingLoss
    rank, world, port, out = int(sys.argv[1]), 2, sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    x = torch.randn(8, 6); y = torch.randn(8, 6); z = torch.randn(8, 6)
    sl = slice(rank * 4, rank * 4 + 4)  # this rank's half of the batch
    loss = MultipleNegativesRankingLoss(scale=5.0, gather=True)(model(x[sl]), model(y[sl]), model(z[sl]))
    loss.backward()
    for p in model.parameters():  # what DDP does: the mean of the ranks' gradients
        dist.all_reduce(p.grad); p.grad /= world
    mean_loss = loss.detach().clone(); dist.all_reduce(mean_loss); mean_loss /= world
    if rank == 0:
        torch.save({"loss": mean_loss, "grads": [p.grad for p in model.parameters()]}, out)
    del loss  # the graph goes before the group: see berts.train.distributed.teardown
    dist.barrier()
    dist.destroy_process_group()
""")


@pytest.mark.ddp
def test_gathered_negatives_two_processes_equal_one_with_the_doubled_batch(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script, out = tmp_path / "worker.py", tmp_path / "out.pt"
    script.write_text(WORKER)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p), OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(port), str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)[-3000:]
    two = torch.load(out)

    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    x, y, z = torch.randn(8, 6), torch.randn(8, 6), torch.randn(8, 6)
    loss = MultipleNegativesRankingLoss(scale=5.0)(model(x), model(y), model(z))
    loss.backward()
    assert two["loss"].item() == pytest.approx(loss.item(), abs=1e-6)
    for g2, g1 in zip(two["grads"], [p.grad for p in model.parameters()]):
        torch.testing.assert_close(g2, g1, rtol=0, atol=1e-6)
    # and without gathering, the 2 ranks would see fewer negatives: a different loss
    local = MultipleNegativesRankingLoss(scale=5.0)(model(x[:4]), model(y[:4]), model(z[:4]))
    assert abs(local.item() - loss.item()) > 1e-3
