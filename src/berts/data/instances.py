"""Pretraining instances from tokenized documents: Google BERT's algorithm.

A document is a list of sentences, each a list of token ids. Sentences are gathered into a
chunk until it reaches a target length (``max_seq_length`` minus the specials; with probability
``short_seq_prob`` a random length from 2, to match the short inputs of fine-tuning). The chunk is
cut at a sentence boundary into segments A and B, and the longer of the two is truncated from a
random end, one token at a time, until the pair fits. The sentence-pair objective decides B:

* ``nsp``: 50% the rest of the chunk (label 0), 50% a random stretch of *another* document of
  the same pool (label 1); the unused sentences of the chunk are put back, as Google does.
* ``sop`` (ALBERT): A and B are consecutive, swapped with probability 50% (label 1).

A chunk of a single sentence (a document's last, or one longer than the target) has no
sentence boundary to cut at: where A and B must be consecutive (sop; nsp's "real next" half)
they are cut inside the sentence, at a random word start. Google instead always takes a random
B there, which pushes the random-next rate well above 50% on short documents.
* ``none`` (RoBERTa, DOC-SENTENCES): one segment packed with whole sentences of the document;
  a sentence longer than the whole sequence is cut into pieces. Label -1.
* ``reorder`` (ERNIE 2.0 sentence reordering): a chunk (gathered as above, up to the target
  length) is cut into k pieces, k uniform in 1..3 (at sentence boundaries where there are enough,
  else also at word starts; a chunk of fewer than k words takes fewer pieces), and the pieces are
  shown in a uniformly random order as ``[CLS] p1 [SEP] p2 [SEP] p3 [SEP]``, one segment (token
  type 0). Label: the permutation's index in ``REORDER_PERMUTATIONS`` (9 classes: k = 1, then
  the 2 orders of k = 2, then the 6 of k = 3, each in itertools.permutations order). The [SEP]s
  mark the pieces: the task is to order given pieces, as ERNIE 2.0's segments; without them the
  model would first have to find the cuts (and k), another task. So k is visible: a model that
  only counts the [SEP]s and guesses reaches 1/3 (1 + 1/2 + 1/6) = 5/9, the chance to beat.
* ``distance`` (ERNIE 2.0 sentence distance): ``[CLS] A [SEP] B [SEP]`` with label 0 = B follows
  A (the rest of the chunk, as nsp's real next), 1 = B is a stretch of A's document that does not
  touch A (at least one sentence between them, before or after A), 2 = B from another document
  of the pool (as nsp's random next). The class is drawn uniformly; a class the chunk cannot have
  (1 in a document too short, 0 for a one-word chunk) is replaced by one drawn uniformly among
  the possible ones and owed: the next chunks of the pool that can have it take it instead of
  their draw, until the debt is paid. So the classes stay 1/3 each in expectation as long as the
  pool has enough long documents; a corpus of short documents still skews them, and
  ``meta.json``'s ``labels`` counts every class (``prepare`` prints the shares).

Each objective's maker is ``make_*(documents, bits, index, rng, out, **settings)``: it appends the
instances of document ``index`` to ``out``; which one an objective uses, with its number of labels
and specials, is its spec's (berts.objectives.registry). A new one (objectives/samedoc.py) uses
``target_length``, ``gather_sentences`` and ``truncate_pair`` from here.

Differences from Google's script: the target length is drawn again for every instance (Google
draws it once per document), and the random document of ``nsp`` is drawn among the others
directly (so it is never the same document). Everything random comes from the ``rng`` passed in.
"""
from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from berts.objectives.registry import get, sentence_names

# reorder's classes: the order the pieces are shown in (shown[j] = piece perm[j]), k = 1, 2, 3
REORDER_PERMUTATIONS: tuple[tuple[int, ...], ...] = tuple(
    p for k in (1, 2, 3) for p in itertools.permutations(range(k)))


# The sentence-level objectives (their maker, labels and specials) are the registry's
# (berts.objectives.registry, kind "sentence"); "none" is the one-segment layout, no objective.
def objectives() -> tuple[str, ...]:
    """What instances can be made for: the registry's sentence-level objectives and none."""
    return sentence_names()


def num_labels(objective: str) -> int:
    return 0 if objective == "none" else get(objective).num_labels


def num_special(objective: str) -> int:
    """Specials of the longest layout: [CLS] [SEP] (none), 3 for a pair, 4 for three pieces (reorder)."""
    return 2 if objective == "none" else get(objective).num_special


def maker(objective: str):
    """The function that makes ``objective``'s instances from one document (the spec's ``maker``)."""
    return make_packed if objective == "none" else get(objective).load("maker")


