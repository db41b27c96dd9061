"""The one attention function, the masks, and every output field with the fast paths on vs off."""
import pytest
import torch
import torch.nn.functional as F

from berts import BertConfig, BertForPreTraining, BertModel
from berts.model.attention import attention, causal_mask, combine, padding_mask, prefix_mask
from berts.model.padding import unpad_index
from conftest import padded_batch, randomize

ATOL = 1e-5
PLAIN = {"unpad": False, "pack": False, "sparse_output": False}
UNPAD = {"unpad": True, "pack": False, "sparse_output": False}
PACK = {"unpad": True, "pack": True, "sparse_output": False}


def config():
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def test_attention_scores_probs_and_sdpa_agree():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()[:, None, None, :]
    ctx, none = attention(q, k, v, mask)
    assert none is None
    ctx2, scores = attention(q, k, v, mask, want="scores")
    ctx3, probs = attention(q, k, v, mask, want="probs")
    _, both = attention(q, k, v, mask, want=("scores", "probs"))
    torch.testing.assert_close(scores, q @ k.transpose(-1, -2) / 2.0)  # pre-softmax, before the mask
    expected = (scores + torch.where(mask, 0.0, float("-inf"))).softmax(-1)
    torch.testing.assert_close(probs, expected)
    assert float(probs[0, :, :, 3:].abs().sum()) == 0.0
    torch.testing.assert_close(both[0], scores) and torch.testing.assert_close(both[1], probs)
    for c in (ctx2, ctx3):
        torch.testing.assert_close(c, ctx, atol=ATOL, rtol=0)
    torch.testing.assert_close(ctx, expected @ v, atol=ATOL, rtol=0)
    # a float mask is an additive bias
    bias = torch.randn(2, 1, 5, 5, generator=g)
    c, p = attention(q, k, v, bias, want="probs")
    torch.testing.assert_close(p, (scores + bias).softmax(-1))
    torch.testing.assert_close(c, attention(q, k, v, bias)[0], atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="want"):
        attention(q, k, v, want="weights")


def test_mask_builders_by_hand():
    assert causal_mask(3)[0, 0].int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    types = torch.tensor([[0, 0, 1, 1]])
    expected = [[1, 1, 0, 0],   # A sees A
                [1, 1, 0, 0],
                [1, 1, 1, 0],   # B sees A and B up to itself
                [1, 1, 1, 1]]
    assert prefix_mask(types)[0, 0].int().tolist() == expected
    assert torch.equal(prefix_mask(torch.tensor([2]), seq=4), prefix_mask(types))
    pad = padding_mask(torch.tensor([[1, 1, 1, 0]]))
    assert pad.shape == (1, 1, 1, 4)
    both = combine(prefix_mask(types), pad, None)
    assert both[0, 0].int().tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]]
    assert combine(None, None) is None


def batch_and_masks():
    batch = padded_batch(seq=16, batch=4, seed=2)
    batch["attention_mask"][3, 3:] = 0
    pad = batch["attention_mask"].bool()
    causal = causal_mask(16)[:, 0] & pad[:, None, :] & pad[:, :, None]  # [B, S, S]
    prefix = prefix_mask(batch["token_type_ids"])[:, 0] & pad[:, None, :] & pad[:, :, None]
    return batch, {"causal": causal, "prefix": prefix}


