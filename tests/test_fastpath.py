"""Every fast path against its plain path: the same numbers within 1e-5 (fp32), gradients included."""
import warnings

import pytest
import torch

from berts import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from berts.model.encoder import BertAttention, compile_model, fast_dropout
from conftest import padded_batch, randomize

ATOL = 1e-5


def configs():
    bert = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64, num_labels=3,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    albert = bert.replace(embedding_size=16, share_layers="all", hidden_act="gelu_new", num_hidden_layers=3)
    return {"bert": bert, "albert": albert}


def labels_for(cls, batch):
    g = torch.Generator().manual_seed(1)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if cls in (BertForPreTraining, BertForMaskedLM):
        pick = (torch.rand(ids.shape, generator=g) < 0.3) & (mask == 1)
        labels = torch.where(pick, ids, -100)
        out = {"labels": labels}
        if cls is BertForPreTraining:
            out["next_sentence_label"] = torch.tensor([0, 1, 1])
        return out
    if cls is BertForSequenceClassification:
        return {"labels": torch.tensor([0, 2, 1])}
    return {}


def run(model, batch, fast: dict, train: bool):
    """Forward (+ backward in train mode): the outputs that do not look at padding, and the grads."""
    model.set_fast_path(**fast)
    model.train(train)
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    real = batch["attention_mask"].bool()
    got = {}
    if out["last_hidden_state"] is not None:
        got["hidden"] = out["last_hidden_state"][real]
    for name in ("loss", "logits", "prediction_logits", "seq_relationship_logits", "pooler_output"):
        value = getattr(out, name, None)
        if value is not None:  # dense [B, S, ...] outputs: the real positions
            got[name] = value[real] if value.shape[:2] == real.shape else value
    if train:
        loss = getattr(out, "loss", None)
        (loss if loss is not None else got["hidden"].square().mean()).backward()
        got.update({f"grad:{n}": p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    return got


def assert_same(a, b):
    assert b.keys() <= a.keys() and {k for k in a if not k.startswith("grad:")} - b.keys() <= {"hidden"}
    for k in b:
        torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=lambda m: f"{k}: {m}")


CLASSES = [BertModel, BertForPreTraining, BertForMaskedLM, BertForSequenceClassification]


PLAIN = {"unpad": False, "pack": False, "sparse_output": False}
FAST = [{"unpad": True, "pack": False, "sparse_output": False}, {"unpad": True, "pack": True, "sparse_output": False},
        {"unpad": False, "pack": False, "sparse_output": True}, {"unpad": True, "pack": True, "sparse_output": True}]


@pytest.mark.parametrize("fast", FAST, ids=["unpad", "pack", "sparse_output", "all"])
@pytest.mark.parametrize("arch", ["bert", "albert"])
@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_fast_paths_equal_plain(cls, arch, train, fast):
    model = randomize(cls(configs()[arch]))
    batch = dict(padded_batch(), **labels_for(cls, padded_batch()))
    plain = run(model, batch, PLAIN, train)
    got = run(model, batch, fast, train)
    assert_same(plain, got)
    if fast["sparse_output"] and cls is not BertModel:  # the heads asked for their rows only
        assert "hidden" not in got


def test_packing_puts_several_sequences_in_a_row():
    from berts.model.padding import unpad_index

    mask = torch.zeros(4, 16, dtype=torch.long)
    for row, n in enumerate((10, 5, 16, 6)):
        mask[row, :n] = 1
    packed = unpad_index(mask, pack=True)
    assert packed.rows == 3  # 16 | 10 + 6 | 5 (first fit, longest first)
    assert sorted(packed.slots.tolist()) == packed.slots.unique().tolist() and packed.slots.numel() == 37
    block = packed.mask[:, 0]
    assert block.shape == (3, 16, 16) and bool(block.diagonal(dim1=1, dim2=2).all())
    assert int(block[0].sum()) == 16 * 16 and int(block[1].sum()) == 10 * 10 + 6 * 6  # two sequences, apart
    assert int(block[2].sum()) == 5 * 5 + 11  # and the empty slots see themselves only
    # left padding: no packing, the batch's own rows
    left = mask.flip(1)
    assert unpad_index(left, pack=True).rows == 4
    assert unpad_index(torch.ones(2, 8), pack=True) is None


def test_pack_equals_plain_with_a_full_row_and_an_odd_batch():
    model = randomize(BertForSequenceClassification(configs()["bert"]))
    batch = padded_batch(batch=5, seq=16, seed=3)
    batch["attention_mask"][3] = 1  # a full row
    batch["attention_mask"][4, 2:] = 0
    batch["labels"] = torch.tensor([0, 1, 2, 0, 1])
    assert_same(run(model, batch, PLAIN, True), run(model, batch, FAST[1], True))


@pytest.mark.parametrize("unpad", [False, True])
def test_output_rows_of_the_bare_encoder(unpad):
    model = randomize(BertModel(configs()["bert"])).eval()
    batch = padded_batch()
    rows = torch.tensor([14, 0, 3, 30])  # any order, [CLS] included or not
    with torch.no_grad():
        full = model.set_fast_path(**PLAIN)(**batch)
        part = model.set_fast_path(unpad=unpad, sparse_output=True)(**batch, output_rows=rows)
    assert torch.equal(part.rows, rows)
    torch.testing.assert_close(part.last_hidden_state, full.last_hidden_state.reshape(-1, 32)[rows], atol=ATOL, rtol=0)
    torch.testing.assert_close(part.pooler_output, full.pooler_output, atol=ATOL, rtol=0)


def test_sparse_output_keeps_the_full_output_when_hidden_states_are_asked_for():
    model = randomize(BertForPreTraining(configs()["bert"])).train()
    batch = dict(padded_batch(), **labels_for(BertForPreTraining, padded_batch()))
    out = model(**batch, output_hidden_states=True)
    assert out.last_hidden_state.shape == (3, 13, 32) and len(out.hidden_states) == 3


def test_unpad_with_position_ids_and_default_switch():
    model = randomize(BertForPreTraining(configs()["bert"]))
    batch = padded_batch()
    batch["position_ids"] = torch.arange(13).flip(0)[None]  # any ids: the fast path gathers them
    assert_same(run(model, batch, PLAIN, False), run(model, batch, FAST[-1], False))
    # default (None): on while training, off in eval, where padding positions match transformers too
    model.set_fast_path(unpad=None, pack=None, sparse_output=None).eval()
    with torch.no_grad():
        full = model(**batch).last_hidden_state
    assert full[batch["attention_mask"] == 0].abs().sum() > 0
    with pytest.raises(ValueError, match="unknown fast path"):
        model.set_fast_path(warp_drive=True)


def test_fast_dropout_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.randn(256, 4096)
    y = fast_dropout(x, 0.1)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.002
    torch.testing.assert_close(y[kept], x[kept] * 65536 / (65536 - 6554))
    assert fast_dropout(x, 0.1, training=False) is x and fast_dropout(x, 0.0) is x
    g = torch.randn(8, 8, requires_grad=True)
    fast_dropout(g, 0.5).sum().backward()
    assert set(g.grad.unique().tolist()) <= {0.0, 65536 / 32768}


def test_fast_attention_dropout_is_softmax_dropout_matmul():
    """With attention dropout on CPU the fast path is the math path with fast_dropout on the probabilities."""
    cfg = configs()["bert"].replace(attention_probs_dropout_prob=0.1)
    attn = randomize(BertAttention(cfg)).train()
    x = torch.randn(3, 13, 32)
    mask = padded_batch()["attention_mask"].bool()[:, None, None, :]
    torch.manual_seed(7)
    got, _ = attn(x, mask)
    torch.manual_seed(7)
    q, k, v = attn.qkv(x).view(3, 13, 3, 4, 8).permute(2, 0, 3, 1, 4)
    probs = ((q @ k.transpose(-1, -2)) / 8 ** 0.5).masked_fill(~mask, torch.finfo(x.dtype).min).softmax(-1)
    ctx = (fast_dropout(probs, 0.1) @ v).transpose(1, 2).reshape(3, 13, 32)
    torch.testing.assert_close(got, attn.norm(x + attn.out(ctx)), atol=ATOL, rtol=0)
    # plain path: SDPA's own dropout (other draws, same distribution); eval: no dropout at all, equal
    model = randomize(BertModel(cfg))
    model.set_fast_path(fast_dropout=False)
    assert not model.encoder.layers[0].attention.dropout.fast_dropout
    model.set_fast_path(fast_dropout=None)
    assert model.encoder.layers[0].attention.dropout.fast_dropout


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compile_falls_back_with_a_warning(monkeypatch):
    model = randomize(BertForSequenceClassification(configs()["bert"])).eval()
    batch = padded_batch()

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(UserWarning, match="torch.compile is unavailable.*plain"):
        same = compile_model(model)
    assert same is model
    with torch.no_grad():
        assert same(**batch).logits.shape == (3, 3)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, on importing dynamo
def test_compile_for_real_gives_the_same_numbers():
    """torch.compile on CPU (inference, fixed shapes): compiled, or a clean fallback; same outputs."""
    model = randomize(BertForSequenceClassification(configs()["bert"])).eval()
    batch = {k: v for k, v in padded_batch().items() if k != "attention_mask"}
    with torch.no_grad():
        plain = model(**batch).logits
    compiled = compile_model(randomize(BertForSequenceClassification(configs()["bert"])).eval(), dynamic=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a machine without a compiler falls back: the same numbers
        with torch.no_grad():
            got = compiled(**batch).logits
    torch.testing.assert_close(got, plain, atol=ATOL, rtol=0)


def test_packing_a_full_mask_keeps_each_sequence_own_mask():
    """A causal [B, S, S] mask packed: in slot coordinates, each sequence's causal mask, apart."""
    from berts.model.attention import causal_mask
    from berts.model.padding import unpad_index

    lengths = (10, 5, 16, 6)
    pad = torch.zeros(4, 16, dtype=torch.bool)
    for row, n in enumerate(lengths):
        pad[row, :n] = True
    full = causal_mask(16)[:, 0] & pad[:, None, :] & pad[:, :, None]
    packed = unpad_index(full, pack=True)
    assert packed.rows == 3 and packed.packed and torch.equal(packed.real, pad)
    block = packed.mask[:, 0]
    tri = lambda n: n * (n + 1) // 2  # noqa: E731
    assert int(block[0].sum()) == tri(16) and int(block[1].sum()) == tri(10) + tri(6)
    assert int(block[2].sum()) == tri(5) + 11  # the empty slots see themselves only
    # the same tokens unpacked: the full mask itself, padded queries given their own key
    plain = unpad_index(full)
    assert plain.rows == 4 and torch.equal(plain.mask[:, 0] & pad[:, :, None], full)
    assert bool(plain.mask[:, 0].any(-1).all())
