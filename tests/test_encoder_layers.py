"""Running the encoder layer by layer on a subset of rows (early exit), with the fast paths on."""
import pytest
import torch

from berts import BertConfig, BertModel
from berts.model.attention import causal_mask
from conftest import padded_batch, randomize

ATOL = 1e-5


def model(share="none"):
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=64, share_layers=share,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return randomize(BertModel(cfg))


def batch():
    b = padded_batch(batch=5, seq=16, seed=4)
    b["attention_mask"][3, 7:] = 0
    b["attention_mask"][4, 2:] = 0
    return b


@pytest.mark.parametrize("fast", [{"unpad": False, "pack": False}, {"unpad": True, "pack": False},
                                  {"unpad": True, "pack": True}], ids=["plain", "unpad", "pack"])
@pytest.mark.parametrize("full_mask", [False, True], ids=["padding", "causal"])
def test_layer_by_layer_with_rows_dropped_equals_the_full_forward(fast, full_mask):
    bert = model().set_fast_path(**fast, sparse_output=False).train()  # train: the fast paths' default on
    b = batch()
    mask = b["attention_mask"]
    if full_mask:
        pad = mask.bool()
        mask = causal_mask(16)[:, 0] & pad[:, None, :] & pad[:, :, None]
    full = bert(b["input_ids"], mask, b["token_type_ids"], output_hidden_states=True)
    state = bert.embed(b["input_ids"], mask, b["token_type_ids"])
    assert (state.unpadded is not None) == fast["unpad"]
    keep_after = {0: torch.tensor([True, False, True, True, True]), 1: torch.tensor([2, 0, 3])}  # of the current rows, any order
    for i in range(3):
        state = bert.run_layer(i, state)
        rows = state.batch_rows
        real = state.attention_mask.bool()
        real = real.any(1) if real.dim() == 3 else real
        torch.testing.assert_close(state.hidden()[real], full.hidden_states[i + 1][rows][real], atol=ATOL, rtol=0)
        if i in keep_after:
            state = state.select(keep_after[i])
            if fast["pack"]:
                assert state.unpadded.packed
    assert state.batch_rows.tolist() == [3, 0, 4] and state.layer == 3
    real = full.last_hidden_state.new_zeros(5, 16).bool() | b["attention_mask"].bool()
    torch.testing.assert_close(state.hidden()[real[[3, 0, 4]]], full.last_hidden_state[[3, 0, 4]][real[[3, 0, 4]]],
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(bert.pool(state), full.pooler_output[[3, 0, 4]], atol=ATOL, rtol=0)


def test_layer_by_layer_attention_maps_and_gradients():
    bert = model("all").set_fast_path(unpad=True, pack=True).train()
    b = batch()
    full = bert(**b, output_attention_scores=True)
    state = bert.embed(**b)
    state = bert.run_layer(0, state, want="scores")
    torch.testing.assert_close(state.attention_maps, full.attention_scores[0] * (state.attention_maps != 0),
                               atol=ATOL, rtol=0)
    state = bert.run_layer(1, state.select(torch.tensor([0, 1])))
    bert.pool(state).sum().backward()
    assert bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_the_forward_is_built_on_the_same_pieces():
    """BertModel.forward = embed, every run_layer, pool: bitwise the same numbers."""
    bert = model().set_fast_path(unpad=True, pack=True, sparse_output=False).train()
    b = batch()
    out = bert(**b)
    state = bert.embed(**b)
    for i in range(3):
        state = bert.run_layer(i, state)
    assert torch.equal(state.hidden(), out.last_hidden_state) and torch.equal(bert.pool(state), out.pooler_output)
