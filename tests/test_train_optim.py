"""LAMB against a hand-written reference, weight-decay groups, schedule shapes."""
import math

import numpy as np
import pytest
import torch

from berts.train.optim import Lamb, Schedule, lr_factor, param_groups


def lamb_reference(w, grads, lr, b1, b2, eps, wd, adapt=True):
    """LAMB as in You et al. 2019 (Algorithm 2) with Adam bias correction, in float64 numpy."""
    w = np.array(w, dtype=np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, 1):
        g = np.array(g, dtype=np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        r = (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        u = r + wd * w
        ratio = np.linalg.norm(w) / np.linalg.norm(u) if adapt else 1.0
        w = w - lr * ratio * u
    return w


def test_lamb_matches_reference():
    w0 = [[1.0, -2.0, 3.0], [0.5, 0.25, -1.5]]
    grads = [[[0.1, 0.2, -0.3], [0.05, -0.4, 0.3]], [[0.3, -0.1, 0.2], [-0.2, 0.1, 0.0]],
             [[-0.2, 0.5, 0.1], [0.3, 0.3, -0.1]]]
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = Lamb([{"params": [p], "weight_decay": 0.01}], lr=0.1, betas=(0.9, 0.999), eps=1e-6)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    ref = lamb_reference(w0, grads, 0.1, 0.9, 0.999, 1e-6, 0.01)
    np.testing.assert_allclose(p.detach().numpy(), ref, rtol=1e-12, atol=1e-12)
    # first step by hand: m_hat = g, v_hat = g^2, so r = g / (|g| + eps) ~ sign(g)
    w, g = np.array(w0), np.array(grads[0])
    u = g / (np.abs(g) + 1e-6) + 0.01 * w
    first = w - 0.1 * (np.linalg.norm(w) / np.linalg.norm(u)) * u
    q = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    q.grad = torch.tensor(grads[0], dtype=torch.float64)
    Lamb([{"params": [q], "weight_decay": 0.01}], lr=0.1, eps=1e-6).step()
    np.testing.assert_allclose(q.detach().numpy(), first, rtol=1e-12)


def test_lamb_no_trust_ratio_without_decay_and_zero_weights():
    # no weight decay -> no layer adaptation (NVIDIA / TF-Addons): an Adam step of size ~lr
    b = torch.nn.Parameter(torch.tensor([0.0, 0.0, 4.0], dtype=torch.float64))
    b.grad = torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)
    Lamb([{"params": [b], "weight_decay": 0.0}], lr=0.01, eps=1e-12).step()
    np.testing.assert_allclose(b.detach().numpy(), [-0.01, 0.01, 3.99], rtol=1e-9)
    ref = lamb_reference([0.0, 0.0, 4.0], [[1.0, -1.0, 2.0]], 0.01, 0.9, 0.999, 1e-12, 0.0, adapt=False)
    np.testing.assert_allclose(b.detach().numpy(), ref, rtol=1e-9)
    # all-zero weights: ||w|| = 0 -> ratio 1, not 0 (the layer must be able to move)
    z = torch.nn.Parameter(torch.zeros(2, 2))
    z.grad = torch.ones(2, 2)
    Lamb([{"params": [z], "weight_decay": 0.01}], lr=0.1).step()
    assert torch.allclose(z, torch.full((2, 2), -0.1), atol=1e-5)


def test_weight_decay_groups(tiny_config):
    from berts import BertForPreTraining

    model = BertForPreTraining(tiny_config)
    decay, no_decay = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    no = {names[id(p)] for p in no_decay["params"]}
    yes = {names[id(p)] for p in decay["params"]}
    assert all(n.endswith("bias") or ".norm." in n or "LayerNorm" in n for n in no)
    assert any("LayerNorm" in n for n in no) and any(n.endswith("attention.norm.weight") for n in no)
    assert all(n.endswith("weight") and "norm" not in n.lower() for n in yes)
    assert "bert.embeddings.word_embeddings.weight" in yes
    total = len(decay["params"]) + len(no_decay["params"])
    assert total == len(list(model.parameters()))  # the tied decoder/embedding counted once


def test_schedule_shapes():
    lin = [lr_factor("linear", p, 0.1) for p in (0.0, 0.05, 0.1, 0.55, 1.0)]
    assert lin == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])
    assert lr_factor("linear", 1.0, 0.1, min_lr=0.1) == pytest.approx(0.1)
    assert [lr_factor("constant", p, 0.2) for p in (0.0, 0.1, 0.2, 0.9, 1.0)] == pytest.approx([0, 0.5, 1, 1, 1])
    assert lr_factor("constant", 0.0, 0.0) == 1.0
    ps = np.linspace(0, 1, 101)
    cyc = np.array([lr_factor("one_cycle", p, 0.3) for p in ps])
    assert cyc[0] == pytest.approx(1 / 25) and cyc.max() == pytest.approx(1.0) and ps[cyc.argmax()] == pytest.approx(0.3)
    assert cyc[-1] == pytest.approx(1 / 25 / 1e4)
    assert np.all(np.diff(cyc[:31]) > 0) and np.all(np.diff(cyc[30:]) < 0)
    # the Schedule object sets every group's lr from progress, keeping each group's own peak
    p1, p2 = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p1], "lr": 1.0}, {"params": [p2], "lr": 0.5}])
    s = Schedule(opt, "linear", 0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.0, 0.0]
    s.set(0.55)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.5, 0.25])
    t = Schedule(opt, "linear", 0.1)
    t.load_state_dict(s.state_dict())
    assert t.lr == pytest.approx(0.5) and not math.isnan(t.factor)


