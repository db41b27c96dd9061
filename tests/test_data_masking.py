"""Maskers: statistics over >= 100k tokens, units never split, specials never masked, SBO data."""
from __future__ import annotations

import numpy as np
import pytest

from berts.data.masking import (
    MASKERS,
    MASKINGS,
    budget,
    mask_batch,
    mask_spans,
    random_tokens,
    span_length_probs,
)

V, PAD, UNK, CLS, SEP, MASK = 1000, 0, 1, 2, 3, 4
SPECIALS = np.array([PAD, UNK, CLS, SEP, MASK])


def make_batch(n_rows=1600, width=128, seed=0, unit_len=(1, 4)):
    """[CLS] A [SEP] B [SEP] + padding; words of 1-3 pieces; units (entities) of 1-4 tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, V, size=(n_rows, width))
    lengths = np.where(rng.random(n_rows) < 0.2, rng.integers(8, width, n_rows), width)
    word_starts = rng.random((n_rows, width)) < 0.7
    unit_starts = np.zeros((n_rows, width), dtype=bool)
    for r in range(n_rows):
        k = 0
        while k < width:
            unit_starts[r, k] = True
            k += rng.integers(*unit_len, endpoint=True)
    cols = np.arange(width)[None, :]
    b = rng.integers(2, lengths - 2)
    ids[:, 0] = CLS
    ids[np.arange(n_rows), b] = SEP
    ids[np.arange(n_rows), lengths - 1] = SEP
    ids[cols >= lengths[:, None]] = PAD
    return ids, lengths, word_starts, unit_starts


def units_of(starts_row, cand_row):
    """(begin, end) of units as the maskers see them: starts, cut at non-candidates."""
    s = starts_row | ~cand_row
    s[1:] |= ~cand_row[:-1]
    s[0] = True
    begin = np.flatnonzero(s)
    end = np.append(begin[1:], len(s))
    keep = cand_row[begin]
    return begin[keep], end[keep]


def run(masking, ids, lengths, word_starts, unit_starts, seed=1, max_predictions=20, **kw):
    starts = unit_starts if masking == "entity" else word_starts
    rng = np.random.default_rng(seed)
    return mask_batch(ids, lengths, starts, rng, masking=masking, vocab_size=V, mask_id=MASK,
                      special_ids=SPECIALS, max_predictions=max_predictions, sbo=True, **kw)


@pytest.fixture(scope="module")
def batch():
    return make_batch()


@pytest.mark.parametrize("masking", MASKINGS)
def test_rates_specials_and_units(masking, batch):
    ids, lengths, word_starts, unit_starts = batch
    masked, pos, labels, info = run(masking, *batch)
    n_rows, width = ids.shape
    cand = (np.arange(width)[None, :] < lengths[:, None]) & ~np.isin(ids, SPECIALS)
    assert cand.sum() > 100_000

    # masking rate 15% +- 1 point, at most max_predictions a row, specials and padding never
    assert abs(len(pos) / cand.sum() - 0.15) < 0.01
    assert np.bincount(pos // width, minlength=n_rows).max() <= 20
    assert cand.reshape(-1)[pos].all()
    assert np.all(np.diff(pos) > 0)  # sorted, unique
    assert np.array_equal(labels, ids.reshape(-1)[pos])

    # 80% [MASK] / 10% random / 10% kept, +- 2 points; nothing else changed
    got = masked.reshape(-1)[pos]
    is_mask, kept = got == MASK, got == labels
    rand = ~is_mask & ~kept
    assert abs(is_mask.mean() - 0.8) < 0.02 and abs(kept.mean() - 0.1) < 0.02 and abs(rand.mean() - 0.1) < 0.02
    assert not np.isin(got[rand], SPECIALS).any()
    other = np.ones(ids.size, dtype=bool)
    other[pos] = False
    assert np.array_equal(masked.reshape(-1)[other], ids.reshape(-1)[other])

    # units (words; entity units for entity masking) are never split, and take one 80/10/10 choice
    starts = unit_starts if masking == "entity" else word_starts
    chosen = np.zeros(ids.size, dtype=bool)
    chosen[pos] = True
    chosen = chosen.reshape(n_rows, width)
    mask_tok = (masked == MASK) & chosen
    split = same_choice = 0
    for r in range(n_rows):
        for b0, e0 in zip(*units_of(starts[r] if masking != "token" else np.ones(width, bool), cand[r])):
            c = chosen[r, b0:e0]
            split += c.any() and not c.all()
            m = mask_tok[r, b0:e0]
            same_choice += c.all() and m.any() and not m.all()
    assert split == 0 and same_choice == 0

    # SBO inputs: the tokens just outside each masked token's unit/span, and its place in it
    left, right, rel = info.T
    assert np.all(left < pos) and np.all(pos < right) and np.all(right // width == pos // width)
    assert np.all((rel >= 0) & (rel <= 9))
    assert np.all(rel == np.minimum(pos - left - 1, 9))
    assert chosen.reshape(-1)[left + 1].all() and chosen.reshape(-1)[right - 1].all()


def test_span_lengths_follow_the_clipped_geometric():
    probs = span_length_probs(0.2, 10)
    mean = float(probs @ np.arange(1, 11))
    assert abs(mean - 3.8) < 0.01  # SpanBERT's "mean 3.8"
    for width, max_pred in ((128, 20), (512, 80)):
        ids, lengths, word_starts, _ = make_batch(n_rows=200_000 // width + 200, width=width, seed=4)
        lengths[:] = width
        ids[:, -1] = SEP
        ids[ids == PAD] = 7
        drawn, realized, tokens = [], [], 0
        rng = np.random.default_rng(5)
        for r in range(len(ids)):
            out = mask_spans(ids[r], word_starts[r], rng, vocab_size=V, mask_id=MASK, special_ids=SPECIALS,
                             max_predictions=max_pred, return_spans=True, drawn=drawn)
            tokens += width
            spans = {(int(a), int(b)) for a, b, _ in out[3]}
            starts = word_starts[r] | np.isin(ids[r], SPECIALS)
            realized += [int(starts[a + 1:b].sum()) for a, b in spans]
        assert tokens >= 100_000
        assert max(realized) <= 10
        # the lengths drawn, in whole words
        assert abs(np.mean(drawn) - mean) < 0.3
        if width == 512:  # spans as masked: the 15% budget cuts the last span of a sequence
            assert abs(np.mean(realized) - mean) < 0.3
        else:  # with 20 predictions a row most rows end on a cut span (mean about 3.1)
            assert 2.8 < np.mean(realized) < mean


def test_ngram_lengths():
    ids, lengths, word_starts, unit_starts = make_batch(n_rows=900, seed=6)
    _, pos, _, info = run("ngram", ids, lengths, word_starts, unit_starts, seed=2)
    width = ids.shape[1]
    spans = {(int(a), int(b)) for a, b, _ in info}
    starts = (word_starts | np.isin(ids, SPECIALS)).reshape(-1)
    n = np.array([starts[a + 1:b].sum() for a, b in spans])
    counts = np.bincount(n, minlength=4)[1:]
    assert n.max() <= 3 and counts[0] > counts[1] > counts[2] > 0  # P(n) ∝ 1/n, shortened to fit
    assert abs(len(pos) / ((np.arange(width) < lengths[:, None]) & ~np.isin(ids, SPECIALS)).sum() - 0.15) < 0.01


def test_budget_and_random_tokens():
    assert budget(0, 0.15, 20) == 0
    assert budget(3, 0.15, 20) == 1
    assert budget(125, 0.15, 20) == 19
    assert budget(500, 0.15, 20) == 20
    assert list(budget(np.array([0, 10, 125]), 0.15, 20)) == [0, 2, 19]
    r = random_tokens(np.random.default_rng(0), 50_000, 12, np.array([0, 1, 2, 3, 4]))
    assert set(np.unique(r).tolist()) == set(range(5, 12))


@pytest.mark.parametrize("masking", MASKINGS)
def test_pure_functions_of_their_inputs(masking):
    tokens = np.array([CLS, 10, 11, 12, 13, 14, SEP, 15, 16, 17, 18, SEP])
    starts = np.array([1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1], dtype=bool)
    fn = MASKERS[masking]
    kw = dict(vocab_size=V, mask_id=MASK, special_ids=[PAD, UNK, CLS, SEP, MASK], mask_prob=0.3)
    a = fn(tokens, starts, np.random.default_rng(3), **kw)
    b = fn(tokens, starts, np.random.default_rng(3), **kw)
    assert len(a) == 3 and all(np.array_equal(x, y) for x, y in zip(a, b))
    masked, positions, labels = a
    assert masked.shape == tokens.shape and len(positions) == len(labels) >= 1
    assert np.array_equal(tokens[positions], labels)
    assert not np.isin(positions, [0, 6, 11]).any()
    assert tokens.tolist() == [CLS, 10, 11, 12, 13, 14, SEP, 15, 16, 17, 18, SEP]  # input untouched
    with_spans = fn(tokens, starts, np.random.default_rng(3), return_spans=True, **kw)
    assert len(with_spans) == 4 and with_spans[3].shape == (len(positions), 3)
