"""One padding rule (berts.model.padding.pad_width) in every batch maker, capped at the model's positions.

The bug it fixes: with `prepare --max-seq-length 130` (a model of 130 positions), pretraining
batches came out 136 wide (the longest rounded up to 8, uncapped); training hid it (unpad only
looks up the real tokens' positions) and evaluation crashed with an IndexError in the position
embedding. Here the length is 30 (not a multiple of 8) on tiny data: the old rule gave 32.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_data_support import make_tokenizer, random_corpus

import berts
from berts.data import PretrainingCollator, PretrainingDataset, ResumableBatchSampler, prepare
from berts.data.classification import ClassificationDataset
from berts.data.tables import Example
from berts.model.padding import pad_width
from berts.tokenizer.wordpiece import load_tokenizer

SEQ = 30  # not a multiple of 8
MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids", "mlm_positions", "mlm_labels", "next_sentence_label")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("pad")
    tok = make_tokenizer(root / "tok")
    corpus = random_corpus(root / "c.txt", 120, seed=5)
    prepare([corpus], tok, root / "nsp", objective="nsp", max_seq_length=SEQ, workers=1, seed=2)
    return root


def test_pad_width_rule():
    assert [pad_width(n, 8, cap=SEQ) for n in (1, 8, 9, 24, 25, 29, 30)] == [8, 8, 16, 24, 30, 30, 30]
    assert pad_width(25, 8) == 32 and pad_width(5, None) == 5


def test_pretraining_batches_fit_the_model_positions(data):
    ds = PretrainingDataset(data / "nsp", seed=0, max_predictions_per_seq=None)
    assert int(ds.meta["max_seq_length"]) == SEQ and int(ds.lengths.max()) == SEQ  # some instances are full
    sampler = ResumableBatchSampler(len(ds), 16, seed=0, shuffle=True, drop_last=False)
    widths, full = [], None
    for epoch, step, indices in sampler:
        batch = ds[(epoch, step, indices)]
        longest = int(ds.lengths[np.asarray(indices)].max())
        width = batch["input_ids"].shape[1]
        assert width == pad_width(longest, 8, cap=SEQ) and longest <= width <= SEQ
        widths.append(width)
        if width == SEQ and full is None:
            full = batch
    assert SEQ in widths and full is not None  # the capped width did occur (the old rule: 32)

    config = berts.preset("tiny", vocab_size=ds.meta["vocab_size"], max_position_embeddings=SEQ)
    torch.manual_seed(0)
    model = berts.BertForPreTraining(config).eval()
    with torch.no_grad():
        out = model(**{k: full[k] for k in MODEL_KEYS})
    assert torch.isfinite(out.loss) and out.seq_relationship_logits.shape == (len(full["input_ids"]), 2)

    # the collator on its own, fed dicts, applies the same cap
    x = [ds[i] for i in np.flatnonzero(ds.lengths == SEQ)[:2]]
    collator = ds.collator
    assert collator(x)["input_ids"].shape == (2, SEQ)
    uncapped = PretrainingCollator(vocab_size=collator.vocab_size, pad_id=0, mask_id=4, special_ids=[0, 1, 2, 3, 4])
    assert uncapped(x)["input_ids"].shape == (2, 32)  # no cap given: rounded up to 8


def test_classification_batches_fit_max_length(data):
    tok = load_tokenizer(data / "tok")
    words = [w for w in tok.vocab() if w.isalpha()][:60]
    rng = np.random.default_rng(0)
    examples = [Example(" ".join(rng.choice(words, int(rng.integers(3, 40)))), label=str(i % 2)) for i in range(40)]
    ds = ClassificationDataset(examples, tok, max_length=SEQ)
    assert int(ds.lengths.max()) == SEQ
    batch = ds[(0, 0, np.arange(len(ds)))]
    assert batch["input_ids"].shape == (40, SEQ)
    small = ds[(0, 1, np.argsort(ds.lengths)[:4])]
    assert small["input_ids"].shape[1] == pad_width(int(np.sort(ds.lengths)[3]), 8, cap=SEQ)
    config = berts.preset("tiny", vocab_size=tok.vocab_size, max_position_embeddings=SEQ, num_labels=2)
    model = berts.BertForSequenceClassification(config).eval()
    with torch.no_grad():
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=batch["labels"])
    assert out.logits.shape == (40, 2) and torch.isfinite(out.loss)
