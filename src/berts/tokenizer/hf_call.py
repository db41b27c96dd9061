"""transformers' tokenizer call API (``tok(texts, pairs, padding=..., truncation=..., max_length=...,
return_tensors="pt")``) on top of a vocabulary, so that code written for ``BertTokenizerFast`` runs
on ours unchanged and gives the same ids, type ids and attention masks (tests/test_tokenizer.py
checks it against transformers loading our saved directory).

The ``tokenizers`` library does the work: its truncation ("longest_first", as transformers) and its
padding are switched on for one call and off again, exactly as transformers' fast tokenizers do.
Only argument checking, the unbatched single-text form and ``return_tensors`` are ours.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from berts.errors import UserError

PADDING = (False, None, "do_not_pad", True, "longest", "max_length")  # True means "longest", as transformers


class HFCall:
    """``encode`` and ``__call__`` as transformers' fast tokenizers, mixed into a vocabulary.

    Needs from the class it is mixed into (berts.tokenizer.vocab.WordPieceVocab): ``backend`` (a
    BERT ``tokenizers.Tokenizer`` with no truncation or padding set), ``model_max_length`` (the
    default ``max_length``), ``pad_id`` and ``special_tokens["pad_token"]``.

    The backend's settings are set for one call and cleared after it: do not share one tokenizer
    between threads that encode at the same time (processes are fine), as with transformers.
    """

    @contextmanager
    def _settings(self, *, max_length: int | None, truncation: bool, padding: bool | str | None = False,
                  pad_to_multiple_of: int | None = None) -> Iterator[Any]:
        """The backend, truncating to ``max_length`` (``model_max_length`` when None) when
        ``truncation``, padding right with [PAD], type id 0 and attention 0 when ``padding``."""
        if padding not in PADDING:
            raise ValueError(f"padding must be False, 'longest' or 'max_length', got {padding!r}")
        backend = self.backend
        if truncation:
            limit = self.model_max_length if max_length is None else int(max_length)
            if limit < 1:
                raise UserError(f"max length must be at least 1, got {limit}")
            backend.enable_truncation(limit, stride=0, strategy="longest_first", direction="right")
        if padding in (True, "longest", "max_length"):
            # length None: to the longest of the batch; else a fixed width (a longer row is left as is)
            length = None
            if padding == "max_length":
                length = self.model_max_length if max_length is None else int(max_length)
            backend.enable_padding(direction="right", pad_id=self.pad_id, pad_type_id=0,
                                   pad_token=self.special_tokens["pad_token"], length=length,
                                   pad_to_multiple_of=pad_to_multiple_of or None)
        try:
            yield backend
        finally:
            backend.no_truncation()
            backend.no_padding()

    def encode(self, text: str, pair: str | None = None, *, max_length: int | None = None,
               truncation: bool = True, add_special_tokens: bool = True) -> dict[str, list[int]]:
        """One text (or text pair) -> ``input_ids``, ``token_type_ids``, ``attention_mask`` (lists).

        ``truncation`` cuts to ``max_length`` (``model_max_length`` when None), counting the
        special tokens, taking from the longer of the two texts first ("longest_first")."""
        with self._settings(max_length=max_length, truncation=truncation) as backend:
            enc = backend.encode(text, pair, add_special_tokens=add_special_tokens)
        return {"input_ids": list(enc.ids), "token_type_ids": list(enc.type_ids),
                "attention_mask": list(enc.attention_mask)}

    def __call__(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None, *,
                 max_length: int | None = None, truncation: bool = True,
                 padding: bool | str = False, pad_to_multiple_of: int | None = None,
                 return_tensors: str | None = None, add_special_tokens: bool = True) -> dict[str, Any]:
        """Batch encoding -> a dict like the contents of transformers' BatchEncoding:
        ``input_ids``, ``token_type_ids``, ``attention_mask``, each [B][L] lists (or [B, L] tensors).

        ``padding``: False (none), "longest"/True (to the longest in the batch) or "max_length"
        (to ``max_length``, else ``model_max_length``), rounded up to ``pad_to_multiple_of``; right
        side, with ``pad_id``, type id 0 and attention 0. ``return_tensors="pt"`` gives torch
        LongTensors (needs equal lengths). A single string gives unbatched lists (tensors of shape
        (1, L)), as transformers does.
        """
        if return_tensors not in (None, "pt"):
            raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
        single = isinstance(texts, str)
        if single:
            texts = [texts]
            if pairs is not None:
                if not isinstance(pairs, str):
                    raise ValueError("a single text takes a single pair text")
                pairs = [pairs]
        texts = list(texts)
        inputs: list = texts
        if pairs is not None:
            pairs = list(pairs)
            if len(pairs) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(pairs)} pair texts")
            inputs = list(zip(texts, pairs))
        with self._settings(max_length=max_length, truncation=truncation, padding=padding,
                            pad_to_multiple_of=pad_to_multiple_of) as backend:
            encodings = backend.encode_batch_fast(inputs, add_special_tokens=add_special_tokens)
        out = {
            "input_ids": [list(e.ids) for e in encodings],
            "token_type_ids": [list(e.type_ids) for e in encodings],
            "attention_mask": [list(e.attention_mask) for e in encodings],
        }
        if return_tensors == "pt":
            import torch  # here: the vocabulary and the data pipeline never need torch

            if len({len(row) for row in out["input_ids"]}) > 1:
                raise ValueError("sequences have different lengths: pass padding='longest' to get tensors")
            return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
        if single:
            return {k: v[0] for k, v in out.items()}
        return out
