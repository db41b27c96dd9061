"""Word and knowledge-unit boundaries for whole-word, n-gram, span and entity masking.

English words need nothing stored: a word is a piece followed by its ``##`` continuations
(``Tokenizer.is_continuation``). Chinese text is tokenized one character a token, so its words
come from a segmenter, chosen at prepare time:

* ``jieba`` (optional dependency, ``pip install berts[zh]``): applied to sentences with CJK characters;
* ``gold``: the corpus is already segmented, words separated by spaces (all sentences);
* ``lexicon``: forward maximum matching with a user word list (one entry a line), CJK runs only.

A lexicon also gives *knowledge units* (ERNIE): its entries are found in the token ids (whole
word pieces, longest first) and each occurrence becomes one unit that entity masking never splits.

Boundaries are stored per token as bits (:data:`WORD_START`, :data:`UNIT_START`); units outside
the lexicon's entities are segmenter words in segmented sentences and single tokens elsewhere.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from berts.data.corpus import CJK
from berts.errors import UserError
from berts.util.fileio import read_text

SEGMENTERS = ("jieba", "gold", "lexicon")
WORD_START = 1  # the token starts a word (whole-word, n-gram and span masking)
UNIT_START = 2  # the token starts a knowledge unit (entity masking)


def read_lexicon(path: str | os.PathLike) -> list[str]:
    """Entries of a lexicon file: one a line, blank lines and ``#`` comments ignored; a trailing
    frequency or tag (jieba user-dictionary style, ``word 10 n``) is dropped only for one-word
    entries written in CJK characters."""
    path = Path(path)
    text = read_text(path, "a lexicon file")
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split()[0]
        entries.append(head if CJK.search(head) and all(CJK.match(c) for c in head) else line)
    if not entries:
        raise UserError(f"{path}: lexicon has no entries")
    return entries


def jieba_available() -> bool:
    try:
        import jieba  # noqa: F401
    except ImportError:
        return False
    return True


class Segmenter:
    """Character offsets where words start, for one sentence (None: not segmented, use ``##``)."""

    def __init__(self, kind: str | None, lexicon: Sequence[str] = ()):
        if kind not in (None, *SEGMENTERS):
            raise UserError(f"segmenter must be one of {', '.join(SEGMENTERS)}, got {kind!r}")
        if kind == "lexicon" and not lexicon:
            raise UserError("the lexicon segmenter needs a lexicon file (--lexicon)")
        if kind == "jieba" and not jieba_available():
            raise UserError("the jieba segmenter needs the jieba package: pip install 'berts[zh]'")
        self.kind = kind
        self.lexicon = list(lexicon)
        self._jieba = None
        self._words = {w.lower() for w in lexicon if CJK.search(w)}
        self._longest = max((len(w) for w in self._words), default=1)

    def __getstate__(self):
        return {**self.__dict__, "_jieba": None}  # each process builds its own

    def _jieba_tokenizer(self):
        if self._jieba is None:
            import jieba

            jieba.setLogLevel(logging.WARNING)
            tok = jieba.Tokenizer()
            for word in self._words:  # lexicon entries stay whole
                tok.add_word(word)
            self._jieba = tok
        return self._jieba

    def word_starts(self, sentence: str) -> list[int] | None:
        if self.kind is None:
            return None
        if self.kind == "gold":
            starts, prev_space = [], True
            for i, c in enumerate(sentence):
                if prev_space and not c.isspace():
                    starts.append(i)
                prev_space = c.isspace()
            return starts
        if not CJK.search(sentence):
            return None
        if self.kind == "jieba":
            starts, pos = [], 0
            for word in self._jieba_tokenizer().cut(sentence, HMM=True):
                starts.append(pos)
                pos += len(word)
            return starts
        return self._max_match(sentence)

    def _max_match(self, sentence: str) -> list[int]:
        """Forward maximum matching of CJK runs against the lexicon; other runs split at spaces."""
        starts, i, n = [], 0, len(sentence)
        low = sentence.lower()
        while i < n:
            starts.append(i)
            if CJK.match(sentence[i]):
                step = 1
                for length in range(min(self._longest, n - i), 1, -1):
                    if low[i:i + length] in self._words:
                        step = length
                        break
                i += step
            else:  # a non-CJK run up to the next space or CJK character is one word
                while i < n and not sentence[i].isspace() and not CJK.match(sentence[i]):
                    i += 1
                while i < n and sentence[i].isspace():
                    i += 1
        return starts


class EntityMatcher:
    """Finds lexicon entries in token ids: longest match first, aligned to whole word pieces."""

    def __init__(self, entries_ids: Sequence[Sequence[int]]):
        table: dict[int, list[tuple[int, ...]]] = {}
        for ids in entries_ids:
            if ids:
                table.setdefault(ids[0], []).append(tuple(ids))
        for first in table:
            table[first] = sorted(set(table[first]), key=len, reverse=True)
        self.table = table

    def __bool__(self) -> bool:
        return bool(self.table)

    def find(self, ids: Sequence[int], continuation: np.ndarray) -> list[tuple[int, int]]:
        """[(start, end)] token spans of entity occurrences, non-overlapping, left to right."""
        out, i, n, table = [], 0, len(ids), self.table
        while i < n:
            cands = table.get(ids[i])
            if cands and not continuation[ids[i]]:
                for cand in cands:
                    end = i + len(cand)
                    if end <= n and tuple(ids[i:end]) == cand and (end == n or not continuation[ids[end]]):
                        out.append((i, end))
                        i = end
                        break
                else:
                    i += 1
            else:
                i += 1
        return out


def token_bits(ids: Sequence[int], offsets: Sequence[tuple[int, int]] | None, word_starts: list[int] | None,
               continuation: np.ndarray, entities: list[tuple[int, int]] = ()) -> np.ndarray:
    """Per-token uint8 bits (WORD_START | UNIT_START) for one tokenized sentence.

    ``word_starts`` are character offsets from :class:`Segmenter` (None: words are ``##`` runs);
    ``offsets`` the tokens' character offsets in the sentence (needed with ``word_starts``).
    """
    ids_arr = np.asarray(ids, dtype=np.int64)
    not_cont = ~continuation[ids_arr]
    if word_starts is None:
        words = not_cont
        units = np.ones(len(ids_arr), dtype=bool)  # unsegmented text: basic units are tokens
    else:
        starts = np.asarray([o[0] for o in offsets], dtype=np.int64)
        marks = np.zeros(max(int(starts.max(initial=0)), max(word_starts, default=0)) + 2, dtype=bool)
        marks[word_starts] = True
        words = marks[starts] & not_cont
        if len(words):
            words[0] = True
        units = words.copy()
    for start, end in entities:
        units[start + 1:end] = False
        units[start] = True
        if end < len(units):
            units[end] = True
    return words.astype(np.uint8) * WORD_START | units.astype(np.uint8) * UNIT_START
