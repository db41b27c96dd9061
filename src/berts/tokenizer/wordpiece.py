"""WordPiece tokenizer: trained, saved and loaded through the `tokenizers` library.

A :class:`Tokenizer` wraps a ``tokenizers.Tokenizer`` (``.backend``) set up exactly as BERT's:
``BertNormalizer`` (control characters removed, each CJK character its own word, optional
lowercasing / accent stripping), ``BertPreTokenizer``, a ``WordPiece`` model with ``##``
continuation pieces, the specials ``[PAD] [UNK] [CLS] [SEP] [MASK]``, a ``[CLS] A [SEP] B [SEP]``
template and the WordPiece decoder.

``save_pretrained`` writes a Hugging Face directory (``vocab.txt``, ``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``) that
``transformers.AutoTokenizer.from_pretrained`` loads into a ``BertTokenizer`` giving the same ids.
``from_pretrained`` reads such directories (ours or transformers'), or a bare Google/HF
``vocab.txt``.
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer as _Backend
from tokenizers import decoders, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import WordPiece

from berts.errors import UserError
from berts.util.fileio import atomic_write_dir, carry_over, check_readable, open_binary, read_text

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)  # ids 0..4 in a trained vocabulary
CONTINUATION_PREFIX = "##"
MAX_INPUT_CHARS_PER_WORD = 200  # Google BERT's value; a longer word becomes [UNK]
DEFAULT_MODEL_MAX_LENGTH = 512
_HUGE = 10**9  # transformers writes 1e30 for "no limit"; we fall back to the default then

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILES = (VOCAB_FILE, TOKENIZER_FILE, CONFIG_FILE, SPECIAL_MAP_FILE)  # what save_pretrained writes

_ROLES = ("pad_token", "unk_token", "cls_token", "sep_token", "mask_token")
_DEFAULT_NAMES = dict(zip(_ROLES, SPECIAL_TOKENS))


# ----------------------------------------------------------------------------- backend set-up
def _bert_pipeline(backend: _Backend, *, lowercase: bool, strip_accents: bool | None,
                   tokenize_chinese_chars: bool = True) -> None:
    """Normalizer, pre-tokenizer and decoder as BERT's (the post-processor needs ids: later)."""
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix=CONTINUATION_PREFIX)


def _bert_post_processor(cls_token: str, cls_id: int, sep_token: str, sep_id: int):
    return processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0",
        pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, cls_id), (sep_token, sep_id)],
    )


def _token_name(value: Any, default: str) -> str:
    """A special token from a tokenizer_config: a string, or an AddedToken dict (older files)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    return default


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object")
    return data


def read_vocab_txt(path: str | os.PathLike) -> dict[str, int]:
    """Google/HF vocab.txt: one token a line, the id is the line number (as transformers reads it)."""
    path = Path(path)
    text = read_text(path, "a vocab.txt file")
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")  # as readlines, not splitlines
    lines = [] if text == "" else lines
    vocab: dict[str, int] = {}
    for index, line in enumerate(lines):
        vocab[line] = index  # a duplicate keeps its last id, as transformers does
    if not vocab:
        raise UserError(f"{path}: empty vocabulary")
    return vocab


# ----------------------------------------------------------------------------- corpus reading
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


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The one tokenizer loader of berts' commands: a tokenizer directory (``tokenizer.json`` or
    ``vocab.txt``, ours or transformers') or a ``vocab.txt`` file, with one-line errors."""
    p = Path(path)
    if not p.exists():
        raise UserError(f"{path}: no such tokenizer directory")
    if p.is_dir() and not any((p / n).is_file() for n in (TOKENIZER_FILE, VOCAB_FILE)):
        raise UserError(f"{path}: no tokenizer files ({TOKENIZER_FILE} or {VOCAB_FILE})")
    return Tokenizer.from_pretrained(p)


