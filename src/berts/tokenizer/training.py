"""Training a WordPiece vocabulary: the ``tokenizers`` library's WordPieceTrainer on a corpus read
exactly as ``berts prepare`` reads it (:class:`berts.data.corpus.Corpus`).

In: corpus paths and the trainer's settings. Out: a finished BERT backend (specials at ids 0..4,
the [CLS] A [SEP] B [SEP] template) and the run's statistics; :meth:`WordPieceVocab.train` wraps
them into a vocabulary.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import trainers

from berts.errors import UserError
from berts.tokenizer.backend import (
    CONTINUATION_PREFIX, DEFAULT_NAMES, SPECIAL_TOKENS, Backend, bert_pipeline, finish, wordpiece_model)
from berts.util.fileio import check_readable, open_binary


def _count_lines(path: Path) -> int:
    """Number of lines (for the progress bar only); reads the file in 1 MiB blocks."""
    n, last = 0, b"\n"
    try:
        with open_binary(path) as f:
            while block := f.read(1 << 20):
                n += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    return n + (last != b"\n")


def train_backend(files: Sequence[str | os.PathLike] | str | os.PathLike, vocab_size: int, *,
                  lowercase: bool = True, strip_accents: bool | None = None, min_frequency: int = 2,
                  limit_alphabet: int = 1000, show_progress: bool = True, input_format: str = "auto",
                  text_field: str = "text", warnings_stream=None) -> tuple[Backend, dict[str, Any]]:
    """Train on ``files`` (files, directories, globs, ``.gz``; bert / plain / JSONL formats, detected
    per file with ``input_format="auto"``) -> (backend, stats).

    Lines that are not valid UTF-8 and bad JSONL records are skipped (counted in the stats and
    reported on stderr). ``strip_accents=None`` follows ``lowercase`` as BERT does. ``stats``: files,
    lines, skipped_lines, skipped (by reason), seconds, warning (a too-small-corpus note or None).
    """
    from berts.data.corpus import Corpus, Problems  # lazily: berts.data's package imports its pipeline, which imports us

    if vocab_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocab size must be more than {len(SPECIAL_TOKENS)} (the special tokens), got {vocab_size}")
    if min_frequency < 0:
        raise UserError(f"min frequency must be >= 0, got {min_frequency}")
    corpus = Corpus(files, input_format=input_format, text_field=text_field,
                    problems=Problems(stream=warnings_stream))
    files = corpus.files
    for f in files:
        check_readable(f, "a text file")

    start = time.perf_counter()
    backend = Backend(wordpiece_model())
    bert_pipeline(backend, lowercase=lowercase, strip_accents=strip_accents)
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
        special_tokens=list(SPECIAL_TOKENS), limit_alphabet=limit_alphabet,
        continuing_subword_prefix=CONTINUATION_PREFIX)
    length = sum(_count_lines(f) for f in files) if show_progress else None
    backend.train_from_iterator(corpus.texts(), trainer=trainer, length=length)
    if corpus.lines == 0:
        raise UserError("no text found in the corpus: " + ", ".join(str(f) for f in files))

    vocab = backend.get_vocab(with_added_tokens=False)
    if len(vocab) <= len(SPECIAL_TOKENS):  # lines, but nothing in them a tokenizer keeps
        raise UserError(f"no usable text in the corpus ({corpus.lines} lines, but not one token beyond the "
                        f"special ones): " + ", ".join(str(f) for f in files))
    small = None
    if len(vocab) < vocab_size // 2:
        small = (f"the vocabulary has {len(vocab)} tokens, far below --vocab-size {vocab_size}: the corpus "
                 f"is too small for it ({corpus.lines} lines; or lower --min-frequency {min_frequency})")
        print(f"berts: warning: {small}", file=warnings_stream or sys.stderr)
    # the trainer keeps the model's settings, but make them explicit whatever its version
    backend.model = wordpiece_model(vocab)
    assert [backend.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)
    finish(backend, DEFAULT_NAMES, vocab)
    stats = {
        "files": len(files), "lines": corpus.lines,
        "skipped_lines": corpus.problems.total, "skipped": dict(corpus.problems.counts),
        "seconds": time.perf_counter() - start, "warning": small,
    }
    return backend, stats
