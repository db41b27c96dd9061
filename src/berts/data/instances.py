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

Differences from Google's script: the target length is drawn again for every instance (Google
draws it once per document), and the random document of ``nsp`` is drawn among the others
directly (so it is never the same document). Everything random comes from the ``rng`` passed in.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

OBJECTIVES = ("nsp", "sop", "none")


class Instance(NamedTuple):
    tokens: list[int]  # [CLS] A [SEP] (B [SEP])
    bits: list[int] | None  # per-token unit bits (see segment.py), or None
    b_start: int  # index of B's first token; len(tokens) when there is no B
    label: int  # nsp/sop: 0 = in order / real next, 1 = swapped / random; none: -1


def num_special(objective: str) -> int:
    return 2 if objective == "none" else 3


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
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "nsp" and len(documents) < 2:
        raise ValueError("nsp needs at least two documents in a pool")
    maker = _packed if objective == "none" else _paired
    out: list[Instance] = []
    for _ in range(dupe_factor):
        for index in range(len(documents)):
            maker(documents, bits, index, rng, out, objective=objective, max_seq_length=max_seq_length,
                  short_seq_prob=short_seq_prob, cls_id=cls_id, sep_id=sep_id, continuation=continuation)
    if shuffle:
        rng.shuffle(out)
    return out


def _target(rng: random.Random, max_num_tokens: int, short_seq_prob: float) -> int:
    if short_seq_prob > 0 and rng.random() < short_seq_prob:
        return rng.randint(2, max_num_tokens)
    return max_num_tokens


def _packed(documents, bits, index, rng, out, *, max_seq_length, short_seq_prob, cls_id, sep_id, **_):
    """objective none: [CLS] whole sentences [SEP]."""
    max_num_tokens = max_seq_length - 2
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    target = _target(rng, max_num_tokens, short_seq_prob)
    cur: list[int] = []
    cur_bits: list[int] = []

    def emit(tokens, tbits):
        n = len(tokens) + 2
        out.append(Instance([cls_id, *tokens, sep_id], [3, *tbits, 3] if dbits is not None else None, n, -1))

    for j, sentence in enumerate(doc):
        if cur and len(cur) + len(sentence) > target:
            emit(cur, cur_bits)
            cur, cur_bits = [], []
            target = _target(rng, max_num_tokens, short_seq_prob)
        cur.extend(sentence)
        if dbits is not None:
            cur_bits.extend(dbits[j])
        while len(cur) > max_num_tokens:  # a sentence longer than a sequence
            emit(cur[:max_num_tokens], cur_bits[:max_num_tokens])
            cur, cur_bits = cur[max_num_tokens:], cur_bits[max_num_tokens:]
    if cur:
        emit(cur, cur_bits)


def _paired(documents, bits, index, rng, out, *, objective, max_seq_length, short_seq_prob, cls_id, sep_id,
            continuation):
    """objectives nsp and sop: [CLS] A [SEP] B [SEP]."""
    max_num_tokens = max_seq_length - 3
    doc = documents[index]
    dbits = bits[index] if bits is not None else None
    target = _target(rng, max_num_tokens, short_seq_prob)
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
            target = _target(rng, max_num_tokens, short_seq_prob)
        i += 1


def _cut_sentence(tokens, tbits, continuation, rng) -> int | None:
    """A random word start inside a sentence (not its first token), or None if it has one word."""
    if tbits is not None:
        starts = [k for k in range(1, len(tokens)) if tbits[k] & 1]
    elif continuation is not None:
        starts = [k for k in range(1, len(tokens)) if not continuation[tokens[k]]]
    else:
        starts = list(range(1, len(tokens)))
    return rng.choice(starts) if starts else None
