"""The modern encoder's switches (config.py's block): each fast path equals the plain path, and
each piece against a hand or dense reference computation."""
import math

import pytest
import torch

from berts import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from berts.errors import UserError
from berts.model.attention import (apply_rope, attention, band_mask, combine, local_attention, padding_mask,
                                  rope_angles, rope_qkv, varlen_attention)
from berts.model.encoder import make_norm
from conftest import padded_batch, randomize
from test_fastpath import FAST, PLAIN, assert_same, labels_for, run
from train_utils import shards  # noqa: F401  (the fixture)

BASE = dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=24,
            max_position_embeddings=64, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def configs():
    # ModernBERT's recipe: rope (two bases), window 4 (2 each side) on layers 1, 2; GeGLU; no bias;
    # pre-LN with layer 0 reading the embedding norm; no token types; head norm on the pooler
    modern = BertConfig(**BASE, position_embedding_type="rope", rope_theta=160000.0, local_rope_theta=10000.0,
                        sliding_window=4, global_attn_every_n_layers=3, norm_position="pre", ffn="glu",
                        bias=False, type_vocab_size=0, first_attn_norm=False, pooler_act="gelu", pooler_norm=True)
    # NeoBERT-like: RMSNorm, SwiGLU, no embedding norm, mean pooling, every layer local (window 6)
    neo = BertConfig(**BASE, position_embedding_type="rope", sliding_window=6, global_attn_every_n_layers=4,
                     norm_position="pre", norm_type="rmsnorm", ffn="glu", hidden_act="silu", embedding_norm=False,
                     classifier_pooling="mean", type_vocab_size=0)
    # the linears keep their bias, the norms have none; post-LN with rope
    mixed = BertConfig(**BASE, position_embedding_type="rope", sliding_window=2, norm_bias=False)
    return {"modern": modern, "neo": neo, "mixed": mixed}


CLASSES = [BertModel, BertForPreTraining, BertForMaskedLM, BertForSequenceClassification]


@pytest.mark.parametrize("fast", FAST, ids=["unpad", "pack", "sparse_output", "all"])
@pytest.mark.parametrize("arch", ["modern", "neo", "mixed"])
@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_modern_fast_paths_equal_plain(cls, arch, train, fast):
    model = randomize(cls(configs()[arch]))
    batch = dict(padded_batch(), **labels_for(cls, padded_batch()))  # 13 tokens: longer than every window
    plain = run(model, batch, PLAIN, train)
    got = run(model, batch, fast, train)
    assert_same(plain, got)


@pytest.mark.parametrize("arch", ["modern", "neo"])
def test_chunked_local_layers_equal_the_dense_band_and_eager(arch):
    """The chunked local attention (SDPA, no [S, S]) against the math path on the dense band mask
    (taken when the attention maps are asked for), padded and unpadded."""
    model = randomize(BertModel(configs()[arch])).eval()
    batch = padded_batch()
    for unpad in (False, True):
        model.set_fast_path(unpad=unpad)
        with torch.no_grad():
            fast = model(**batch)
            eager = model(**batch, output_attentions=True)
        real = batch["attention_mask"].bool()
        torch.testing.assert_close(fast.last_hidden_state[real], eager.last_hidden_state[real], atol=1e-5, rtol=0)
        probs = eager.attentions[1]  # layer 1 is local: no probability beyond 2 (modern) / 3 (neo) positions
        h = configs()[arch].sliding_window // 2
        far = (torch.arange(13)[:, None] - torch.arange(13)[None, :]).abs() > h
        assert float(probs[..., far].abs().max()) == 0.0
        assert float(eager.attentions[0][0][..., far].abs().max()) > 0  # layer 0 is global


