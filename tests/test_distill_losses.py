"""The distillation losses (berts.compress.losses), each against a hand computation on a tiny
example: the temperature and its T^2 factor, the cosine, the projected hidden MSE, the masked
attention-score MSE (padding entries, however large, add nothing), TinyBERT's layer mapping."""
import math

import pytest
import torch

from berts.compress import losses as L


def test_soft_ce_is_kl_at_temperature_times_t_squared():
    s, t = torch.tensor([[1.0, 0.0], [0.0, 0.0]]), torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    # row 0 at T=2: student softmax([0.5, 0]), teacher softmax([0, 0.5]); row 1: both uniform (KL 0)
    a = 1 / (1 + math.exp(-0.5))  # softmax([0.5, 0])[0]
    p, q = [a, 1 - a], [1 - a, a]
    kl0 = sum(qi * math.log(qi / pi) for pi, qi in zip(p, q))
    expected = (kl0 + 0.0) / 2 * 2.0 ** 2  # batchmean over the 2 rows, x T^2
    assert L.soft_ce(s, t, 2.0).item() == pytest.approx(expected, rel=1e-6)
    assert L.soft_ce(s, t, 1.0).item() == pytest.approx(
        sum(qi * math.log(qi / pi) for pi, qi in zip([1 / (1 + math.exp(-1)), 1 - 1 / (1 + math.exp(-1))],
                                                     [1 - 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-1))])) / 2,
        rel=1e-6)
    assert L.soft_ce(t, t, 3.0).item() == pytest.approx(0.0, abs=1e-6)  # a student that matches: 0


def test_soft_ce_gradient_is_the_soft_cross_entropys():
    # KL = soft cross-entropy - the teacher's entropy: the same gradient (times T^2)
    s = torch.tensor([[0.3, -1.2, 2.0]], requires_grad=True)
    t = torch.tensor([[1.0, 0.5, -0.5]])
    L.soft_ce(s, t, 2.0).backward()
    g_kl = s.grad.clone()
    s.grad = None
    (L.soft_cross_entropy(s, t, 2.0) * 4.0).backward()
    assert torch.allclose(g_kl, s.grad, atol=1e-7)


def test_soft_cross_entropy_by_hand():
    s, t = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]])
    # teacher uniform: -(0.5 log p0 + 0.5 log p1), p = softmax([2, 0])
    p0 = math.exp(2) / (math.exp(2) + 1)
    assert L.soft_cross_entropy(s, t).item() == pytest.approx(-(0.5 * math.log(p0) + 0.5 * math.log(1 - p0)), rel=1e-6)
    # at T = 2 the student's logits are halved: p = softmax([1, 0]); no T^2 factor
    p0 = math.exp(1) / (math.exp(1) + 1)
    assert L.soft_cross_entropy(s, t, 2.0).item() == pytest.approx(
        -(0.5 * math.log(p0) + 0.5 * math.log(1 - p0)), rel=1e-6)


def test_cosine_by_hand():
    s = torch.tensor([[1.0, 0.0], [1.0, 1.0], [3.0, 0.0]])
    t = torch.tensor([[0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]])
    assert L.cosine(s, t).item() == pytest.approx((1.0 + 0.0 + 2.0) / 3, abs=1e-6)


def test_hidden_mse_through_a_projection():
    s = torch.tensor([[1.0, 2.0]])  # one token, width 2 -> teacher width 3
    proj = torch.nn.Linear(2, 3)
    with torch.no_grad():
        proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        proj.bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
    t = torch.tensor([[1.0, 0.0, 0.0]])
    # proj(s) = [1, 2, 4]; squared errors 0, 4, 16 over 3 dimensions
    assert L.hidden_mse(s, t, proj).item() == pytest.approx(20 / 3)
    assert L.hidden_mse(torch.tensor([[1.0, 3.0]]), torch.tensor([[0.0, 1.0]])).item() == pytest.approx(2.5)


def test_attention_mse_zeroes_padding_and_averages_over_real_entries():
    # batch of 2, 2 heads, 3 positions; sequence 0 has 2 real tokens, sequence 1 has 3
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    g = torch.Generator().manual_seed(0)
    s = torch.randn(2, 2, 3, 3, generator=g)
    t = torch.randn(2, 2, 3, 3, generator=g)
    s[0, :, 2, :] = 1e4  # padding query and key entries: huge (the reference's -10000) and ignored
    s[0, :, :, 2] = -1e4
    total, entries = 0.0, 0
    for b, n in ((0, 2), (1, 3)):
        for h in range(2):
            for i in range(n):
                for j in range(n):
                    total += float(s[b, h, i, j] - t[b, h, i, j]) ** 2
                    entries += 1
    assert entries == 2 * (2 * 2 + 3 * 3) == L.attention_entries(mask, heads=2)
    assert L.attention_mse(s, t, mask).item() == pytest.approx(total / entries, rel=1e-6)
    assert L.attention_mse(t, t, mask).item() == 0.0


def test_uniform_layer_map():
    assert L.uniform_layer_map(3, 6) == [0, 2, 4, 6]  # TinyBERT's: m <- m * Lt / Ls, 0 = embeddings
    assert L.uniform_layer_map(4, 12) == [0, 3, 6, 9, 12]
    assert L.uniform_layer_map(4, 6) == [0, 1, 3, 4, 6]  # not a multiple: floor(m * 6 / 4)
    assert L.uniform_layer_map(6, 6) == list(range(7))
    with pytest.raises(ValueError):
        L.uniform_layer_map(7, 6)
