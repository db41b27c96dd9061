"""berts.embed: pooling (hand computations, padded == unpadded), sentence-transformers directories
both ways (sentence-transformers itself is the oracle), and the Encoder."""
import json
import logging
import string
import warnings

import numpy as np
import pytest
import torch

from berts.embed.pooling import Pooling, cu_seqlens_of, pooling_modes
from berts.errors import UserError
from berts.model.config import BertConfig
from berts.model.encoder import BertModel

WORDS = ["cat", "dog", "bird", "tree", "river", "hill", "house", "red", "blue", "green", "big", "small"]
TEXTS = ["The cat is big.", "a dog runs by the river", "", "Red trees, blue hills and green houses.",
         "the small bird", "cat", "big big big big big big big big big big big big big big big big big big",
         "a house on a hill by a river, the dog is red and the cat is blue"]
ALL_MODES = ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]


# ---------------------------------------------------------------------------------------- pooling
def _batch():
    torch.manual_seed(0)
    h = torch.randn(3, 5, 4)  # [B, S, H]
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    return h, mask


def test_pooling_modes_by_hand():
    h, mask = _batch()
    row = h[1, :3]  # the second sequence's 3 real tokens
    by_hand = {
        "cls": row[0],
        "mean": row.mean(0),
        "max": row.max(0).values,
        "mean_sqrt_len_tokens": row.sum(0) / 3 ** 0.5,
        "weightedmean": (1 * row[0] + 2 * row[1] + 3 * row[2]) / 6,
        "lasttoken": row[2],
    }
    for mode, want in by_hand.items():
        got = Pooling(4, mode)(h, mask)
        assert got.shape == (3, 4)
        torch.testing.assert_close(got[1], want, rtol=0, atol=1e-6)
    both = Pooling(4, ["cls", "mean"], normalize=True)(h, mask)  # concatenated, then normalised
    cat = torch.cat([row[0], row.mean(0)])
    torch.testing.assert_close(both[1], cat / cat.norm(), rtol=0, atol=1e-6)
    assert Pooling(4, ["cls", "mean"]).dim == 8
    assert pooling_modes("mean-sqrt-len") == ("mean_sqrt_len_tokens",)
    with pytest.raises(ValueError, match="unknown pooling mode 'median'"):
        Pooling(4, "median")


def test_pooling_unpadded_equals_padded():
    h, mask = _batch()
    tokens = h[mask.bool()]  # [T, H], grouped by row
    cu = cu_seqlens_of(mask)
    assert cu.tolist() == [0, 5, 8, 9]
    for mode in ALL_MODES:
        p = Pooling(4, mode)
        torch.testing.assert_close(p(tokens, cu_seqlens=cu), p(h, mask), rtol=0, atol=1e-6)


def test_pooling_left_padding_counts_from_the_first_real_token():
    h, mask = _batch()
    left = torch.tensor([[0, 0, 1, 1, 1]])
    hl = torch.cat([torch.zeros(1, 2, 4), h[1:2, :3]], dim=1)  # the same 3 tokens, padded left
    for mode in ALL_MODES:
        p = Pooling(4, mode)
        torch.testing.assert_close(p(hl, left)[0], p(h, mask)[1], rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------- directories
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A tiny random berts encoder + tokenizer."""
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("embed")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "is", ".", ",", "and", "on", "by",
              *WORDS, "##s", "##ing", "run", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    tok.model_max_length = 16  # the long texts get truncated
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    model = BertModel(cfg).eval()
    with torch.no_grad():  # LayerNorms and biases random too: a wrong mapping cannot pass
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return {"root": root, "tok": tok, "model": model}


@pytest.fixture(scope="module")
def st():
    """sentence-transformers, the oracle (imported once: slow)."""
    return pytest.importorskip("sentence_transformers")


def _encoder(env, modes, normalize):
    from berts.embed.encoder import Encoder

    return Encoder(env["model"], env["tok"], Pooling(32, modes, normalize), max_seq_length=16)


@pytest.mark.parametrize("modes,normalize", [("mean", True), ("cls", False), ("max", False),
                                             ("mean_sqrt_len_tokens", True), ("weightedmean", False),
                                             ("lasttoken", True), (["cls", "mean"], False)])
def test_saved_directory_gives_sentence_transformers_the_same_embeddings(env, st, modes, normalize):
    from berts.embed.encoder import Encoder

    enc = _encoder(env, modes, normalize)
    d = env["root"] / f"st-{'-'.join(pooling_modes(modes))}-{normalize}"
    enc.save_pretrained(d)
    assert json.loads((d / "sentence_bert_config.json").read_text())["max_seq_length"] == 16
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = enc.encode(TEXTS, batch_size=3)
        theirs = st.SentenceTransformer(str(d), device="cpu").encode(TEXTS, batch_size=3)
    assert ours.shape == theirs.shape == (len(TEXTS), enc.dim)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    if normalize:
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-6)
    # and back: berts reads its own directory to the same numbers
    again = Encoder.from_pretrained(d)
    assert again.pooling.modes == pooling_modes(modes) and again.pooling.normalize == normalize
    with pytest.warns(UserWarning, match="truncated"):
        np.testing.assert_allclose(again.encode(TEXTS), ours, rtol=0, atol=1e-5)


def test_a_directory_made_by_sentence_transformers_loads_with_its_embeddings(env, st):
    """Built with sentence-transformers' own classes around a BertModel saved by transformers."""
    import transformers
    from sentence_transformers.sentence_transformer import modules as M

    from berts.embed.encoder import Encoder

    hf = env["root"] / "hf"
    hf.mkdir()
    vocab = env["tok"].backend.get_vocab()
    (hf / "vocab.txt").write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    transformers.BertTokenizerFast(str(hf / "vocab.txt")).save_pretrained(str(hf))
    torch.manual_seed(1)
    c = env["model"].config
    transformers.BertModel(transformers.BertConfig(
        vocab_size=c.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64)).save_pretrained(str(hf))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr = M.Transformer(str(hf), max_seq_length=12)
        made = st.SentenceTransformer(modules=[tr, M.Pooling(32, pooling_mode="max"), M.Normalize()],
                                      device="cpu")
        d = env["root"] / "st-made"
        made.save(str(d))
        theirs = made.encode(TEXTS, batch_size=4)
        enc = Encoder.from_pretrained(d)
        assert enc.pooling.modes == ("max",) and enc.pooling.normalize and enc.max_seq_length == 12
        ours = enc.encode(TEXTS, batch_size=4)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)


