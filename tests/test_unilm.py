"""UniLM on the BERT encoder: the four attention modes (hand-built masks, fast paths = plain path,
hidden tokens stay hidden), the next-token objective (loss = hand computation), the KV cache
(= a full forward), and interop (transformers loads it; it fine-tunes for classification)."""
import pytest
import torch
import torch.nn.functional as F
import transformers

import berts
from berts import BertConfig, BertForSequenceClassification
from berts.model.attention import MODES, UNILM_MIX, mode_mask, right_to_left_mask
from berts.model.heads import BertForUnifiedLM
from berts.objectives.lm import next_token_targets
from conftest import padded_batch, randomize

ATOL = 1e-5
PLAIN = {"unpad": False, "pack": False, "sparse_output": False}
FAST = [{"unpad": True, "pack": False, "sparse_output": False},
        {"unpad": True, "pack": True, "sparse_output": False},
        {"unpad": True, "pack": True, "sparse_output": True}]


def config(**kw):
    return BertConfig(**dict(dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                  intermediate_size=37, max_position_embeddings=64,
                                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0), **kw))


def model(seed=0, **kw):
    return randomize(BertForUnifiedLM(config(**kw)), seed).eval()


def test_mode_masks_by_hand():
    pad = torch.tensor([[1, 1, 1, 1, 0]])
    types = torch.tensor([[0, 0, 1, 1, 0]])
    hand = {
        "bidirectional": [[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [0] * 5],
        "left-to-right": [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0] * 5],
        "right-to-left": [[1, 1, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 0], [0] * 5],
        "seq2seq": [[1, 1, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [0] * 5],
    }
    for i, mode in enumerate(MODES):
        assert mode_mask(mode, pad, types)[0].int().tolist() == hand[mode], mode
        assert torch.equal(mode_mask(i, pad, types), mode_mask(mode, pad, types))
    assert right_to_left_mask(3)[0, 0].int().tolist() == [[1, 1, 1], [0, 1, 1], [0, 0, 1]]
    assert sum(UNILM_MIX) == pytest.approx(1.0) and UNILM_MIX[0] == UNILM_MIX[3] == 2 * UNILM_MIX[1]
    with pytest.raises(ValueError, match="attention mode"):
        mode_mask("diagonal", pad, types)


def test_each_mode_on_a_tiny_example_equals_a_hand_built_mask():
    """The model with ``lm_mode`` = the bare encoder with the mask written out by hand."""
    m = model()
    ids = torch.tensor([[2, 11, 12, 3, 13, 14, 3]])
    types = torch.tensor([[0, 0, 0, 0, 1, 1, 1]])
    tril = torch.ones(7, 7).tril().bool()
    hand = {"bidirectional": torch.ones(7, 7).bool(), "left-to-right": tril, "right-to-left": tril.T,
            "seq2seq": (torch.arange(7)[None, :] < 4) | tril}
    for mode in MODES:
        out = m(ids, torch.ones_like(ids), types, lm_mode=mode).prediction_logits
        ref = m.mlm.predict(m.bert(ids, hand[mode][None], types).last_hidden_state)
        torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fast", range(len(FAST)))
@pytest.mark.parametrize("train", [False, True])
def test_every_mode_with_the_fast_paths_equals_the_plain_path(mode, fast, train):
    m = model()
    b = padded_batch()
    pos, nxt = next_token_targets(b["input_ids"], b["attention_mask"], b["token_type_ids"],
                                  target_only=mode == "seq2seq")
    targets = dict(lm_positions=pos, lm_labels=nxt, mlm_positions=torch.tensor([1, 7, 14, 20, 27]),
                   mlm_labels=torch.tensor([5, 6, 7, 8, 9]))
    outs = []
    for switches in (PLAIN, FAST[fast]):
        m.set_fast_path(**switches).train(train)
        torch.manual_seed(0)
        outs.append(m(**b, lm_mode=mode, **targets, output_hidden_states=not switches["sparse_output"]))
    a, f = outs
    for key in ("loss", "prediction_logits", "lm_logits"):
        torch.testing.assert_close(getattr(f, key), getattr(a, key), atol=ATOL, rtol=0)
    if f.hidden_states is not None:
        real = b["attention_mask"].bool()
        for x, y in zip(a.hidden_states, f.hidden_states):
            torch.testing.assert_close(x[real], y[real], atol=ATOL, rtol=0)
    assert set(a.losses) == {"mlm", "lm"}
    assert m.loss_counts({**b, **targets}) == {"mlm": 5, "lm": int(nxt.numel())}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fast", [PLAIN, FAST[1]])
def test_a_hidden_token_changes_nothing_where_it_must_not_be_seen(mode, fast):
    m = model().set_fast_path(**fast)
    b = padded_batch()
    allowed = mode_mask(mode, b["attention_mask"], b["token_type_ids"])  # [B, S, S]
    real = b["attention_mask"].bool()
    base = m.bert(b["input_ids"], allowed, b["token_type_ids"]).last_hidden_state
    checked = 0
    for row, col in ((0, 3), (0, 8), (1, 2), (1, 7), (2, 4)):
        ids = b["input_ids"].clone()
        ids[row, col] = (ids[row, col] + 17) % 99
        out = m.bert(ids, allowed, b["token_type_ids"]).last_hidden_state
        blind = ~allowed[row, :, col] & real[row]  # the real positions that may not see it
        torch.testing.assert_close(out[row, blind], base[row, blind], atol=ATOL, rtol=0)
        assert (out[row, col] - base[row, col]).abs().max() > 1e-3  # and it did change something
        checked += int(blind.sum())
        others = torch.arange(3) != row
        torch.testing.assert_close(out[others], base[others], atol=ATOL, rtol=0)
    assert checked > 0 if mode != "bidirectional" else checked == 0


def test_next_token_loss_is_the_hand_computation():
    m = model()
    b = padded_batch()
    for mode, target_only in (("left-to-right", False), ("seq2seq", True)):
        pos, nxt = next_token_targets(b["input_ids"], b["attention_mask"], b["token_type_ids"], target_only)
        out = m(**b, lm_mode=mode, lm_positions=pos, lm_labels=nxt)
        assert set(out.losses) == {"lm"} and out.prediction_logits is None  # no dense MLM logits
        dense = m.mlm.predict(m.bert(b["input_ids"], mode_mask(mode, b["attention_mask"], b["token_type_ids"]),
                                     b["token_type_ids"]).last_hidden_state)  # [B, S, V]
        ids, real, types = b["input_ids"], b["attention_mask"].bool(), b["token_type_ids"]
        terms = []
        for r in range(ids.shape[0]):
            for i in range(ids.shape[1] - 1):
                if real[r, i + 1] and (not target_only or types[r, i + 1] == 1):
                    terms.append(F.cross_entropy(dense[r, i][None], ids[r, i + 1][None]))
        assert len(terms) == nxt.numel() and len(terms) > 0
        torch.testing.assert_close(out.losses["lm"], torch.stack(terms).mean(), atol=ATOL, rtol=0)
    # causal: every real token but the first of each row is a target (12 + 8 + 4)
    assert next_token_targets(b["input_ids"], b["attention_mask"])[0].numel() == 12 + 8 + 4


@pytest.mark.parametrize("mode", ["left-to-right", "seq2seq"])
def test_kv_cache_equals_a_full_forward(mode):
    m = model(num_hidden_layers=3)
    ids = torch.tensor([[2, 11, 12, 13, 3, 21, 22, 23, 24]])
    types = torch.tensor([[0, 0, 0, 0, 0, 1, 1, 1, 1]]) if mode == "seq2seq" else torch.zeros_like(ids)
    full = m.bert(ids, mode_mask(mode, torch.ones_like(ids), types), types).last_hidden_state
    with torch.no_grad():
        cache, start = m.bert.new_cache(), 5
        first = m.bert.decode(ids[:, :start], cache, types[:, :start],
                              mode_mask(mode, torch.ones(1, start, dtype=torch.long), types[:, :start]))
        steps = [first] + [m.bert.decode(ids[:, i:i + 1], cache, types[:, i:i + 1]) for i in range(start, 9)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=ATOL, rtol=0)
    assert cache.length == 9


def test_interop_transformers_loads_it_and_it_finetunes_for_classification(tmp_path):
    m = model()
    m.config.lm_mode = "left-to-right"
    m.save_pretrained(tmp_path / "lm")
    b = padded_batch()
    theirs = transformers.BertForMaskedLM.from_pretrained(tmp_path / "lm").eval()
    with torch.no_grad():
        ours = m(**b).logits  # bidirectional: no lm_mode
        torch.testing.assert_close(ours, theirs(**b).logits, atol=ATOL, rtol=0)
    back = berts.load(tmp_path / "lm")
    assert type(back) is BertForUnifiedLM and back.config.lm_mode == "left-to-right"
    with torch.no_grad():
        torch.testing.assert_close(back.eval()(**b, lm_mode="seq2seq").logits,
                                   m(**b, lm_mode="seq2seq").logits, atol=ATOL, rtol=0)
    with pytest.warns(UserWarning) as said:  # a new pooler and classifier; the MLM head left out
        clf = BertForSequenceClassification.from_pretrained(tmp_path / "lm", num_labels=2)
    assert any("newly initialised: bert.pooler" in str(w.message) for w in said)
    for name, p in m.bert.named_parameters():  # the encoder carried over exactly
        assert torch.equal(p, clf.bert.state_dict()[name]), name
    opt = torch.optim.AdamW(clf.parameters(), lr=1e-2)
    labels = torch.tensor([0, 1, 1])
    clf.train()
    losses = []
    for _ in range(30):
        loss = clf(**b, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 < losses[0]