# ----------------------------------------------------------------------------- the tokenizer
class Tokenizer:
    """BERT WordPiece tokenizer around a ``tokenizers.Tokenizer`` (``self.backend``)."""

    def __init__(self, backend: _Backend, *, model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
                 special_tokens: dict[str, str] | None = None, lowercase: bool | None = None,
                 strip_accents: bool | None = None, tokenize_chinese_chars: bool | None = None):
        """``special_tokens`` maps pad_token/unk_token/cls_token/sep_token/mask_token to their
        strings (BERT's by default). ``lowercase`` etc. are only used when the backend's normalizer
        is not a BertNormalizer (they describe it then)."""
        self.backend = backend
        backend.no_truncation()
        backend.no_padding()
        self.model_max_length = int(model_max_length)
        self.special_tokens = {**_DEFAULT_NAMES, **(special_tokens or {})}
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
            ids[role] = tid
        self._ids = ids

    # ------------------------------------------------------------------ training
    @classmethod
    def train(cls, files: Sequence[str | os.PathLike] | str | os.PathLike, vocab_size: int, *,
              lowercase: bool = True, strip_accents: bool | None = None, min_frequency: int = 2,
              limit_alphabet: int = 1000, show_progress: bool = True,
              model_max_length: int = DEFAULT_MODEL_MAX_LENGTH, input_format: str = "auto",
              text_field: str = "text", warnings_stream=None) -> Tokenizer:
        """Train a WordPiece vocabulary on a corpus read exactly as ``berts prepare`` reads it
        (berts.data.corpus.Corpus): files, directories, globs, ``.gz``; bert / plain / JSONL
        (``text_field``) formats, detected per file with ``input_format="auto"``.

        Lines that are not valid UTF-8 and bad JSONL records are skipped (counted in
        ``train_stats`` and reported on stderr). ``strip_accents=None`` follows ``lowercase`` as BERT does.
        """
        from berts.data.corpus import Corpus, Problems  # lazily: berts.data's pipeline imports us lazily too

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
        backend = _Backend(WordPiece(unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX,
                                     max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
        _bert_pipeline(backend, lowercase=lowercase, strip_accents=strip_accents)
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, show_progress=show_progress,
            special_tokens=list(SPECIAL_TOKENS), limit_alphabet=limit_alphabet,
            continuing_subword_prefix=CONTINUATION_PREFIX)
        length = sum(_count_lines(f) for f in files) if show_progress else None
        backend.train_from_iterator(corpus.texts(), trainer=trainer, length=length)
        if corpus.lines == 0:
            raise UserError("no text found in the corpus: " + ", ".join(str(f) for f in files))

        # The trainer keeps the model's settings, but make them explicit whatever its version.
        vocab = backend.get_vocab(with_added_tokens=False)
        if len(vocab) <= len(SPECIAL_TOKENS):  # lines, but nothing in them a tokenizer keeps
            raise UserError(f"no usable text in the corpus ({corpus.lines} lines, but not one token beyond the "
                            f"special ones): " + ", ".join(str(f) for f in files))
        small = None
        if len(vocab) < vocab_size // 2:
            small = (f"the vocabulary has {len(vocab)} tokens, far below --vocab-size {vocab_size}: the corpus "
                     f"is too small for it ({corpus.lines} lines; or lower --min-frequency {min_frequency})")
            print(f"berts: warning: {small}", file=warnings_stream or sys.stderr)
        backend.model = WordPiece(vocab, unk_token=UNK, continuing_subword_prefix=CONTINUATION_PREFIX,
                                  max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD)
        assert [backend.id_to_token(i) for i in range(len(SPECIAL_TOKENS))] == list(SPECIAL_TOKENS)
        backend.add_special_tokens(list(SPECIAL_TOKENS))
        backend.post_processor = _bert_post_processor(CLS, vocab[CLS], SEP, vocab[SEP])
        tok = cls(backend, model_max_length=model_max_length)
        tok.train_stats = {
            "files": len(files), "lines": corpus.lines,
            "skipped_lines": corpus.problems.total, "skipped": dict(corpus.problems.counts),
            "seconds": time.perf_counter() - start, "warning": small,
        }
        return tok

    # ------------------------------------------------------------------ loading / saving
    @classmethod
    def from_vocab(cls, vocab: dict[str, int] | str | os.PathLike, *, lowercase: bool = True,
                   strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                   model_max_length: int = DEFAULT_MODEL_MAX_LENGTH,
                   special_tokens: dict[str, str] | None = None) -> Tokenizer:
        """A BERT WordPiece tokenizer (like tokenizers' BertWordPieceTokenizer) from a vocab dict or
        a vocab.txt file."""
        source = vocab if not isinstance(vocab, dict) else None
        if source is not None:
            vocab = read_vocab_txt(source)
        names = {**_DEFAULT_NAMES, **(special_tokens or {})}
        missing = [t for t in names.values() if t not in vocab]
        if missing:
            prefix = f"{source}: " if source is not None else ""
            raise UserError(f"{prefix}vocabulary lacks the special token(s) {' '.join(missing)}")
        backend = _Backend(WordPiece(vocab, unk_token=names["unk_token"],
                                     continuing_subword_prefix=CONTINUATION_PREFIX,
                                     max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
        _bert_pipeline(backend, lowercase=lowercase, strip_accents=strip_accents,
                       tokenize_chinese_chars=tokenize_chinese_chars)
        backend.add_special_tokens([names[r] for r in _ROLES])
        backend.post_processor = _bert_post_processor(
            names["cls_token"], vocab[names["cls_token"]], names["sep_token"], vocab[names["sep_token"]])
        return cls(backend, model_max_length=model_max_length, special_tokens=names)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, *, lowercase: bool | None = None) -> Tokenizer:
        """Load a directory holding ``tokenizer.json`` (preferred) or ``vocab.txt`` (with an optional
        ``tokenizer_config.json``), or a ``vocab.txt`` file itself.

        ``lowercase`` overrides ``do_lower_case`` for a vocab.txt (default: the config's, else True).
        """
        path = Path(path)
        if path.is_file():
            return cls.from_vocab(path, lowercase=True if lowercase is None else lowercase)
        if not path.is_dir():
            raise UserError(f"{path}: no such tokenizer directory or vocab file")
        config = _read_json(path / CONFIG_FILE) if (path / CONFIG_FILE).is_file() else {}
        specials = {role: _token_name(config.get(role), default) for role, default in _DEFAULT_NAMES.items()}
        if (path / SPECIAL_MAP_FILE).is_file():
            smap = _read_json(path / SPECIAL_MAP_FILE)
            specials.update({role: _token_name(smap[role], specials[role]) for role in _ROLES if role in smap})
        max_len = config.get("model_max_length")
        if not isinstance(max_len, int) or isinstance(max_len, bool) or not 0 < max_len < _HUGE:
            max_len = DEFAULT_MODEL_MAX_LENGTH
        do_lower = config.get("do_lower_case", True) if lowercase is None else lowercase
        strip = config.get("strip_accents")
        chinese = config.get("tokenize_chinese_chars", True)

        if (path / TOKENIZER_FILE).is_file():
            try:
                backend = _Backend.from_file(str(path / TOKENIZER_FILE))
            except Exception as exc:  # tokenizers raises a plain Exception on a bad file
                raise UserError(f"{path / TOKENIZER_FILE}: cannot load ({str(exc).splitlines()[0]})") from None
            if lowercase is not None and isinstance(backend.normalizer, normalizers.BertNormalizer):
                n = backend.normalizer
                backend.normalizer = normalizers.BertNormalizer(
                    clean_text=n.clean_text, handle_chinese_chars=n.handle_chinese_chars,
                    strip_accents=n.strip_accents, lowercase=lowercase)
            return cls(backend, model_max_length=max_len, special_tokens=specials,
                       lowercase=do_lower, strip_accents=strip, tokenize_chinese_chars=chinese)
        if (path / VOCAB_FILE).is_file():
            return cls.from_vocab(path / VOCAB_FILE, lowercase=bool(do_lower), strip_accents=strip,
                                  tokenize_chinese_chars=bool(chinese), model_max_length=max_len,
                                  special_tokens=specials)
        raise UserError(f"{path}: no {TOKENIZER_FILE} or {VOCAB_FILE} in this directory")

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json, as one
        atomic directory write (fileio.atomic_write_dir): a crash or a full disk leaves the previous
        directory whole, never a 0-byte tokenizer.json. Other files in ``directory`` are kept."""
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise UserError(f"{directory}: exists and is not a directory")

        def write(tmp: Path) -> None:
            if directory.is_dir():
                carry_over(directory, tmp, skip=TOKENIZER_FILES)
            self.write_files(tmp)

        atomic_write_dir(directory, write)
        return directory

    def write_files(self, directory: str | os.PathLike) -> None:
        """The four files into an existing directory, which its writer publishes atomically (a storage
        error is raised as is: the writer names the directory it was replacing)."""
        directory = Path(directory)
        inverse = self.convert_ids_to_tokens(list(range(self.vocab_size)))
        with open(directory / VOCAB_FILE, "w", encoding="utf-8", newline="\n") as f:
            for i, token in enumerate(inverse):
                f.write(f"{token if token is not None else f'[unused_id_{i}]'}\n")
        # not backend.save(): a write of ours raises on a full disk, whatever tokenizers does
        (directory / TOKENIZER_FILE).write_text(self.backend.to_str(pretty=True), encoding="utf-8")
        config = {
            "tokenizer_class": "BertTokenizer",
            "do_lower_case": self.lowercase,
            "strip_accents": self.strip_accents,
            "tokenize_chinese_chars": self._chinese,
            "model_max_length": self.model_max_length,
            **self.special_tokens,
            "clean_up_tokenization_spaces": True,
        }
        with open(directory / CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, ensure_ascii=False)
            f.write("\n")
        with open(directory / SPECIAL_MAP_FILE, "w", encoding="utf-8") as f:
            json.dump(dict(self.special_tokens), f, indent=2, ensure_ascii=False)
            f.write("\n")

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return max(self._vocab.values()) + 1

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def pad_id(self) -> int:
        return self._ids["pad_token"]

    @property
    def unk_id(self) -> int:
        return self._ids["unk_token"]

    @property
    def cls_id(self) -> int:
        return self._ids["cls_token"]

    @property
    def sep_id(self) -> int:
        return self._ids["sep_token"]

    @property
    def mask_id(self) -> int:
        return self._ids["mask_token"]

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(self._ids.values())

    @property
    def lowercase(self) -> bool:
        return self._lowercase

    @property
    def strip_accents(self) -> bool | None:
        return self._strip_accents

    def vocab(self) -> dict[str, int]:
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
        return (f"Tokenizer(vocab_size={self.vocab_size}, lowercase={self.lowercase}, "
                f"model_max_length={self.model_max_length})")

    # ------------------------------------------------------------------ conversions
    def convert_ids_to_tokens(self, ids: int | Iterable[int]):
        if isinstance(ids, (int, np.integer)):
            return self.backend.id_to_token(int(ids))
        return [self.backend.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens: str | Iterable[str]):
        if isinstance(tokens, str):
            return self._vocab.get(tokens, self.unk_id)
        return [self._vocab.get(t, self.unk_id) for t in tokens]

    def tokenize(self, text: str, pair: str | None = None) -> list[str]:
        """Word pieces of ``text`` (no special tokens)."""
        return self.backend.encode(text, pair, add_special_tokens=False).tokens

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    # ------------------------------------------------------------------ encoding
    def _with_truncation(self, fn, max_length: int | None, truncation: bool):
        """Run ``fn()`` with the backend truncating to ``max_length`` ("longest_first", as HF).

        Like transformers, this sets and then clears the backend's truncation: do not share one
        Tokenizer between threads that encode at the same time (processes are fine)."""
        if not truncation:
            return fn()
        limit = self.model_max_length if max_length is None else int(max_length)
        if limit < 1:
            raise UserError(f"max length must be at least 1, got {limit}")
        self.backend.enable_truncation(limit, stride=0, strategy="longest_first", direction="right")
        try:
            return fn()
        finally:
            self.backend.no_truncation()

    def encode(self, text: str, pair: str | None = None, *, max_length: int | None = None,
               truncation: bool = True, add_special_tokens: bool = True) -> dict[str, list[int]]:
        """One text (or text pair): ``input_ids``, ``token_type_ids``, ``attention_mask``.

        ``truncation`` cuts to ``max_length`` (``model_max_length`` when None), counting the
        special tokens, taking from the longer of the two texts first ("longest_first")."""
        enc = self._with_truncation(
            lambda: self.backend.encode(text, pair, add_special_tokens=add_special_tokens),
            max_length, truncation)
        return {"input_ids": list(enc.ids), "token_type_ids": list(enc.type_ids),
                "attention_mask": list(enc.attention_mask)}

    def __call__(self, texts: str | Sequence[str], pairs: str | Sequence[str] | None = None, *,
                 max_length: int | None = None, truncation: bool = True,
                 padding: bool | str = False, pad_to_multiple_of: int | None = None,
                 return_tensors: str | None = None, add_special_tokens: bool = True) -> dict[str, Any]:
        """Batch encoding, as a dict like the contents of transformers' BatchEncoding.

        ``padding``: False (none), "longest"/True (to the longest in the batch) or "max_length"
        (to ``max_length``, else ``model_max_length``); right side, with ``pad_id``, type id 0 and
        attention 0. ``return_tensors="pt"`` gives torch LongTensors (needs equal lengths).
        A single string gives unbatched lists (tensors of shape (1, L)), as transformers does.
        """
        single = isinstance(texts, str)
        if single:
            texts = [texts]
            if pairs is not None:
                if not isinstance(pairs, str):
                    raise ValueError("a single text takes a single pair text")
                pairs = [pairs]
        texts = list(texts)
        if pairs is not None:
            pairs = list(pairs)
            if len(pairs) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(pairs)} pair texts")
            inputs = list(zip(texts, pairs))
        else:
            inputs = texts
        encodings = self._with_truncation(
            lambda: self.backend.encode_batch_fast(inputs, add_special_tokens=add_special_tokens),
            max_length, truncation)
        out = {
            "input_ids": [list(e.ids) for e in encodings],
            "token_type_ids": [list(e.type_ids) for e in encodings],
            "attention_mask": [list(e.attention_mask) for e in encodings],
        }
        if padding is True:
            padding = "longest"
        if padding not in (False, None, "do_not_pad", "longest", "max_length"):
            raise ValueError(f"padding must be False, 'longest' or 'max_length', got {padding!r}")
        if padding in ("longest", "max_length") and encodings:
            if padding == "longest":
                target = max(len(ids) for ids in out["input_ids"])
            else:
                target = self.model_max_length if max_length is None else int(max_length)
            if pad_to_multiple_of:
                target = -(-target // pad_to_multiple_of) * pad_to_multiple_of
            for key, value in (("input_ids", self.pad_id), ("token_type_ids", 0), ("attention_mask", 0)):
                out[key] = [row + [value] * (target - len(row)) for row in out[key]]
        if return_tensors is not None:
            if return_tensors != "pt":
                raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
            import torch
            if len({len(row) for row in out["input_ids"]}) > 1:
                raise ValueError("sequences have different lengths: pass padding='longest' to get tensors")
            return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}
        if single:
            return {k: v[0] for k, v in out.items()}
        return out

    def encode_ids_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[list[int]]:
        """Token ids of many texts, in parallel (Rust threads), no truncation: the data pipeline."""
        return [e.ids for e in self.backend.encode_batch_fast(list(texts), add_special_tokens=add_special_tokens)]