def test_encode_keeps_order_sorts_by_length_and_agrees_with_the_plain_path(env):
    enc = _encoder(env, "mean", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = enc.encode(TEXTS, batch_size=3)  # the unpad fast path: pooling on [T, H] + cu_seqlens
        one_by_one = np.stack([enc.encode(t) for t in TEXTS])
        enc.unpad = False  # the plain path: [B, S, H] with padding
        plain = enc.encode(TEXTS, batch_size=3)
        enc.unpad = True
    np.testing.assert_allclose(fast, one_by_one, rtol=0, atol=1e-5)
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-5)
    assert enc.model.unpad is None  # the model's own switch is left as it was
    # the empty text is [CLS][SEP]
    ids, mask = enc.batch([[enc.tokenizer.cls_id, enc.tokenizer.sep_id]])
    with torch.no_grad():
        np.testing.assert_allclose(enc(ids, mask).numpy()[0], fast[2], rtol=0, atol=1e-6)
    assert enc.encode([]).shape == (0, 32)


def test_cpu_serving_levers_change_speed_not_embeddings_and_leave_the_model_as_it_was(env, monkeypatch):
    """encode's CPU levers (oneDNN-packed linears with the GELU fused, several batches at once on
    shared-out threads) give the plain path's embeddings; afterwards the model holds the very
    same Linear modules and parameters (one trained between encodes keeps its optimizer's
    tensors), torch's thread count is put back, and an error inside a stream reaches the caller."""
    from berts.model import onednn

    enc = _encoder(env, "mean", True)
    linears = [m for m in enc.model.modules() if type(m) is torch.nn.Linear]
    params = list(enc.model.parameters())
    acts = [m.act for m in enc.model.modules() if hasattr(m, "up")]
    texts = TEXTS * 5
    enc.unpad, enc.onednn, enc.streams = False, False, 1
    plain = enc.encode(texts, batch_size=2)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert enc.cpu_streams(10) == 1
        for packed, streams in ((True, 1), (False, 2), (True, 2), (True, None)):
            enc.unpad, enc.onednn, enc.streams = True, packed, streams
            np.testing.assert_allclose(enc.encode(texts, batch_size=2), plain, rtol=0, atol=1e-5)
            assert torch.get_num_threads() == 2
        assert enc.cpu_streams(10) == 2 and enc.cpu_streams(1) == 1  # None: a stream per thread
        with onednn.packed(enc.model) as n:  # inside: packed, the GELU fused into the up-projection
            if onednn.available():
                assert n == len(linears) and not any(type(m) is torch.nn.Linear for m in enc.model.modules())
                assert all(m.act is onednn._fused and m.up.post == "gelu"
                           for m in enc.model.modules() if hasattr(m, "up"))
        assert [m for m in enc.model.modules() if type(m) is torch.nn.Linear] == linears  # the same objects
        assert all(a is b for a, b in zip(enc.model.parameters(), params))
        assert [m.act for m in enc.model.modules() if hasattr(m, "up")] == acts
        seen = []  # a watched Linear (forward hook: int8 calibration) is not packed: its hook fires
        hook = linears[0].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
        enc.encode(texts, batch_size=2)
        hook.remove()
        assert len(seen) == len(texts) // 2
        calls = []

        def broken(*a):
            calls.append(1)
            if len(calls) == 3:
                raise RuntimeError("stream broke")
            return real(*a)

        real = enc._embed
        monkeypatch.setattr(enc, "_embed", broken)
        with pytest.raises(RuntimeError, match="stream broke"):
            enc.encode(texts, batch_size=2)
        assert torch.get_num_threads() == 2
        assert [m for m in enc.model.modules() if type(m) is torch.nn.Linear] == linears
    finally:
        torch.set_num_threads(before)


