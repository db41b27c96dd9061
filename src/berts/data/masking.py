"""Maskers for masked-language-model pretraining: pure functions of (tokens, boundaries, rng).

Every masker chooses *units* of the sequence until ``mask_prob`` of its maskable tokens are
chosen (rounded, at least 1, at most ``max_predictions``; a unit that would overshoot is passed
over), then replaces each chosen unit, as one, by [MASK] (80%), random tokens (10%) or itself
(10%). Special tokens (and padding, which the caller cuts off) are never chosen; units never
cross them.

===========  ====================================================  =========================
masking      unit                                                  boundaries it reads
===========  ====================================================  =========================
``token``    one token (BERT)                                      none
``wwm``      one whole word (Google's whole-word masking)          word starts
``ngram``    1..3 consecutive whole words, P(n) ∝ 1/n (ALBERT)      word starts
``span``     a span of whole words, length ~ Geometric(0.2)        word starts
             clipped at 10 (SpanBERT)
``entity``   a knowledge unit (lexicon entity or segmenter phrase,  unit starts
             else one token) (ERNIE 1.0)
===========  ====================================================  =========================

Word starts are a bool array (True where a token starts a word: not a ``##`` piece, or a
segmenter word start). Each masker returns ``(masked_tokens, positions, labels)``, positions
sorted; with ``return_spans=True`` a fourth array [P, 3] gives, for each position, the
positions of the tokens just before and just after its unit and its 0-based place in the unit
(capped at ``max_span - 1``): the span boundary objective's inputs.

:func:`mask_batch` masks a padded batch: token, wwm and entity masking are vectorised over the
whole batch; n-gram and span masking choose their units row by row. Its ``rng`` is one generator
for the batch or one per row; with one per row, a row's mask is a pure function of its tokens and
its generator: the same whatever the rest of the batch and the padded width (the row's random
numbers come from its own generator, as many as its real tokens or units need).
"""
from __future__ import annotations

import numpy as np

from berts.objectives.registry import names
from berts.model.attention import MODES, UNILM_MIX

MASKINGS = ("token", "wwm", "ngram", "span", "entity")
SBO_MAX_SPAN = 10


# ----------------------------------------------------------------------------- helpers
def budget(n_candidates, mask_prob: float, max_predictions: int):
    """Tokens to predict: round(n * p), at least 1, at most max_predictions (0 when n is 0).
    Works on an int or an array of counts."""
    n = np.asarray(n_candidates, dtype=np.int64)
    limit = np.minimum(np.minimum(max_predictions, n), np.maximum(1, np.floor(n * mask_prob + 0.5).astype(np.int64)))
    limit = np.where(n > 0, limit, 0)
    return int(limit) if limit.ndim == 0 else limit


def random_tokens(rng, n, vocab_size: int, special_ids: np.ndarray) -> np.ndarray:
    """n ids drawn uniformly from the vocabulary without the special tokens (``rng`` and ``n``
    may also be one generator and one count per row, see :func:`_draw`)."""
    specials = np.unique(np.asarray(special_ids, dtype=np.int64))
    specials = specials[(specials >= 0) & (specials < vocab_size)]
    high = vocab_size - len(specials)
    r = _draw(rng, n, lambda g, k: g.integers(0, high, size=k))
    for s in specials:  # ascending: shift past each special id
        r += r >= s
    return r


def _draw(rng, counts, fn) -> np.ndarray:
    """``fn(generator, k)`` draws k numbers. One generator: ``sum(counts)`` numbers from it; a
    sequence of generators (one per row): ``counts[r]`` from row r's, concatenated in row order."""
    if isinstance(rng, np.random.Generator):
        return fn(rng, int(np.sum(counts)))
    counts = np.asarray(counts).tolist()
    parts = [fn(g, k) for g, k in zip(rng, counts) if k]
    return np.concatenate(parts) if parts else fn(np.random.default_rng(0), 0)  # empty, of fn's dtype


def _uniform(rng, counts) -> np.ndarray:
    return _draw(rng, counts, lambda g, k: g.random(k))


