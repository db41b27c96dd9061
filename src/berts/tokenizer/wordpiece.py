"""The BERT WordPiece tokenizer berts' commands use: a trained vocabulary plus transformers' call API.

:class:`Tokenizer` is the two halves put together, each its own module:

* :class:`berts.tokenizer.vocab.WordPieceVocab`: the vocabulary (train, load, save, tokens <-> ids,
  special ids, decode, the data pipeline's batch encoding);
* :class:`berts.tokenizer.hf_call.HFCall`: ``encode`` and ``__call__`` with transformers' padding,
  truncation, pairs and ``return_tensors``.

Below them: berts.tokenizer.backend (the ``tokenizers`` pipeline set up as BERT's),
berts.tokenizer.training (WordPieceTrainer on the corpus reader) and berts.tokenizer.files (the
Hugging Face directory). ``save_pretrained`` writes a directory that
``transformers.AutoTokenizer.from_pretrained`` loads into a ``BertTokenizer`` giving the same ids;
``from_pretrained`` / :func:`load_tokenizer` read such directories (ours or transformers'), or a
bare Google/HF ``vocab.txt``.

The names this module had before the split (constants, ``read_vocab_txt``) stay importable from here.
"""
from __future__ import annotations

import os
from pathlib import Path

from berts.errors import UserError
from berts.tokenizer.backend import (  # noqa: F401  (the old public names of this module)
    CLS, CONTINUATION_PREFIX, DEFAULT_MODEL_MAX_LENGTH, MASK, MAX_INPUT_CHARS_PER_WORD, PAD, SEP, SPECIAL_TOKENS,
    UNK)
from berts.tokenizer.files import (  # noqa: F401
    CONFIG_FILE, SPECIAL_MAP_FILE, TOKENIZER_FILE, TOKENIZER_FILES, VOCAB_FILE, read_vocab_txt)
from berts.tokenizer.hf_call import HFCall
from berts.tokenizer.vocab import SpecialIds, WordPieceVocab  # noqa: F401


class Tokenizer(HFCall, WordPieceVocab):
    """BERT WordPiece tokenizer: a :class:`WordPieceVocab` that is also callable as transformers'
    ``BertTokenizerFast`` (:class:`HFCall`). ``Tokenizer.train``, ``from_pretrained`` and
    ``from_vocab`` return a Tokenizer."""


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The one tokenizer loader of berts' commands: a tokenizer directory (``tokenizer.json`` or
    ``vocab.txt``, ours or transformers') or a ``vocab.txt`` file, with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such tokenizer directory")
    if p.is_dir() and not any((p / n).is_file() for n in (TOKENIZER_FILE, VOCAB_FILE)):
        raise UserError(f"{path}: no tokenizer files ({TOKENIZER_FILE} or {VOCAB_FILE})")
    return Tokenizer.from_pretrained(p)