def test_int8_smooth_calibrates_through_encode(env, tmp_path):
    """`--int8 smooth` calibrates by running ``encode`` with forward hooks on the Linears: encode's
    oneDNN packing must leave them alone, or every scale is lost and smooth is per-channel."""
    from berts.embed.engines import load_engine

    d = _encoder(env, "mean", True).save_pretrained(tmp_path / "st")
    enc = load_engine(d, int8="smooth", calibration=TEXTS * 4)
    quantized = {n: m for n, m in enc.model.named_modules() if m._get_name() == "Int8Linear"}
    unscaled = [n for n, m in quantized.items() if m.inv_scale is None]
    assert len(quantized) == 9 and unscaled == ["pooler.dense"], unscaled  # 4 a layer; the unused pooler


def test_truncation_is_said_once(env):
    enc = _encoder(env, "mean", False)
    long = " ".join(["big"] * 40)
    with pytest.warns(UserWarning, match="truncated") as caught:
        a = enc.encode([long, "cat"])
        enc.encode([long])
    assert sum("truncated" in str(w.message) for w in caught) == 1
    cut = " ".join(["big"] * 14)  # 14 words + [CLS] + [SEP] = the 16-token window
    np.testing.assert_allclose(a[0], enc.encode(cut), rtol=0, atol=1e-6)


def test_plain_bert_directory_means_mean_pooling_said_once(env, caplog):
    from berts.embed.encoder import Encoder

    d = env["root"] / "plain"
    env["model"].save_pretrained(d, tokenizer=env["tok"])
    with caplog.at_level(logging.WARNING, logger="berts.embed.encoder"):
        enc = Encoder.from_pretrained(d)
    assert [r.getMessage() for r in caplog.records] == [f"{d}: no pooling config (modules.json): mean pooling"]
    assert enc.pooling.modes == ("mean",) and not enc.pooling.normalize
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(enc.encode(TEXTS[:3]), _encoder(env, "mean", False).encode(TEXTS[:3]),
                                   rtol=0, atol=1e-6)


def test_bad_directories_fail_in_one_line(tmp_path, env):
    from berts.embed.encoder import Encoder
    from berts.embed.st_format import read_st_dir

    with pytest.raises(UserError, match="no such model directory"):
        Encoder.from_pretrained(tmp_path / "nope")
    (tmp_path / "modules.json").write_text('[{"idx": 0, "path": "", "type": "x.Transformer"},\n oops]')
    with pytest.raises(UserError, match=r"modules.json:2: invalid JSON"):
        read_st_dir(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]))
    with pytest.raises(UserError, match="Dense' is not supported"):
        read_st_dir(tmp_path)
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text('{"pooling_mode": "median"}')
    with pytest.raises(UserError, match="1_Pooling/config.json: unknown pooling mode 'median'"):
        read_st_dir(tmp_path)
    (tmp_path / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 4, "pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}')
    assert read_st_dir(tmp_path).modes == ("cls", "mean")  # ST's order, whatever the file's


def test_training_forward_equals_eval_without_dropout_and_reaches_every_layer(env):
    """Training calls Encoder.forward with the encoder's training fast paths (unpad and pack):
    without dropout it gives encode's numbers, and a loss's gradient reaches every encoder weight."""
    from berts.embed.encoder import Encoder
    from berts.embed.losses import MultipleNegativesRankingLoss

    model = BertModel(env["model"].config.replace(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                      add_pooling_layer=False)
    model.load_state_dict({k: v for k, v in env["model"].state_dict().items() if not k.startswith("pooler")})
    enc = Encoder(model, env["tok"], Pooling(32, "mean"), max_seq_length=16)
    texts = TEXTS[:6]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = enc.encode(texts)
        ids, mask = enc.batch(enc.tokenize(texts))
    enc.train()
    assert model.fast("unpad") and model.fast("pack")
    got = enc(ids, mask)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=0, atol=1e-5)
    loss = MultipleNegativesRankingLoss()(got[:3], got[3:])
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters()
               if "token_type" not in n), [n for n, p in model.named_parameters() if p.grad is None]