def _unit_bounds(starts: np.ndarray | None, cand: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat (begin, end) of the units made of candidate tokens in a [B, W] batch; a unit starts
    at a start, and a non-candidate token (special, padding) is never inside one."""
    cut = ~cand
    s = np.ones(cand.shape, dtype=bool) if starts is None else (starts | cut)
    s[:, 1:] |= cut[:, :-1]
    s[:, 0] = True
    begin = np.flatnonzero(s)
    end = np.append(begin[1:], s.size)
    keep = cand.reshape(-1)[begin]
    return begin[keep], end[keep]


def _greedy(row: np.ndarray, size: np.ndarray, limits: np.ndarray, rng) -> np.ndarray:
    """Units taken in random order, per row, while they fit the row's limit; a unit too long
    for what is left is passed over. Vectorised: each pass takes, in order, the units that fit
    until the first that does not; passes repeat on what is left (the same result as the loop)."""
    n = len(row)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    noise = _uniform(rng, np.bincount(row, minlength=len(limits)))  # rows are sorted
    order = np.argsort(row + 0.5 * noise, kind="stable")  # by row, random within a row
    row_o, size_o = row[order], size[order]
    first = np.searchsorted(row_o, np.arange(len(limits)))
    taken = np.zeros(n, dtype=bool)
    gap = limits.astype(np.int64).copy()
    while True:
        avail = ~taken & (size_o <= gap[row_o])
        if not avail.any():
            break
        cs = np.cumsum(np.where(avail, size_o, 0))
        base = np.where(first > 0, cs[np.maximum(first - 1, 0)], 0)
        take = avail & (cs - base[row_o] <= gap[row_o])
        if not take.any():
            break
        taken |= take
        gap -= np.bincount(row_o[take], weights=size_o[take], minlength=len(limits)).astype(np.int64)
    return np.sort(order[taken])


def _cdf(probs: np.ndarray) -> np.ndarray:
    c = np.cumsum(probs)
    c[-1] = 1.0
    return c


def _ngram_probs(max_ngram: int) -> np.ndarray:
    p = 1.0 / np.arange(1, max_ngram + 1)
    return p / p.sum()


def span_length_probs(p: float = 0.2, max_span: int = SBO_MAX_SPAN) -> np.ndarray:
    """SpanBERT's span lengths in words: Geometric(p) clipped (renormalised) at max_span."""
    n = np.arange(1, max_span + 1)
    probs = p * (1 - p) ** (n - 1)
    return probs / probs.sum()


# ----------------------------------------------------------------------------- per-row choosers
def _row_words(starts: np.ndarray | None, cand: np.ndarray):
    begin, end = _unit_bounds(None if starts is None else starts[None, :], cand[None, :])
    joined = np.append(end[:-1] == begin[1:], False)  # word k and k+1 are adjacent
    return begin.tolist(), end.tolist(), joined.tolist()


def _choose_ngrams(cand, starts, rng, limit, *, max_ngram=3, **_):
    """ALBERT: from each word in random order, an n-gram of n ~ 1/n words, shortened until it
    fits the budget and covers no chosen word."""
    b, e, joined = _row_words(starts, cand)
    n_words = len(b)
    if n_words == 0:
        return []
    ns = (np.searchsorted(_cdf(_ngram_probs(max_ngram)), rng.random(n_words), side="right") + 1).tolist()
    covered = [False] * n_words
    spans, total = [], 0
    for w in rng.permutation(n_words).tolist():
        if total >= limit:
            break
        if covered[w]:
            continue
        n = 1
        while n < ns[w] and joined[w + n - 1] and not covered[w + n]:
            n += 1
        while n > 0 and total + e[w + n - 1] - b[w] > limit:
            n -= 1
        if n == 0:
            continue
        for k in range(w, w + n):
            covered[k] = True
        spans.append((b[w], e[w + n - 1]))
        total += e[w + n - 1] - b[w]
    return spans


def _choose_spans(cand, starts, rng, limit, *, geometric_p=0.2, max_span=SBO_MAX_SPAN, drawn=None, tries=8, **_):
    """SpanBERT: a length ℓ in words, then a start word drawn at random (up to ``tries`` times)
    until ℓ whole words from there are free (no chosen word, no special token in between);
    failing that, the longest free run found. A span that would overshoot the budget loses
    words at its end, as SpanBERT's does (so the last span of a sequence is often shorter)."""
    b, e, joined = _row_words(starts, cand)
    n_words = len(b)
    if n_words == 0:
        return []
    draws = 2 * limit + 4
    lengths = (np.searchsorted(_cdf(span_length_probs(geometric_p, max_span)), rng.random(draws), side="right")
               + 1).tolist()
    anchors = rng.integers(0, n_words, size=(draws, tries)).tolist()
    covered = [False] * n_words
    spans, total = [], 0
    for want, tried in zip(lengths, anchors):
        if total >= limit:
            break
        w, n = -1, 0
        for a in tried:
            if covered[a]:
                continue
            k = 1
            while k < want and joined[a + k - 1] and not covered[a + k]:
                k += 1
            if k > n:
                w, n = a, k
                if k == want:
                    break
        while n > 0 and total + e[w + n - 1] - b[w] > limit:
            n -= 1
        if n == 0:
            continue
        if drawn is not None:
            drawn.append(want)
        for k in range(w, w + n):
            covered[k] = True
        spans.append((b[w], e[w + n - 1]))
        total += e[w + n - 1] - b[w]
    return spans


_ROW_CHOOSERS = {"ngram": _choose_ngrams, "span": _choose_spans}


# ----------------------------------------------------------------------------- batches
def mask_batch(input_ids: np.ndarray, lengths, starts: np.ndarray | None, rng, *,
               masking: str, vocab_size: int, mask_id: int, special_ids, mask_prob: float = 0.15,
               max_predictions: int = 20, sbo: bool = False, max_span: int = SBO_MAX_SPAN, **options):
    """Mask a padded batch [B, W] (tokens at and beyond ``lengths`` are padding).

    ``starts`` [B, W] bool: word starts (wwm, ngram, span) or unit starts (entity); ignored by
    token masking. Returns ``(masked [B, W], positions [N], labels [N], sbo_info)`` with flat
    row-major positions into [B*W], sorted; ``sbo_info`` (with ``sbo``) is [N, 3]: flat positions
    of the tokens before and after each position's unit and its place in the unit (< max_span).

    ``rng``: a ``np.random.Generator`` for the whole batch, or a sequence of them, one per row;
    then each row draws only from its own (its real tokens' scores, its units' order and
    80/10/10 choices, its random tokens), so its mask does not depend on the other rows or on W.
    """
    if masking not in MASKINGS:
        raise ValueError(f"masking must be one of {MASKINGS}, got {masking!r}")
    input_ids = np.asarray(input_ids)
    special_ids = np.asarray(list(special_ids) if not isinstance(special_ids, np.ndarray) else special_ids,
                             dtype=np.int64)
    bsz, width = input_ids.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    per_row = not isinstance(rng, np.random.Generator)
    if per_row and len(rng) != bsz:
        raise ValueError(f"{len(rng)} generators for {bsz} rows")
    real = np.arange(width)[None, :] < lengths[:, None]
    cand = real & ~np.isin(input_ids, special_ids)
    limits = budget(cand.sum(axis=1), mask_prob, max_predictions)
    if masking in _ROW_CHOOSERS:
        if starts is None:
            raise ValueError(f"{masking} masking needs word starts")
        chooser = _ROW_CHOOSERS[masking]
        spans = []
        for r in range(bsz):
            if limits[r]:
                spans.extend((r * width + s, r * width + t)
                             for s, t in chooser(cand[r], starts[r], rng[r] if per_row else rng, int(limits[r]),
                                                 **options))
        spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
        order = np.argsort(spans[:, 0], kind="stable")
        begin, end = spans[order, 0], spans[order, 1]
    elif masking == "token":  # per row, the `limit` candidates with the smallest random scores
        if per_row:  # a score for each real token, from the row's generator
            scores = np.full((bsz, width), 2.0)
            scores[real] = _uniform(rng, lengths)
        else:
            scores = rng.random((bsz, width))
        scores = np.where(cand, scores, 2.0)
        rank = np.empty((bsz, width), dtype=np.int64)
        np.put_along_axis(rank, np.argsort(scores, axis=1), np.arange(width)[None, :].repeat(bsz, 0), axis=1)
        begin = np.flatnonzero(rank < limits[:, None])
        end = begin + 1
    else:
        if starts is None:
            raise ValueError(f"{masking} masking needs {'unit' if masking == 'entity' else 'word'} starts")
        begin, end = _unit_bounds(np.asarray(starts, dtype=bool), cand)
        chosen = _greedy(begin // width, end - begin, limits, rng)
        begin, end = begin[chosen], end[chosen]
    return _apply(input_ids, begin, end, rng, vocab_size=vocab_size, mask_id=mask_id, special_ids=special_ids,
                  sbo=sbo, max_span=max_span)


def _apply(input_ids, begin, end, rng, *, vocab_size, mask_id, special_ids, sbo, max_span):
    """Replace each chosen unit (flat, sorted, disjoint [begin, end)) as a whole: 80% [MASK],
    10% random tokens, 10% unchanged."""
    width = input_ids.shape[1]
    sizes = end - begin
    unit_of = np.repeat(np.arange(len(begin)), sizes)
    positions = np.arange(int(sizes.sum()), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes) + begin[unit_of]
    flat = input_ids.reshape(-1)
    labels = flat[positions].astype(np.int64)
    masked = input_ids.copy()
    mflat = masked.reshape(-1)
    bsz = input_ids.shape[0]
    action = _uniform(rng, np.bincount(begin // width, minlength=bsz))[unit_of]  # units are sorted
    mflat[positions[action < 0.8]] = mask_id
    rand = positions[(action >= 0.8) & (action < 0.9)]
    if len(rand):
        mflat[rand] = random_tokens(rng, np.bincount(rand // width, minlength=bsz), vocab_size, special_ids)
    info = None
    if sbo:
        row0 = (positions // width) * width
        info = np.stack([np.maximum(begin[unit_of] - 1, row0), np.minimum(end[unit_of], row0 + width - 1),
                         np.minimum(positions - begin[unit_of], max_span - 1)], axis=1)
    return masked, positions, labels, info


# ----------------------------------------------------------------------------- public maskers
def _one(masking, tokens, starts, rng, *, return_spans, **kw):
    tokens = np.asarray(tokens)
    st = None if starts is None else np.asarray(starts, dtype=bool)[None, :]
    masked, positions, labels, info = mask_batch(tokens[None, :], [len(tokens)], st, rng, masking=masking,
                                                 sbo=return_spans, **kw)
    out = (masked[0], positions, labels)
    return (*out, info) if return_spans else out


def mask_tokens(tokens, word_starts, rng, *, vocab_size, mask_id, special_ids, mask_prob=0.15,
                max_predictions=20, return_spans=False):
    """BERT: single tokens (``word_starts`` is ignored; pass None)."""
    return _one("token", tokens, None, rng, vocab_size=vocab_size, mask_id=mask_id, special_ids=special_ids,
                mask_prob=mask_prob, max_predictions=max_predictions, return_spans=return_spans)


def mask_whole_words(tokens, word_starts, rng, *, vocab_size, mask_id, special_ids, mask_prob=0.15,
                     max_predictions=20, return_spans=False):
    """Whole-word masking: all pieces of a word together, 80/10/10 decided per word."""
    return _one("wwm", tokens, word_starts, rng, vocab_size=vocab_size, mask_id=mask_id, special_ids=special_ids,
                mask_prob=mask_prob, max_predictions=max_predictions, return_spans=return_spans)


def mask_ngrams(tokens, word_starts, rng, *, vocab_size, mask_id, special_ids, mask_prob=0.15,
                max_predictions=20, return_spans=False, max_ngram=3):
    """ALBERT's n-gram masking: n whole words, n <= max_ngram with P(n) ∝ 1/n."""
    return _one("ngram", tokens, word_starts, rng, vocab_size=vocab_size, mask_id=mask_id, special_ids=special_ids,
                mask_prob=mask_prob, max_predictions=max_predictions, return_spans=return_spans, max_ngram=max_ngram)


def mask_spans(tokens, word_starts, rng, *, vocab_size, mask_id, special_ids, mask_prob=0.15,
               max_predictions=20, return_spans=False, geometric_p=0.2, max_span=SBO_MAX_SPAN, drawn=None):
    """SpanBERT's span masking (``drawn``, a list, collects the sampled lengths in words)."""
    return _one("span", tokens, word_starts, rng, vocab_size=vocab_size, mask_id=mask_id, special_ids=special_ids,
                mask_prob=mask_prob, max_predictions=max_predictions, return_spans=return_spans,
                geometric_p=geometric_p, max_span=max_span, drawn=drawn)


def mask_entities(tokens, unit_starts, rng, *, vocab_size, mask_id, special_ids, mask_prob=0.15,
                  max_predictions=20, return_spans=False):
    """ERNIE 1.0 knowledge masking: whole entities/phrases and, between them, single tokens."""
    return _one("entity", tokens, unit_starts, rng, vocab_size=vocab_size, mask_id=mask_id, special_ids=special_ids,
                mask_prob=mask_prob, max_predictions=max_predictions, return_spans=return_spans)


MASKERS = {"token": mask_tokens, "wwm": mask_whole_words, "ngram": mask_ngrams, "span": mask_spans,
           "entity": mask_entities}


# ------------------------------------------------------------------ UniLM's mode per batch
LM_OBJECTIVES = names("lm")  # the registry's objectives that set an attention mode: unilm, clm, seq2seq
MODE_STREAM = 0x4D4F4445  # "MODE": keeps the mode's generator apart from the examples' ones


def draw_mode(objective: str, seed: int, epoch: int, step: int) -> int:
    """The attention mode (an index into berts.model.attention.MODES) of batch ``step`` of ``epoch``.

    ``unilm`` draws it with UniLM's mix (UNILM_MIX: 1/3 bidirectional, 1/6 left-to-right, 1/6
    right-to-left, 1/3 seq2seq) from a generator seeded with (seed, epoch, step), as the masks
    are seeded: a pure function of those numbers, so a resumed run and every DDP rank (whose
    parts of one global batch share its step) draw the same mode. ``clm`` is always
    left-to-right, ``seq2seq`` always seq2seq.
    """

    if objective == "clm":
        return MODES.index("left-to-right")
    if objective == "seq2seq":
        return MODES.index("seq2seq")
    if objective != "unilm":
        raise ValueError(f"objective must be one of {', '.join(LM_OBJECTIVES)}, got {objective!r}")
    rng = np.random.default_rng([int(seed), int(epoch), int(step), MODE_STREAM])
    return int(rng.choice(len(MODES), p=np.asarray(UNILM_MIX)))


def next_token_positions(lengths, b_start, width: int, target_only: bool) -> np.ndarray:
    """Flat positions into [B*W] whose next token is a target: position i predicts i + 1 where
    i + 1 is real (and, ``target_only``, in segment B: at or after ``b_start``). Sorted; the
    same rule as berts.objectives.lm.next_token_targets."""
    cols = np.arange(width)[None, :]
    nxt = cols + 1 < np.asarray(lengths)[:, None]
    if target_only:
        nxt &= cols + 1 >= np.asarray(b_start)[:, None]
    return np.flatnonzero(nxt)


# ----------------------------------------------------------------------------- word structure
# StructBERT's word structural objective: the 5 orders of a trigram that are not the identity
# (shown[j] = original[perm[j]])
TRIGRAM_SHUFFLES = np.array([(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)], dtype=np.int64)


def shuffle_trigrams(input_ids: np.ndarray, candidates: np.ndarray, rng, rate: float = 0.05):
    """StructBERT's word structural objective on a [B, W] batch, in place on ``input_ids``.

    ``candidates`` [B, W] bool: the tokens a trigram may use (real, not special, not an MLM
    target). Each row shuffles t non-overlapping trigrams of 3 consecutive candidates, t the
    stochastic rounding of ``rate`` x (its candidates / 3): floor(x + u), u uniform, so that on
    average ``rate`` of the row's trigrams (and of its candidate tokens) are shuffled, short rows
    too; a row with fewer places takes what fits. The trigrams are the first t of the row's
    possible starts taken in a random order that do not overlap one already taken; each is
    reordered by a uniform non-identity permutation. A trigram never crosses a special token
    ([SEP]), a masked token or the end, as those are not candidates.

    ``rng``: one generator, or one per row (a row's shuffle then depends on its own tokens and
    generator only). Returns (flat positions [M] sorted, original ids there [M]).
    """
    rows = [rng] * len(input_ids) if isinstance(rng, np.random.Generator) else rng
    width = input_ids.shape[1]
    positions, labels = [], []
    for r, g in enumerate(rows):
        c = candidates[r]
        ok = c[:-2] & c[1:-1] & c[2:] if width >= 3 else np.zeros(0, bool)
        starts = np.flatnonzero(ok)
        want = int(np.floor(rate * c.sum() / 3 + g.random()))
        if want == 0 or len(starts) == 0:
            continue
        taken: list[int] = []
        used = np.zeros(width + 2, dtype=bool)
        for s in starts[g.permutation(len(starts))]:
            if not used[s:s + 3].any():
                used[s:s + 3] = True
                taken.append(int(s))
                if len(taken) == want:
                    break
        taken.sort()
        perms = TRIGRAM_SHUFFLES[g.integers(0, len(TRIGRAM_SHUFFLES), size=len(taken))]
        for s, perm in zip(taken, perms):
            positions.append(r * width + s + np.arange(3))
            original = input_ids[r, s:s + 3].copy()
            labels.append(original)
            input_ids[r, s:s + 3] = original[perm]
    if not positions:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(positions).astype(np.int64), np.concatenate(labels).astype(np.int64)