class Instance(NamedTuple):
    tokens: list[int]  # [CLS] A [SEP] (B [SEP])
    bits: list[int] | None  # per-token unit bits (see segment.py), or None
    b_start: int  # index of B's first token; len(tokens) when there is no B
    label: int  # nsp/sop: 0 = in order / real next, 1 = swapped / random; none: -1; reorder 0..8; distance 0..2


def truncate_pair(a, b, abits, bbits, max_num_tokens: int, rng: random.Random):
    """Google's truncate_seq_pair in closed form: the longer segment loses a token (B on ties)
    until the pair fits; each token comes from the front or the back with probability 1/2."""
    la, lb = len(a), len(b)
    excess = la + lb - max_num_tokens
    if excess <= 0:
        return a, b, abits, bbits
    if la > lb:
        ka, kb = min(excess, la - lb), 0
    else:
        ka, kb = 0, min(excess, lb - la)
    rest = excess - ka - kb
    kb += (rest + 1) // 2
    ka += rest // 2

    def cut(seq, bits, k):
        if k == 0:
            return seq, bits
        front = bin(rng.getrandbits(k)).count("1")  # Binomial(k, 1/2)
        end = len(seq) - (k - front)
        return seq[front:end], (bits[front:end] if bits is not None else None)

    a, abits = cut(a, abits, ka)
    b, bbits = cut(b, bbits, kb)
    return a, b, abits, bbits


def _concat(parts: Sequence[list[int]]) -> list[int]:
    out: list[int] = []
    for p in parts:
        out.extend(p)
    return out


def create_instances(documents: Sequence[Sequence[list[int]]], rng: random.Random, *, objective: str,
                     max_seq_length: int, short_seq_prob: float, cls_id: int, sep_id: int,
                     bits: Sequence[Sequence[list[int]]] | None = None,
                     continuation: np.ndarray | None = None, dupe_factor: int = 1,
                     shuffle: bool = True) -> list[Instance]:
    """Instances from a pool of documents (``dupe_factor`` passes), shuffled.

    ``bits`` parallels ``documents`` (per-token unit bits) when units are stored; the bits of
    [CLS]/[SEP] are 3 (a one-token word and unit). ``continuation`` (bool per id) finds word
    starts for cutting a single sentence under ``sop``.
    """
    if objective not in objectives():
        raise ValueError(f"objective must be one of {objectives()}, got {objective!r}")
    if objective != "none" and len(documents) < get(objective).min_documents:
        raise ValueError(f"{objective} needs at least {get(objective).min_documents} documents in a pool")
    make = maker(objective)
    out: list[Instance] = []
    owed: dict[int, int] = {}  # distance: classes drawn but impossible, given to later chunks
    for _ in range(dupe_factor):
        for index in range(len(documents)):
            make(documents, bits, index, rng, out, objective=objective, max_seq_length=max_seq_length,
                  short_seq_prob=short_seq_prob, cls_id=cls_id, sep_id=sep_id, continuation=continuation, owed=owed)
    if shuffle:
        rng.shuffle(out)
    return out


def target_length(rng: random.Random, max_num_tokens: int, short_seq_prob: float) -> int:
    """A chunk's target length: ``max_num_tokens``, or with probability ``short_seq_prob`` a random one from 2."""
    if short_seq_prob > 0 and rng.random() < short_seq_prob:
        return rng.randint(2, max_num_tokens)
    return max_num_tokens


def make_packed(documents, bits, index, rng, out, *, max_seq_length, short_seq_prob, cls_id, sep_id, **_):
    """objective none: [CLS] whole sentences [SEP]."""
    max_num_tokens = max_seq_length - 2
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    target = target_length(rng, max_num_tokens, short_seq_prob)
    cur: list[int] = []
    cur_bits: list[int] = []

    def emit(tokens, tbits):
        n = len(tokens) + 2
        out.append(Instance([cls_id, *tokens, sep_id], [3, *tbits, 3] if dbits is not None else None, n, -1))

    for j, sentence in enumerate(doc):
        if cur and len(cur) + len(sentence) > target:
            emit(cur, cur_bits)
            cur, cur_bits = [], []
            target = target_length(rng, max_num_tokens, short_seq_prob)
        cur.extend(sentence)
        if dbits is not None:
            cur_bits.extend(dbits[j])
        while len(cur) > max_num_tokens:  # a sentence longer than a sequence
            emit(cur[:max_num_tokens], cur_bits[:max_num_tokens])
            cur, cur_bits = cur[max_num_tokens:], cur_bits[max_num_tokens:]
    if cur:
        emit(cur, cur_bits)