def test_finetuning_lr_default_follows_the_model_size():
    """Issue 30: 5e-5 for every size left the tiny model near chance; null (fine-tuning's default)
    resolves by hidden size and the start line says which rate and why."""
    from berts.config.schema import FinetuneConfig, PretrainConfig
    from berts.train.optim import default_lr

    assert FinetuneConfig().optim.lr is None and PretrainConfig().optim.lr == 1e-3
    assert [default_lr(h)[0] for h in (128, 256, 384, 512, 768, 1024)] == [1e-3, 5e-4, 1e-4, 1e-4, 5e-5, 5e-5]
    assert default_lr(128)[1] == "default for hidden size 128 (<= 128); --lr to choose"


def test_wsd_schedules_by_hand():
    # warm-up 0.1, stable to 0.8, decay over the last 0.2 down to min_lr 0.1
    kw = dict(warmup=0.1, min_lr=0.1, decay=0.2)
    # p:            0.05 (warm-up)  0.5 (stable)  0.85 (q = 0.25)          0.9 (q = 0.5)          1.0 (q = 1)
    lin = [lr_factor("wsd_linear", p, **kw) for p in (0.05, 0.5, 0.8, 0.85, 0.9, 1.0)]
    assert lin == pytest.approx([0.5, 1.0, 1.0, 0.1 + 0.9 * 0.75, 0.1 + 0.9 * 0.5, 0.1])
    sq = [lr_factor("wsd_sqrt", p, **kw) for p in (0.05, 0.5, 0.8, 0.85, 0.9, 1.0)]
    assert sq == pytest.approx([0.5, 1.0, 1.0, 0.1 + 0.9 * 0.5, 0.1 + 0.9 * (1 - math.sqrt(0.5)), 0.1])
    # past the end it stays at min_lr; the default decay is the last 10%
    assert lr_factor("wsd_sqrt", 1.5, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("wsd_linear", 0.95, 0.0) == pytest.approx(0.5)
    # the Schedule carries decay through its state
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    s = Schedule(opt, "wsd_sqrt", 0.1, 0.0, decay=0.5)
    s.set(0.75)  # q = 0.5
    assert s.lr == pytest.approx(2.0 * (1 - math.sqrt(0.5)))
    assert s.state_dict()["decay"] == 0.5


def test_stable_adamw_two_steps_by_hand():
    from berts.train.optim import StableAdamW

    lr, b1, b2, eps, wd = 0.1, 0.9, 0.99, 1e-8, 0.01
    w0 = [1.0, -2.0]
    g1, g2 = [0.1, -0.2], [3.0, 0.2]  # step 2: a sudden large gradient on the first entry
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    opt = StableAdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    # step 1 by hand: m^ = g, v^ = g^2, so rms = 1 and the step is AdamW's: w - lr (wd w + g/(|g| + eps))
    p.grad = torch.tensor(g1, dtype=torch.float64)
    opt.step()
    w1 = [w * (1 - lr * wd) - lr * g / (abs(g) + eps) for w, g in zip(w0, g1)]
    assert p.tolist() == pytest.approx(w1, abs=1e-12)
    # step 2 by hand, elementwise
    m = [(1 - b1) * b1 * a + (1 - b1) * b for a, b in zip(g1, g2)]
    v = [(1 - b2) * b2 * a * a + (1 - b2) * b * b for a, b in zip(g1, g2)]
    m_hat = [x / (1 - b1 ** 2) for x in m]
    v_hat = [x / (1 - b2 ** 2) for x in v]
    rms = math.sqrt(sum(g * g / vh for g, vh in zip(g2, v_hat)) / 2)
    assert rms > 1  # so the update is clipped
    lr2 = lr / rms
    w2 = [w * (1 - lr2 * wd) - lr2 * mh / (math.sqrt(vh) + eps) for w, mh, vh in zip(w1, m_hat, v_hat)]
    p.grad = torch.tensor(g2, dtype=torch.float64)
    opt.step()
    assert p.tolist() == pytest.approx(w2, abs=1e-12)
    # plain AdamW (torch's) from the same start takes the larger, unclipped step on step 2
    q = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    ref = torch.optim.AdamW([q], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    for g in (g1, g2):
        q.grad = torch.tensor(g, dtype=torch.float64)
        ref.step()
    assert abs(q[0].item() - w1[0]) > abs(w2[0] - w1[0]) * 1.2


def test_build_optimizer_names():
    from berts.config.schema import OptimSection
    from berts.train.optim import StableAdamW, build_optimizer

    model = torch.nn.Linear(3, 2)
    opt = build_optimizer(model, OptimSection(name="stable_adamw", lr=1e-3, weight_decay=0.1))
    assert isinstance(opt, StableAdamW)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # no decay on the bias
