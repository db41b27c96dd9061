"""A tokenizer on disk: the Hugging Face directory (``vocab.txt``, ``tokenizer.json``,
``tokenizer_config.json``, ``special_tokens_map.json``) and a bare Google/HF ``vocab.txt``.

Reading gives a backend and the settings a vocabulary is made with; writing takes a vocabulary
(anything with the :class:`berts.tokenizer.vocab.WordPieceVocab` properties). What is written
``transformers.AutoTokenizer.from_pretrained`` loads into a ``BertTokenizer`` giving the same ids;
what is read may come from transformers too.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tokenizers import normalizers

from berts.errors import UserError
from berts.tokenizer.backend import DEFAULT_MODEL_MAX_LENGTH, DEFAULT_NAMES, ROLES, Backend, bert_backend
from berts.util.fileio import atomic_write_dir, carry_over, read_text

VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILES = (VOCAB_FILE, TOKENIZER_FILE, CONFIG_FILE, SPECIAL_MAP_FILE)  # what save_pretrained writes
_HUGE = 10**9  # transformers writes 1e30 for "no limit"; we fall back to the default then


# ----------------------------------------------------------------------------- reading
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


def backend_from_vocab(vocab: dict[str, int] | str | os.PathLike, *, lowercase: bool = True,
                       strip_accents: bool | None = None, tokenize_chinese_chars: bool = True,
                       special_tokens: dict[str, str] | None = None) -> tuple[Backend, dict[str, str]]:
    """A vocab dict (token -> id) or a vocab.txt file -> (BERT backend, role -> special token string);
    a one-line error naming the file when a special token is missing."""
    source = vocab if not isinstance(vocab, dict) else None
    if source is not None:
        vocab = read_vocab_txt(source)
    names = {**DEFAULT_NAMES, **(special_tokens or {})}
    missing = [t for t in names.values() if t not in vocab]
    if missing:
        prefix = f"{source}: " if source is not None else ""
        raise UserError(f"{prefix}vocabulary lacks the special token(s) {' '.join(missing)}")
    backend = bert_backend(vocab, names, lowercase=lowercase, strip_accents=strip_accents,
                           tokenize_chinese_chars=tokenize_chinese_chars)
    return backend, names


def read_pretrained(path: str | os.PathLike, *, lowercase: bool | None = None) -> tuple[Backend, dict[str, Any]]:
    """A directory holding ``tokenizer.json`` (preferred) or ``vocab.txt`` (with an optional
    ``tokenizer_config.json``), or a ``vocab.txt`` file itself -> (backend, settings), the settings
    being WordPieceVocab's keyword arguments (model_max_length, special_tokens, ...).

    ``lowercase`` overrides ``do_lower_case`` (default: the config's, else True).
    """
    path = Path(path)
    if path.is_file():
        backend, names = backend_from_vocab(path, lowercase=True if lowercase is None else lowercase)
        return backend, {"special_tokens": names}
    if not path.is_dir():
        raise UserError(f"{path}: no such tokenizer directory or vocab file")
    config = _read_json(path / CONFIG_FILE) if (path / CONFIG_FILE).is_file() else {}
    specials = {role: _token_name(config.get(role), default) for role, default in DEFAULT_NAMES.items()}
    if (path / SPECIAL_MAP_FILE).is_file():
        smap = _read_json(path / SPECIAL_MAP_FILE)
        specials.update({role: _token_name(smap[role], specials[role]) for role in ROLES if role in smap})
    max_len = config.get("model_max_length")
    if not isinstance(max_len, int) or isinstance(max_len, bool) or not 0 < max_len < _HUGE:
        max_len = DEFAULT_MODEL_MAX_LENGTH
    do_lower = config.get("do_lower_case", True) if lowercase is None else lowercase
    strip = config.get("strip_accents")
    chinese = config.get("tokenize_chinese_chars", True)

    if (path / TOKENIZER_FILE).is_file():
        try:
            backend = Backend.from_file(str(path / TOKENIZER_FILE))
        except Exception as exc:  # tokenizers raises a plain Exception on a bad file
            raise UserError(f"{path / TOKENIZER_FILE}: cannot load ({str(exc).splitlines()[0]})") from None
        if lowercase is not None and isinstance(backend.normalizer, normalizers.BertNormalizer):
            n = backend.normalizer
            backend.normalizer = normalizers.BertNormalizer(
                clean_text=n.clean_text, handle_chinese_chars=n.handle_chinese_chars,
                strip_accents=n.strip_accents, lowercase=lowercase)
        # lowercase etc. describe the normalizer only when it is not a BertNormalizer
        return backend, {"model_max_length": max_len, "special_tokens": specials, "lowercase": do_lower,
                         "strip_accents": strip, "tokenize_chinese_chars": chinese}
    if (path / VOCAB_FILE).is_file():
        backend, names = backend_from_vocab(path / VOCAB_FILE, lowercase=bool(do_lower), strip_accents=strip,
                                            tokenize_chinese_chars=bool(chinese), special_tokens=specials)
        return backend, {"model_max_length": max_len, "special_tokens": names}
    raise UserError(f"{path}: no {TOKENIZER_FILE} or {VOCAB_FILE} in this directory")


# ----------------------------------------------------------------------------- writing
def write_files(vocab, directory: str | os.PathLike) -> None:
    """The four files of ``vocab`` (a WordPieceVocab) into an existing directory, which its writer
    publishes atomically (a storage error is raised as is: the writer names the directory it was
    replacing)."""
    directory = Path(directory)
    inverse = vocab.convert_ids_to_tokens(list(range(vocab.vocab_size)))
    with open(directory / VOCAB_FILE, "w", encoding="utf-8", newline="\n") as f:
        for i, token in enumerate(inverse):
            f.write(f"{token if token is not None else f'[unused_id_{i}]'}\n")
    # not backend.save(): a write of ours raises on a full disk, whatever tokenizers does
    (directory / TOKENIZER_FILE).write_text(vocab.backend.to_str(pretty=True), encoding="utf-8")
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": vocab.lowercase,
        "strip_accents": vocab.strip_accents,
        "tokenize_chinese_chars": vocab.tokenize_chinese_chars,
        "model_max_length": vocab.model_max_length,
        **vocab.special_tokens,
        "clean_up_tokenization_spaces": True,
    }
    with open(directory / CONFIG_FILE, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2, ensure_ascii=False)
        f.write("\n")
    with open(directory / SPECIAL_MAP_FILE, "w", encoding="utf-8") as f:
        json.dump(dict(vocab.special_tokens), f, indent=2, ensure_ascii=False)
        f.write("\n")


def save_pretrained(vocab, directory: str | os.PathLike) -> Path:
    """:func:`write_files` as one atomic directory write (fileio.atomic_write_dir): a crash or a full
    disk leaves the previous directory whole, never a 0-byte tokenizer.json. Other files in
    ``directory`` are kept."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a directory")

    def write(tmp: Path) -> None:
        if directory.is_dir():
            carry_over(directory, tmp, skip=TOKENIZER_FILES)
        write_files(vocab, tmp)

    atomic_write_dir(directory, write)
    return directory