def make_paired(documents, bits, index, rng, out, *, objective, max_seq_length, short_seq_prob, cls_id, sep_id,
            continuation, **_):
    """objectives nsp and sop: [CLS] A [SEP] B [SEP]."""
    max_num_tokens = max_seq_length - 3
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    target = target_length(rng, max_num_tokens, short_seq_prob)
    chunk: list[int] = []  # sentence indices
    length = 0
    i = 0
    while i < len(doc):
        chunk.append(i)
        length += len(doc[i])
        if i == len(doc) - 1 or length >= target:
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            a = _concat([doc[j] for j in chunk[:a_end]])
            abits = _concat([dbits[j] for j in chunk[:a_end]]) if dbits is not None else None
            b: list[int] = []
            bbits = [] if dbits is not None else None
            label = 0
            cut = None
            if len(chunk) == 1 and (objective == "sop" or rng.random() >= 0.5):
                cut = _cut_sentence(a, abits, continuation, rng)  # A and B from inside one sentence
            if cut is not None:
                b, bbits = a[cut:], (abits[cut:] if abits is not None else None)
                a, abits = a[:cut], (abits[:cut] if abits is not None else None)
                if objective == "sop" and rng.random() < 0.5:
                    label = 1
                    a, b, abits, bbits = b, a, bbits, abits
            elif objective == "nsp":
                if len(chunk) == 1 or rng.random() < 0.5:
                    label = 1
                    other = rng.randrange(len(documents) - 1)
                    other += other >= index
                    rdoc = documents[other]
                    rbits = bits[other] if bits is not None else None
                    want = target - len(a)
                    for j in range(rng.randrange(len(rdoc)), len(rdoc)):
                        b.extend(rdoc[j])
                        if rbits is not None:
                            bbits.extend(rbits[j])
                        if len(b) >= want:
                            break
                    i -= len(chunk) - a_end  # put the unused sentences back
                else:
                    b = _concat([doc[j] for j in chunk[a_end:]])
                    bbits = _concat([dbits[j] for j in chunk[a_end:]]) if dbits is not None else None
            else:  # sop
                if len(chunk) == 1:  # a one-word sentence alone: nothing to order
                    chunk, length = [], 0
                    i += 1
                    continue
                b = _concat([doc[j] for j in chunk[a_end:]])
                bbits = _concat([dbits[j] for j in chunk[a_end:]]) if dbits is not None else None
                if rng.random() < 0.5:
                    label = 1
                    a, b, abits, bbits = b, a, bbits, abits
            a, b, abits, bbits = truncate_pair(a, b, abits, bbits, max_num_tokens, rng)
            tokens = [cls_id, *a, sep_id, *b, sep_id]
            tbits = [3, *abits, 3, *bbits, 3] if dbits is not None else None
            out.append(Instance(tokens, tbits, len(a) + 2, label))
            chunk, length = [], 0
            target = target_length(rng, max_num_tokens, short_seq_prob)
        i += 1


def _word_starts(tokens, tbits, continuation) -> list[int]:
    """Word starts inside a token run (not its first token)."""
    if tbits is not None:
        return [k for k in range(1, len(tokens)) if tbits[k] & 1]
    if continuation is not None:
        return [k for k in range(1, len(tokens)) if not continuation[tokens[k]]]
    return list(range(1, len(tokens)))


def gather_sentences(doc, dbits, i, target):
    """Sentences from i on until ``target`` tokens are reached (at least one):
    (next index, tokens, bits or None, sentence boundaries inside the run)."""
    tokens: list[int] = []
    tbits: list[int] | None = [] if dbits is not None else None
    bounds: list[int] = []
    while i < len(doc) and (not tokens or len(tokens) < target):
        if tokens:
            bounds.append(len(tokens))
        tokens.extend(doc[i])
        if tbits is not None:
            tbits.extend(dbits[i])
        i += 1
    return i, tokens, tbits, bounds