def test_band_mask_by_hand():
    want = torch.tensor([[1, 1, 0, 0, 0],
                         [1, 1, 1, 0, 0],
                         [0, 1, 1, 1, 0],
                         [0, 0, 1, 1, 1],
                         [0, 0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(band_mask(5, 2)[0, 0], want)
    assert torch.equal(band_mask(5, 3)[0, 0], want)  # window // 2 = 1 each side
    keys = torch.tensor([[1, 1, 1, 0, 0]], dtype=torch.bool)
    got = band_mask(5, 2, padding_mask(keys))[0, 0]
    assert torch.equal(got[4], torch.tensor([False, False, False, False, True]))  # out of reach: itself


@pytest.mark.parametrize("seq,window", [(37, 8), (5, 8), (14, 8), (64, 16), (33, 2), (40, 9)])  # (14, 8): dense band
def test_local_attention_equals_the_dense_masked_reference(seq, window):
    g = torch.Generator().manual_seed(seq)
    q, k, v = torch.randn(3, 3, 2, seq, 4, generator=g).unbind(0)
    real = torch.ones(3, seq, dtype=torch.bool)
    real[1, seq // 2:] = False
    real[2, 3:] = False
    causal = real[:, None, :] & torch.ones(seq, seq, dtype=torch.bool).tril()
    for mask in (None, padding_mask(real), (causal | torch.eye(seq, dtype=torch.bool))[:, None]):
        got = local_attention(q, k, v, mask, window=window)
        want, _ = attention(q, k, v, band_mask(seq, window, mask))
        assert not got.isnan().any()
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_local_attention_memory_is_linear_in_length():
    """8,192 tokens through a local layer: the scores tensor SDPA sees is [S/h, h, 3h] per head
    (3 h S), not [S, S]. Checked through the mask it builds: 3 * 64 * 8192 entries."""
    seen = {}
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, dropout_p=0.0):
        seen["mask"] = attn_mask.shape
        return real_sdpa(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)

    q = torch.randn(1, 1, 8192, 8)
    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        local_attention(q, q, q, None, window=128)
    finally:
        torch.nn.functional.scaled_dot_product_attention = real_sdpa
    assert math.prod(seen["mask"]) == 8192 // 64 * 64 * 192  # 3 h S = 1.6M, against S^2 = 67M


def test_varlen_attention_equals_packed_rows_with_the_block_mask():
    from berts.model.padding import unpad_index

    heads, d = 2, 4
    real = torch.zeros(4, 12, dtype=torch.bool)
    for row, n in enumerate((12, 5, 7, 3)):
        real[row, :n] = True
    u = unpad_index(real.long(), pack=True)
    assert u.packed and u.rows == 3 and u.lengths == [12, 5, 7, 3]  # 12 | 7 + 5 | 3
    qkv = torch.randn(int(real.sum()), 3 * heads * d)  # [T, 3 heads d], the sequences end to end
    got = varlen_attention(qkv, u.lengths, heads)
    rows = u.to_rows(qkv)  # [rows, S, 3 heads d], the packed path's layout
    q, k, v = rows.view(u.rows, 12, 3, heads, d).permute(2, 0, 3, 1, 4)
    want, _ = attention(q, k, v, u.mask)
    want = u.from_rows(want.transpose(1, 2).reshape(u.rows, 12, heads * d))
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


# several sequences of mixed lengths in one padded batch: lengths of 1, short beside long, runs of
# one length (varlen_attention batches a run in one call), a row of padding only (length 0)
MIXES = {"ones": (1, 1, 1), "short-long": (40, 1, 3, 40, 2), "runs": (7, 7, 7, 2, 2, 9, 1),
         "with-empty": (12, 0, 5, 1), "one": (1,), "long-short": (97, 96, 5, 1, 1, 33)}


def _mixed(lengths, width=None):
    width = width or max(lengths)
    return torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]  # bool [B, S], right-padded


@pytest.mark.parametrize("lengths", MIXES.values(), ids=MIXES.keys())
def test_varlen_attention_equals_the_dense_masked_computation(lengths):
    """varlen_attention (no mask) against ``attention`` with the dense masks it replaces: the plain
    path's padded rows with the key mask, and the packed rows with the block-diagonal mask."""
    from berts.model.attention import segment_mask
    from berts.model.padding import unpad_index

    heads, d, width = 2, 8, max(lengths) + 3
    real = _mixed(lengths, width)
    g = torch.Generator().manual_seed(len(lengths))
    qkv = torch.randn(int(real.sum()), 3 * heads * d, generator=g)  # [T, 3 heads d], the sequences end to end
    got = varlen_attention(qkv, list(lengths), heads)
    assert got.shape == (qkv.shape[0], heads * d) and not got.isnan().any()
    # the plain path: each sequence in its own padded row, the padding masked out
    u = unpad_index(real.long(), force=True)
    q, k, v = u.to_rows(qkv).view(len(lengths), width, 3, heads, d).permute(2, 0, 3, 1, 4)
    want, _ = attention(q, k, v, padding_mask(real))
    torch.testing.assert_close(got, u.from_rows(want.transpose(1, 2).flatten(2)), atol=1e-5, rtol=0)
    # the packed rows with the block-diagonal mask (built from the segments only when asked)
    u = unpad_index(real.long(), pack=True, force=True)
    assert u.packed and u.given_mask is None and u.lengths == list(lengths)
    q, k, v = u.to_rows(qkv).view(u.rows, width, 3, heads, d).permute(2, 0, 3, 1, 4)
    block = u.mask
    assert torch.equal(block & segment_mask(u.segments), segment_mask(u.segments))
    want, _ = attention(q, k, v, block)
    torch.testing.assert_close(got, u.from_rows(want.transpose(1, 2).flatten(2)), atol=1e-5, rtol=0)
    # dropout on (training): runs, and leaves a few zeros at p = 0.5 (fast_dropout's math path)
    torch.manual_seed(0)
    dropped = varlen_attention(qkv, list(lengths), heads, dropout_p=0.5, fast_dropout=True)
    assert dropped.shape == got.shape and not dropped.isnan().any()


@pytest.mark.parametrize("window", [2, 4, 9, 64])  # 64: every mix fits the dense band (S <= 4 h)
@pytest.mark.parametrize("lengths", MIXES.values(), ids=MIXES.keys())
def test_local_attention_on_packed_segments_equals_the_dense_block_mask(lengths, window):
    """local_attention with packed rows' segment ids (compared within the blocks) against the math
    path on band_mask of the dense block-diagonal mask, with and without a key mask beside them."""
    from berts.model.attention import segment_mask
    from berts.model.padding import unpad_index

    real = _mixed(lengths, max(lengths) + 2)
    u = unpad_index(real.long(), pack=True, force=True)
    g = torch.Generator().manual_seed(window)
    q, k, v = torch.randn(3, u.rows, 2, u.seq, 4, generator=g).unbind(0)
    keys = padding_mask(torch.rand(u.rows, u.seq, generator=g) < 0.8)
    for mask in (None, keys):
        got = local_attention(q, k, v, mask, window=window, segments=u.segments)
        want, _ = attention(q, k, v, band_mask(u.seq, window, combine(mask, segment_mask(u.segments))))
        assert not got.isnan().any()
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.parametrize("width", [40, 1024])
def test_packed_rows_never_build_a_square_mask(width, monkeypatch):
    """The packed fast path in eval and in training, mixed lengths (1, short, long): the global layers
    attend each sequence alone (unmasked SDPA calls), the local ones compare segment ids within
    their blocks; no [S, S] mask reaches SDPA, the block-diagonal mask is never built, and the
    outputs (and the gradients) equal the plain path's. (With autograd on rows up to PACKED_CALL_UPTO
    wide the global layers keep the one packed call with the mask: there only the numbers are compared.)"""
    from berts.model.encoder import PACKED_CALL_UPTO
    from berts.model.padding import Unpadded

    config = configs()["modern"].replace(max_position_embeddings=width)
    model = randomize(BertModel(config, add_pooling_layer=False))
    g = torch.Generator().manual_seed(0)
    lengths = [width, width * 3 // 10, 1, width // 2, 1, 2]
    real = _mixed(lengths, width)
    ids = torch.randint(5, config.vocab_size, (len(lengths), width), generator=g).masked_fill(~real, 0)
    batch = {"input_ids": ids, "attention_mask": real.long()}
    seen = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append(None if attn_mask is None else tuple(attn_mask.shape))
        return real_sdpa(q, k, v, attn_mask=attn_mask, **kw)

    def no_mask(self):
        raise AssertionError("the packed rows' block-diagonal mask was built")

    for train in (False, True):
        want = run(model, batch, PLAIN, train)
        seen.clear()
        by_sequence = not (train and width <= PACKED_CALL_UPTO)
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
        if by_sequence:
            monkeypatch.setattr(Unpadded, "mask", property(no_mask))
        with torch.set_grad_enabled(train):  # eval: as served, no autograd
            got = run(model, batch, {"unpad": True, "pack": True, "sparse_output": False}, train)
        monkeypatch.undo()
        assert_same(want, got)
        if not by_sequence:
            continue
        globals_ = sum(not config.is_local(i) for i in range(config.num_hidden_layers))
        assert seen.count(None) == globals_ * len(lengths)  # one unmasked call per sequence (no two in a row alike)
        assert all(m is None or m[-2:] != (width, width) for m in seen)  # no square mask at all


def test_rope_against_a_hand_rotation():
    d, theta = 8, 100.0
    x = torch.randn(3, d)
    positions = torch.tensor([0, 1, 5])
    cos, sin = rope_angles(positions, d, theta)
    got = apply_rope(x, cos, sin)
    want = x.clone()
    for row, p in enumerate(positions.tolist()):
        for i in range(d // 2):  # pair (i, i + d/2) turned by p / theta^(2i/d)
            a = p / theta ** (2 * i / d)
            x1, x2 = x[row, i].item(), x[row, i + d // 2].item()
            want[row, i] = x1 * math.cos(a) - x2 * math.sin(a)
            want[row, i + d // 2] = x2 * math.cos(a) + x1 * math.sin(a)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    torch.testing.assert_close(got[0], x[0])  # position 0: unturned
    # relative: q(p).k(p') depends on p - p' only
    q, k = torch.randn(d), torch.randn(d)
    c, s = rope_angles(torch.tensor([3, 1, 12, 10]), d, theta)
    qs, ks = apply_rope(q.expand(4, d), c, s), apply_rope(k.expand(4, d), c, s)
    assert abs(float(qs[0] @ ks[1]) - float(qs[2] @ ks[3])) < 1e-5


@pytest.mark.parametrize("shape", [(2, 5), (7,)], ids=["plain", "unpadded"])
def test_rope_qkv_equals_apply_rope_on_q_and_k_and_keeps_v(shape):
    heads, d = 3, 8
    qkv = torch.randn(*shape, 3 * heads * d)
    positions = torch.arange(shape[-1]) * 3 + 1
    cos, sin = rope_angles(positions[None] if len(shape) == 2 else positions, d, 100.0)
    got = rope_qkv(qkv, cos, sin, heads).unflatten(-1, (3, heads, d))
    parts = qkv.unflatten(-1, (3, heads, d))
    c, s = cos[..., None, :], sin[..., None, :]  # broadcast over the heads
    torch.testing.assert_close(got[..., 0, :, :], apply_rope(parts[..., 0, :, :], c, s), atol=1e-6, rtol=0)
    torch.testing.assert_close(got[..., 1, :, :], apply_rope(parts[..., 1, :, :], c, s), atol=1e-6, rtol=0)
    assert torch.equal(got[..., 2, :, :], parts[..., 2, :, :])
    # its backward (the rotation turned back) against autograd's numerical derivative, in float64
    x = qkv.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: rope_qkv(t, cos.double(), sin.double(), heads), (x,))
    # bf16 in, bf16 out, computed in float32 as transformers does
    low = rope_qkv(qkv.bfloat16(), cos, sin, heads)
    assert low.dtype == torch.bfloat16
    assert torch.equal(low, rope_qkv(qkv.bfloat16().float(), cos, sin, heads).bfloat16())


def test_rope_model_has_no_position_table_and_is_shift_invariant():
    config = configs()["modern"].replace(sliding_window=None)
    model = randomize(BertModel(config, add_pooling_layer=False)).eval()
    names = set(model.state_dict())
    assert not any("position_embeddings" in n or "token_type_embeddings" in n for n in names)
    assert "encoder.layers.0.attention.norm.weight" not in names  # first_attn_norm: false
    assert "encoder.layers.1.attention.norm.weight" in names
    ids = torch.randint(5, 99, (1, 9))
    a = model(ids).last_hidden_state
    b = model(ids, position_ids=torch.arange(7, 16)[None]).last_hidden_state  # every position + 7
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_rmsnorm_and_norm_bias_by_hand():
    x = torch.randn(4, 32)
    config = BertConfig(**BASE, norm_type="rmsnorm", layer_norm_eps=1e-6)
    norm = make_norm(config)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 1.5, 32))
    want = x / torch.sqrt(x.square().mean(-1, keepdim=True) + 1e-6) * norm.weight
    torch.testing.assert_close(norm(x), want, atol=1e-6, rtol=0)
    assert make_norm(BertConfig(**BASE, norm_bias=False)).bias is None
    assert make_norm(BertConfig(**BASE, bias=False)).bias is None
    assert make_norm(BertConfig(**BASE, bias=False, norm_bias=True)).bias is not None
    model = BertModel(BertConfig(**BASE, norm_bias=False))
    assert model.encoder.layers[0].attention.qkv.bias is not None
    assert model.encoder.layers[0].attention.norm.bias is None


@pytest.mark.parametrize("act", ["gelu", "silu"], ids=["geglu", "swiglu"])
def test_gated_ffn_by_hand(act):
    config = BertConfig(**BASE, ffn="glu", hidden_act=act)
    ffn = randomize(BertModel(config)).encoder.layers[0].ffn
    x = torch.randn(5, 32)
    up = x @ ffn.up.weight.T + ffn.up.bias
    a, gate = up[:, :24], up[:, 24:]
    f = torch.nn.functional.gelu if act == "gelu" else torch.nn.functional.silu
    torch.testing.assert_close(ffn.inner(x), f(gate) * a, atol=1e-6, rtol=0)


def test_mean_pooling_and_head_norm_by_hand():
    config = configs()["neo"].replace(pooler_norm=True, pooler_act="gelu")
    model = randomize(BertModel(config)).eval()
    batch = padded_batch()
    out = model(batch["input_ids"], batch["attention_mask"])
    m = batch["attention_mask"].float()
    mean = (out.last_hidden_state * m[..., None]).sum(1) / m.sum(1, keepdim=True)
    y = torch.nn.functional.gelu(mean @ model.pooler.dense.weight.T + model.pooler.dense.bias)
    want = y / torch.sqrt(y.square().mean(-1, keepdim=True) + config.layer_norm_eps) * model.pooler.norm.weight
    torch.testing.assert_close(out.pooler_output, want, atol=1e-5, rtol=0)


def test_early_exit_select_keeps_rope_positions():
    config = configs()["modern"]
    model = randomize(BertModel(config)).eval()
    batch = padded_batch()
    keep = torch.tensor([2, 0])
    for unpad in (False, True):
        model.set_fast_path(unpad=unpad)
        state = model.embed(batch["input_ids"], batch["attention_mask"])
        state = model.run_layer(0, state).select(keep)
        for i in range(1, 3):
            state = model.run_layer(i, state)
        want = model(batch["input_ids"][keep], batch["attention_mask"][keep]).last_hidden_state
        real = batch["attention_mask"][keep].bool()
        torch.testing.assert_close(state.hidden()[real], want[real], atol=1e-5, rtol=0)


def test_bad_modern_switches_are_one_line_errors():
    for bad in (dict(position_embedding_type="alibi"), dict(sliding_window=1), dict(norm_type="batchnorm"),
                dict(classifier_pooling="max"), dict(global_attn_every_n_layers=0), dict(type_vocab_size=-1),
                dict(first_attn_norm=False), dict(pooler_act="softmax"), dict(rope_theta=0.5),
                dict(local_rope_theta="big"), dict(norm_bias="no")):
        with pytest.raises(UserError, match="invalid model config"):
            BertConfig(**dict(BASE, **bad))


def test_pretrain_with_the_tiny_modern_preset(shards, tmp_path):  # noqa: F811
    """`berts pretrain --preset tiny-modern` builds the modern model and trains it: loss finite."""
    import json

    from berts.hf import load
    from train_utils import cli

    common = ["train.batch_size=8", "train.save_every=1000", "train.seed=0", "train.max_steps=3",
              "optim.lr=1e-3", "data.num_workers=0", "impl.threads=1", "impl.device=cpu", "log.every=1",
              "log.progress=none", "log.tensorboard=false", "log.plots=false", "model.sliding_window=8"]
    sets = [a for s in common for a in ("--set", s)]
    out = tmp_path / "run"
    assert cli(["pretrain", "--data", str(shards), "--out", str(out), "--preset", "tiny-modern", *sets]) == 0
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line).get("kind") == "train"]
    assert losses and all(math.isfinite(x) for x in losses)
    model = load(out / "final")
    c = model.config
    assert (c.position_embedding_type, c.sliding_window, c.ffn, c.norm_position, c.type_vocab_size) == \
        ("rope", 8, "glu", "pre", 0)
    assert model.bert.embeddings.position_embeddings is None


def test_incremental_decoding_with_rope_equals_a_causal_forward():
    config = configs()["modern"].replace(sliding_window=None)
    model = randomize(BertModel(config, add_pooling_layer=False)).eval()
    ids = torch.randint(5, 99, (2, 7))
    causal = torch.ones(7, 7, dtype=torch.bool).tril().expand(2, 7, 7)
    with torch.no_grad():
        want = model(ids, causal).last_hidden_state
        cache = model.new_cache()
        steps = [model.decode(ids[:, :3], cache, mask=causal[:, :3, :3])]
        steps += [model.decode(ids[:, i:i + 1], cache) for i in range(3, 7)]
    torch.testing.assert_close(torch.cat(steps, 1), want, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="sliding-window"):
        randomize(BertModel(configs()["modern"])).decode(ids[:, :1], BertModel(configs()["modern"]).new_cache())


def test_flops_count_glu_and_windows():
    from berts.model.flops import encoder_flops, layer_flops

    c = configs()["modern"]  # H 32, I 24, window 4 (5 keys) on layers 1 and 2, GLU
    n = 13
    assert layer_flops(c, n, 0) == 2.0 * n * (4 * 32 * 32 + 3 * 32 * 24) + 4.0 * n * n * 32
    assert layer_flops(c, n, 1) == 2.0 * n * (4 * 32 * 32 + 3 * 32 * 24) + 4.0 * n * 5 * 32
    assert encoder_flops(c, n, head=False) == layer_flops(c, n, 0) + 2 * layer_flops(c, n, 1)


def test_full_masks_on_local_layers_pack_like_plain():
    """A causal [B, S, S] mask (UniLM's left-to-right) through local layers: unpad and pack gather it
    into the blocks as the plain path does."""
    from berts.model.attention import mode_mask

    model = randomize(BertModel(configs()["modern"], add_pooling_layer=False)).eval()
    batch = padded_batch()
    full = mode_mask("left-to-right", batch["attention_mask"])
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        model.set_fast_path(unpad=False, pack=False)
        want = model(batch["input_ids"], full).last_hidden_state[real]
        for pack in (False, True):
            model.set_fast_path(unpad=True, pack=pack)
            got = model(batch["input_ids"], full).last_hidden_state[real]
            torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
