"""The trained WordPiece vocabulary: tokens <-> ids, its special tokens, text -> pieces -> ids and
back, training and the Hugging Face files.

No HF call API here (padding, truncation, pairs, tensors): that is
:class:`berts.tokenizer.hf_call.HFCall`, which :class:`berts.tokenizer.wordpiece.Tokenizer` adds on
top. The data pipeline needs only this class's ``encode_ids_batch``, ``is_continuation`` and ids.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import normalizers

from berts.errors import UserError
from berts.tokenizer import files as _files
from berts.tokenizer.backend import CONTINUATION_PREFIX, DEFAULT_MODEL_MAX_LENGTH, DEFAULT_NAMES, Backend
from berts.tokenizer.training import train_backend


@dataclass(frozen=True)
class SpecialIds:
    """The ids of a vocabulary's five special tokens (0..4 in a trained one; Google's vocab.txt has
    [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103)."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    @property
    def all(self) -> frozenset[int]:
        return frozenset((self.pad, self.unk, self.cls, self.sep, self.mask))


class WordPieceVocab:
    """A BERT WordPiece vocabulary around a ``tokenizers.Tokenizer`` (``self.backend``).

    In: a backend set up as BERT's (berts.tokenizer.backend), ``model_max_length`` (kept and saved
    for the call layer), ``special_tokens`` (role -> token string: pad_token, unk_token, cls_token,
    sep_token, mask_token; BERT's by default). ``lowercase`` etc. describe the normalizer only when
    it is not a BertNormalizer (a foreign tokenizer.json). Out: ids, pieces, text, files.
    """

    def __init__(self, backend: Backend, *, model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
                 special_tokens: dict[str, str] | None = None, lowercase: bool | None = None,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool | None = None):
        self.backend = backend
        backend.no_truncation()  # both are switched on per call, by the call layer only
        backend.no_padding()
        self.model_max_length = int(model_max_length)
        self.special_tokens = {**DEFAULT_NAMES, **(special_tokens or {})}
        self.train_stats: dict[str, Any] | None = None  # set by train()

        norm = backend.normalizer
        if isinstance(norm, normalizers.BertNormalizer):
            self._lowercase = bool(norm.lowercase)
            self._strip_accents = norm.strip_accents
            self._chinese = bool(norm.handle_chinese_chars)
        else:
            self._lowercase = True if lowercase is None else bool(lowercase)
            self._strip_accents = strip_accents
            self._chinese = True if tokenize_chinese_chars is None else bool(tokenize_chinese_chars)

        self._vocab = backend.get_vocab(with_added_tokens=True)
        ids = {}
        for role, token in self.special_tokens.items():
            tid = self._vocab.get(token)
            if tid is None:
                raise UserError(f"tokenizer vocabulary has no {token} token ({role})")
            ids[role[:-len("_token")]] = tid
        self.specials = SpecialIds(**ids)

    # ------------------------------------------------------------------ making one
    @classmethod
    def train(cls, files: Sequence[str | os.PathLike] | str | os.PathLike, vocab_size: int, *,
              lowercase: bool = True, strip_accents: bool | None = None, min_frequency: int = 2,
              limit_alphabet: int = 1000, show_progress: bool = True,
              model_max_length: int = DEFAULT_MODEL_MAX_LENGTH, input_format: str = "auto",
              text_field: str = "text", warnings_stream=None):
        """Train on a corpus read as ``berts prepare`` reads it (berts.tokenizer.training.train_backend:
        the corpus formats, the skipped lines); ``train_stats`` holds the run's numbers."""
        backend, stats = train_backend(
            files, vocab_size, lowercase=lowercase, strip_accents=strip_accents, min_frequency=min_frequency,
            limit_alphabet=limit_alphabet, show_progress=show_progress, input_format=input_format,
            text_field=text_field, warnings_stream=warnings_stream)
        vocab = cls(backend, model_max_length=model_max_length)
        vocab.train_stats = stats
        return vocab

    @classmethod
    def from_vocab(cls, vocab: dict[str, int] | str | os.PathLike, *, lowercase: bool = True,
                   strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                   model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
                   special_tokens: dict[str, str] | None = None):
        """From a vocab dict (token -> id) or a vocab.txt file, with BERT's normalization."""
        backend, names = _files.backend_from_vocab(
            vocab, lowercase=lowercase, strip_accents=strip_accents,
            tokenize_chinese_chars=tokenize_chinese_chars, special_tokens=special_tokens)
        return cls(backend, model_max_length=model_max_length, special_tokens=names)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, lowercase: bool | None = None):
        """A tokenizer directory (ours or transformers') or a vocab.txt file (berts.tokenizer.files.
        read_pretrained); ``lowercase`` overrides ``do_lower_case``."""
        backend, settings = _files.read_pretrained(path, lowercase=lowercase)
        return cls(backend, **settings)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """The four HF files, one atomic directory write; other files in ``directory`` are kept."""
        return _files.save_pretrained(self, directory)

    def write_files(self, directory: str | os.PathLike) -> None:
        """The four HF files into an existing directory that its writer publishes atomically."""
        _files.write_files(self, directory)

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return max(self._vocab.values()) + 1

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def pad_id(self) -> int:
        return self.specials.pad

    @property
    def unk_id(self) -> int:
        return self.specials.unk

    @property
    def cls_id(self) -> int:
        return self.specials.cls

    @property
    def sep_id(self) -> int:
        return self.specials.sep

    @property
    def mask_id(self) -> int:
        return self.specials.mask

    @property
    def special_ids(self) -> frozenset[int]:
        return self.specials.all

    @property
    def lowercase(self) -> bool:
        return self._lowercase

    @property
    def strip_accents(self) -> bool | None:
        return self._strip_accents

    @property
    def tokenize_chinese_chars(self) -> bool:
        return self._chinese

    def vocab(self) -> dict[str, int]:
        """token -> id, the specials included (a copy)."""
        return dict(self._vocab)

    @cached_property
    def is_continuation(self) -> np.ndarray:
        """Bool array over ids: True for ``##`` continuation pieces (whole-word masking)."""
        prefix = getattr(self.backend.model, "continuing_subword_prefix", CONTINUATION_PREFIX)
        out = np.zeros(self.vocab_size, dtype=bool)
        for token, i in self._vocab.items():
            if len(token) > len(prefix) and token.startswith(prefix):
                out[i] = True
        out[list(self.special_ids)] = False
        out.flags.writeable = False
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
                f"model_max_length={self.model_max_length})")

    # ------------------------------------------------------------------ tokens <-> ids <-> text
    def convert_ids_to_tokens(self, ids: int | Iterable[int]):
        """An id -> its token; ids -> a list (None for an id outside the vocabulary)."""
        if isinstance(ids, (int, np.integer)):
            return self.backend.id_to_token(int(ids))
        return [self.backend.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]):
        """A token -> its id; tokens -> a list ([UNK]'s id for an unknown one)."""
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_id)
        return [self._vocab.get(t, self.unk_id) for t in tokens]

    def tokenize(self, text: str, pair: str | None = None) -> list[str]:
        """Word pieces of ``text`` (and ``pair``'s after them), no special tokens."""
        return self.backend.encode(text, pair, add_special_tokens=False).tokens

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Ids -> text (``##`` pieces joined to their word)."""
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def encode_ids_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Token ids of many texts, in parallel (Rust threads), no truncation: the data pipeline."""
        return [e.ids for e in self.backend.encode_batch_fast(list(texts), add_special_tokens=add_special_tokens)]