def make_reordered(documents, bits, index, rng, out, *, max_seq_length, short_seq_prob, cls_id, sep_id, continuation,
               **_):
    """objective reorder: [CLS] p_perm[0] [SEP] ... [SEP] (see the module docstring)."""
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    i = 0
    while i < len(doc):
        k = rng.randint(1, 3)
        max_num_tokens = max_seq_length - 1 - k
        i, tokens, tbits, bounds = gather_sentences(doc, dbits, i, target_length(rng, max_num_tokens, short_seq_prob))
        tokens = tokens[:max_num_tokens]  # a long last sentence loses its end
        tbits = tbits[:max_num_tokens] if tbits is not None else None
        bounds = [b for b in bounds if b < len(tokens)]
        if len(bounds) >= k - 1:
            cuts = sorted(rng.sample(bounds, k - 1))
        else:  # too few sentence boundaries: all of them, and word starts for the rest
            starts = [s for s in _word_starts(tokens, tbits, continuation) if s not in set(bounds)]
            extra = rng.sample(starts, min(k - 1 - len(bounds), len(starts)))
            cuts = sorted(bounds + extra)
        edges = [0, *cuts, len(tokens)]
        pieces = [(edges[j], edges[j + 1]) for j in range(len(edges) - 1)]
        perm = tuple(rng.sample(range(len(pieces)), len(pieces)))  # uniform over the k! orders
        ids, ibits = [cls_id], [3]
        for p in perm:
            lo, hi = pieces[p]
            ids.extend(tokens[lo:hi])
            ids.append(sep_id)
            if tbits is not None:
                ibits.extend(tbits[lo:hi])
                ibits.append(3)
        out.append(Instance(ids, ibits if tbits is not None else None, len(ids), REORDER_PERMUTATIONS.index(perm)))


def make_distance(documents, bits, index, rng, out, *, max_seq_length, short_seq_prob, cls_id, sep_id, continuation,
              owed, **_):
    """objective distance: [CLS] A [SEP] B [SEP], label 0 adjacent / 1 same document / 2 other."""
    max_num_tokens = max_seq_length - 3
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    i = 0
    while i < len(doc):
        target = target_length(rng, max_num_tokens, short_seq_prob)
        first = i
        end, _, _, _ = gather_sentences(doc, None, i, target)
        chunk = list(range(first, end))
        a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
        a_last = chunk[a_end - 1]
        a = _concat([doc[j] for j in chunk[:a_end]])
        abits = _concat([dbits[j] for j in chunk[:a_end]]) if dbits is not None else None
        cut = None
        if len(chunk) == 1:  # B adjacent to a lone sentence: its second part, cut at a word start
            starts = _word_starts(a, abits, continuation)
            cut = rng.choice(starts) if starts else None
        # class 1: B starts >= 2 sentences after A's last, or ends >= 2 sentences before A's first
        far = [s for s in range(len(doc)) if s >= a_last + 2 or s <= first - 2]
        possible = [c for c, ok in ((0, len(chunk) >= 2 or cut is not None), (1, bool(far)), (2, True)) if ok]
        label = rng.randrange(3)
        if label not in possible:
            owed[label] = owed.get(label, 0) + 1
            label = rng.choice(possible)
        else:
            debt = [c for c in possible if owed.get(c) and c != label]
            if debt:
                label = debt[0]
                owed[label] -= 1
        want = target - len(a)
        b: list[int] = []
        bbits: list[int] | None = [] if dbits is not None else None

        def stretch(source, sbits, start, stop):
            for j in range(start, stop):
                b.extend(source[j])
                if sbits is not None:
                    bbits.extend(sbits[j])
                if len(b) >= want:
                    break

        if label == 0:
            if cut is not None:
                b, a = a[cut:], a[:cut]
                if abits is not None:
                    bbits, abits = abits[cut:], abits[:cut]
            else:
                stretch(doc, dbits, chunk[a_end], end)
            i = end
        else:
            if label == 1:
                s = rng.choice(far)
                stretch(doc, dbits, s, len(doc) if s > a_last else first - 1)
            else:
                other = rng.randrange(len(documents) - 1)
                other += other >= index
                rdoc = documents[other]
                stretch(rdoc, bits[other] if bits is not None else None, rng.randrange(len(rdoc)), len(rdoc))
            i = a_last + 1  # the rest of the chunk is put back
        a, b, abits, bbits = truncate_pair(a, b, abits, bbits, max_num_tokens, rng)
        tokens = [cls_id, *a, sep_id, *b, sep_id]
        tbits = [3, *abits, 3, *bbits, 3] if dbits is not None else None
        out.append(Instance(tokens, tbits, len(a) + 2, label))


def _cut_sentence(tokens, tbits, continuation, rng) -> int | None:
    """A random word start inside a sentence (not its first token), or None if it has one word."""
    if tbits is not None:
        starts = [k for k in range(1, len(tokens)) if tbits[k] & 1]
    elif continuation is not None:
        starts = [k for k in range(1, len(tokens)) if not continuation[tokens[k]]]
    else:
        starts = list(range(1, len(tokens)))
    return rng.choice(starts) if starts else None