@pytest.mark.parametrize("kind", ["causal", "prefix"])
@pytest.mark.parametrize("fast", [UNPAD, PACK], ids=["unpad", "pack"])
def test_full_masks_plain_unpad_pack_agree(kind, fast):
    batch, masks = batch_and_masks()
    batch["attention_mask"] = masks[kind]
    model = randomize(BertModel(config())).train()  # dropout 0: train only switches the fast paths on
    real = masks[kind].any(1)
    kw = dict(output_hidden_states=True, output_attentions=True, output_attention_scores=True)
    plain = model.set_fast_path(**PLAIN)(**batch, **kw)
    got = model.set_fast_path(**fast)(**batch, **kw)
    torch.testing.assert_close(got.last_hidden_state[real], plain.last_hidden_state[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(got.pooler_output, plain.pooler_output, atol=ATOL, rtol=0)
    pair = real[:, None, :, None] & real[:, None, None, :]
    for name in ("attentions", "attention_scores"):
        for a, b in zip(getattr(got, name), getattr(plain, name)):
            torch.testing.assert_close(a * pair, b * pair, atol=ATOL, rtol=0)
    if fast["pack"]:
        assert unpad_index(masks[kind], pack=True).rows < 4  # it did pack


def test_a_hand_built_mask_on_a_tiny_example():
    """Two tokens that see only themselves give exactly what a one-token sequence gives."""
    model = randomize(BertModel(config())).eval()
    ids = torch.tensor([[7, 8, 9]])
    mask = torch.eye(3, dtype=torch.bool)[None]  # each token sees itself only
    with torch.no_grad():
        out = model(ids, mask, output_attentions=True).last_hidden_state
        for i in range(3):
            alone = model(ids[:, i:i + 1], position_ids=torch.tensor([[i]])).last_hidden_state
            torch.testing.assert_close(out[:, i], alone[:, 0], atol=ATOL, rtol=0)
        probs = model(ids, mask, output_attentions=True).attentions[0]
    assert torch.equal(probs, torch.eye(3).expand(1, 4, 3, 3))


@pytest.mark.parametrize("fast", [PLAIN, UNPAD, PACK], ids=["plain", "unpad", "pack"])
def test_changing_a_token_leaves_the_positions_that_cannot_see_it_unchanged(fast):
    batch, masks = batch_and_masks()
    batch["attention_mask"] = masks["causal"]
    model = randomize(BertModel(config())).set_fast_path(**fast).train()
    changed = dict(batch, input_ids=batch["input_ids"].clone())
    changed["input_ids"][0, 5] = 3
    a, b = model(**batch).last_hidden_state, model(**changed).last_hidden_state
    torch.testing.assert_close(a[0, :5], b[0, :5], atol=ATOL, rtol=0)  # causal: earlier ones do not see it
    assert (a[0, 5:] - b[0, 5:]).abs().amax(-1).min() > 1e-3  # later ones do
    torch.testing.assert_close(a[1:], b[1:], atol=ATOL, rtol=0)  # other sequences (packed beside it) neither


@pytest.mark.parametrize("fast", [UNPAD, PACK, {"unpad": True, "pack": True, "sparse_output": True}],
                         ids=["unpad", "pack", "all"])
def test_every_output_field_with_fast_paths_on(fast):
    model = randomize(BertForPreTraining(config())).train()
    batch = padded_batch()
    labels = torch.where(torch.rand(3, 13, generator=torch.Generator().manual_seed(1)) < 0.3, batch["input_ids"], -100)
    labels[batch["attention_mask"] == 0] = -100
    kw = dict(batch, labels=labels, next_sentence_label=torch.tensor([0, 1, 1]), output_hidden_states=True,
              output_attentions=True, output_attention_scores=True)
    plain = model.set_fast_path(**PLAIN)(**kw)
    got = model.set_fast_path(**fast)(**kw)
    real = batch["attention_mask"].bool()
    pair = real[:, None, :, None] & real[:, None, None, :]
    assert len(got.hidden_states) == 3 and len(got.attentions) == len(got.attention_scores) == 2
    for a, b in zip(got.hidden_states, plain.hidden_states):
        torch.testing.assert_close(a[real], b[real], atol=ATOL, rtol=0)
        assert float(a.detach()[~real].abs().sum()) == 0.0  # zeros at padding
    for name in ("attentions", "attention_scores"):
        for a, b in zip(getattr(got, name), getattr(plain, name)):
            assert a.shape == (3, 4, 13, 13)
            torch.testing.assert_close(a * pair, b * pair, atol=ATOL, rtol=0)
            assert float(a.detach()[~pair.expand_as(a)].abs().sum()) == 0.0
    for name in ("loss", "prediction_logits", "seq_relationship_logits", "pooler_output"):
        torch.testing.assert_close(getattr(got, name), getattr(plain, name), atol=ATOL, rtol=0)
    # sparse output cannot give the last layer at every position: with hidden states asked for, it
    # runs in full (the docstring of BertModel.forward says so), unpad and pack still on
    assert got.last_hidden_state.shape == (3, 13, 32)
    if fast["sparse_output"]:
        sparse = model(**{k: v for k, v in kw.items() if k != "output_hidden_states"})
        assert sparse.last_hidden_state is None and len(sparse.attentions) == 2
        for a, b in zip(sparse.attentions, plain.attentions):  # attention maps are served all the same
            torch.testing.assert_close(a * pair, b * pair, atol=ATOL, rtol=0)


def test_math_path_with_cpu_fast_dropout_matches_scores_softmax():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 4, 8, generator=g) for _ in range(3))
    torch.manual_seed(3)
    ctx, probs = attention(q, k, v, dropout_p=0.5, fast_dropout=True, want="probs")
    torch.manual_seed(3)
    from berts.model.attention import fast_dropout
    torch.testing.assert_close(ctx, fast_dropout((q @ k.transpose(-1, -2) / 8 ** 0.5).softmax(-1), 0.5) @ v)
    torch.testing.assert_close(probs.sum(-1), torch.ones(1, 2, 4))
    assert F.scaled_dot_product_attention is not None
