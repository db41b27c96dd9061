"""Token-tagging data (NER, POS, Chinese per-character tagging): tag schemes, readers, sub-token
alignment and windows.

Schemes. A tag is ``PREFIX-TYPE`` or ``O``:

* ``IO``: ``I-PER I-PER O`` (adjacent same-type entities cannot be told apart); a bare ``PER`` counts as ``I-PER``;
* ``BIO`` (IOB2): every entity starts with ``B-``; ``I-X`` only after ``B-X`` / ``I-X``;
* ``IOB1`` (the original CoNLL-2003 files): ``I-`` everywhere, ``B-X`` only to split two adjacent X entities;
* ``BIOES``: ``B I* E`` for long entities, ``S`` for one-token ones; ``BMES`` is the same with ``M``
  for ``I`` (MSRA's Chinese files).

:func:`detect_scheme` names the scheme of a set of sequences, :func:`to_bio` converts any of them to
BIO, :func:`invalid_transitions` lists the moves a scheme forbids (``O -> I-PER`` in BIO, ``E``
without ``B`` in BIOES), and :func:`allowed_transitions` gives a CRF's constraint matrices
(berts.model.crf).

Readers (:func:`read_conll`, :func:`read_jsonl`, :func:`read_tag_records` for parquet and
`datasets` directories, :func:`read_tagged` picking one by format) give :class:`TaggedSentence`
rows with the file and line they came from; bad input is a one-line UserError naming ``file:line``.
:func:`check_labels` refuses a dev/test tag that training never saw.

Alignment (:func:`align_labels`) puts a word's label on its first sub-token and -100 (ignored by
the loss, HF's convention) on the rest, or on all of them with ``label_all_subtokens``;
:func:`word_windows` splits a long sentence into overlapping windows and :func:`merge_windows` maps
window predictions back so that every word gets exactly one (from the window where it is most central);
:func:`pad_batch` pads windows into tensors (labels with -100, as DataCollatorForTokenClassification).

Output: :func:`split_words` cuts raw text into the tokenizer's words with character offsets,
:func:`entity_spans` turns word tags back into entities of the original string (type, text,
offsets, mean score), :func:`conll_text` / :func:`write_conll` give ``TOKEN GOLD PREDICTED`` lines.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from berts.data.tables import read_records
from berts.errors import UserError
from berts.util.fileio import text_lines

OUTSIDE = "O"
SCHEMES = ("IO", "BIO", "IOB1", "BIOES", "BMES")
SCHEME_ALIASES = {"IOB2": "BIO", "IOBES": "BIOES", "BILOU": "BIOES"}
PREFIXES = frozenset("BIEMSL")
IGNORE_INDEX = -100  # the loss skips it (torch's cross_entropy default, HF's convention)


# --------------------------------------------------------------------------------------------- schemes

def split_tag(tag: str) -> tuple[str, str | None]:
    """``"B-PER"`` -> ``("B", "PER")``; ``"O"`` -> ``("O", None)``; a bare ``"PER"`` -> ``("I", "PER")``.
    ``L`` (BILOU's last) reads as ``E`` and ``U`` is not a prefix (BILOU is not supported beyond that)."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    if len(tag) > 2 and tag[0] in PREFIXES and tag[1] in "-_":
        prefix = "E" if tag[0] == "L" else tag[0]
        return prefix, tag[2:]
    return "I", tag


def scheme_name(name: str) -> str:
    """A scheme's canonical name (IOB2 -> BIO, IOBES -> BIOES); UserError for an unknown one."""
    key = name.upper()
    key = SCHEME_ALIASES.get(key, key)
    if key not in SCHEMES:
        raise UserError(f"unknown tag scheme {name!r}; choose one of {', '.join(SCHEMES)} (or IOB2, IOBES)")
    return key


def detect_scheme(sequences: Iterable[Sequence[str]]) -> str:
    """The scheme of some tag sequences: E/S prefixes -> BIOES (BMES when M is used too); no B ->
    IO; B that only ever splits two same-type neighbours while I starts entities -> IOB1; else BIO."""
    prefixes: set[str] = set()
    b_after_other = i_starts = False
    for seq in sequences:
        prev = (OUTSIDE, None)
        for tag in seq:
            p, t = split_tag(tag)
            prefixes.add(p)
            if p == "B" and prev[1] != t:
                b_after_other = True
            if p == "I" and prev[1] != t:
                i_starts = True
            prev = (p, t)
    if prefixes & {"E", "S"}:
        return "BMES" if "M" in prefixes else "BIOES"
    if "M" in prefixes:
        return "BMES"
    if "B" not in prefixes:
        return "IO"
    return "IOB1" if (i_starts and not b_after_other) else "BIO"


def _allowed(prev: str | None, cur: str | None, scheme: str) -> bool:
    """Whether ``prev`` may be followed by ``cur`` (None: the sentence start / end) in ``scheme``."""
    pp, pt = split_tag(prev) if prev is not None else (OUTSIDE, None)
    cp, ct = split_tag(cur) if cur is not None else (OUTSIDE, None)
    if scheme == "IO":
        return True
    if scheme == "BIO":
        return cp != "I" or (pp in ("B", "I") and pt == ct)
    if scheme == "IOB1":
        return cp != "B" or (pp in ("B", "I") and pt == ct)
    inner = "M" if scheme == "BMES" else "I"
    if pp in ("B", inner):  # inside an entity: it must go on (inner) or end (E) with the same type
        return cp in (inner, "E") and ct == pt
    return cp in ("O", "B", "S")  # outside: O, or a new entity


def invalid_transitions(tags: Sequence[str], scheme: str) -> list[tuple[int, str, str]]:
    """The moves of one sequence that ``scheme`` forbids: (position, previous tag, tag), with
    ``"<s>"`` for the start and ``"</s>"`` for the end (position len(tags)): BIO ``O -> I-PER`` is
    (i, "O", "I-PER"); BIOES ``B-PER`` as the last tag is (n, "B-PER", "</s>")."""
    scheme = scheme_name(scheme)
    bad = []
    prev = None
    for i, tag in enumerate(list(tags) + [None]):
        if not _allowed(prev, tag, scheme):
            bad.append((i, "<s>" if prev is None else prev, "</s>" if tag is None else tag))
        prev = tag
    return bad


def count_invalid(sequences: Iterable[Sequence[str]], scheme: str) -> Counter:
    """``Counter({"O -> I-PER": 3, ...})`` over many sequences: the report of invalid transitions."""
    out: Counter = Counter()
    for seq in sequences:
        for _, a, b in invalid_transitions(seq, scheme):
            out[f"{a} -> {b}"] += 1
    return out


def allowed_transitions(labels: Sequence[str], scheme: str):
    """A CRF's constraints for ``labels`` (tag names in id order) under ``scheme``:
    (start [T], transitions [T, T], end [T]) as nested lists of bools (berts.model.crf.CRF's ``allowed``)."""
    scheme = scheme_name(scheme)
    start = [_allowed(None, c, scheme) for c in labels]
    trans = [[_allowed(p, c, scheme) for c in labels] for p in labels]
    end = [_allowed(p, None, scheme) for p in labels]
    return start, trans, end


def to_bio(tags: Sequence[str], scheme: str | None = None) -> list[str]:
    """One sequence in BIO (IOB2). ``scheme`` None: detected from this sequence alone. A tag that
    cannot continue its neighbour (``O I-PER`` in BIO, ``E`` without ``B``) starts a new entity, as
    conlleval and seqeval's default mode read it, so the result is always valid BIO."""
    scheme = detect_scheme([tags]) if scheme is None else scheme_name(scheme)
    out: list[str] = []
    prev_p, prev_t = OUTSIDE, None
    for tag in tags:
        p, t = split_tag(tag)
        if p == OUTSIDE:
            out.append(OUTSIDE)
        else:
            # does this tag continue the entity before it?
            cont = prev_t == t and prev_p != OUTSIDE
            if scheme in ("BIOES", "BMES"):
                cont = cont and p in ("I", "M", "E") and prev_p in ("B", "I", "M")
            elif p == "B":
                cont = False
            out.append(("I-" if cont else "B-") + t)
        prev_p, prev_t = p, t
        if scheme in ("BIOES", "BMES") and p in ("E", "S"):
            prev_p = "E"  # an entity closed here: the next tag cannot continue it
    return out


# --------------------------------------------------------------------------------------------- readers

@dataclass
class TaggedSentence:
    """One sentence: words and their tags (equal lengths), and where it was read (file, first line)."""
    tokens: list[str]
    tags: list[str]
    source: str = ""
    line: int = 0
    columns: list[list[str]] = field(default_factory=list)  # the middle columns of a CoNLL row, if any


def read_conll(path: str | os.PathLike, tag_column: int = -1, docstart: str = "-DOCSTART-") -> list[TaggedSentence]:
    """A CoNLL-style column file: one token a line, the token first and the tag in ``tag_column``
    (the last by default), whitespace-separated, any number of middle columns, a blank line between
    sentences, ``-DOCSTART-`` lines skipped. Chinese per-character files (``郑 B-PER``) are the same
    format. A line with one column, or without ``tag_column``, is a UserError naming file:line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    out: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    middle: list[list[str]] = []
    first = 0

    def flush():
        if tokens:
            out.append(TaggedSentence(list(tokens), list(tags), str(path), first, [list(m) for m in middle]))
        tokens.clear(); tags.clear(); middle.clear()

    with text_lines(path) as f:
        for n, raw in enumerate(f, 1):
            cols = raw.split()
            if not cols:
                flush()
                continue
            if cols[0] == docstart:
                flush()
                continue
            if len(cols) < 2:
                raise UserError(f"{path}:{n}: one column ({cols[0]!r}); a tagged line is 'TOKEN ... TAG'")
            try:
                tag = cols[tag_column]
            except IndexError:
                raise UserError(f"{path}:{n}: no column {tag_column} (the line has {len(cols)})") from None
            if tag_column in (0, -len(cols)):
                raise UserError(f"{path}:{n}: tag column {tag_column} is the token column")
            if not tokens:
                first = n
            tokens.append(cols[0])
            tags.append(tag)
            middle.append(cols[1:-1])
    flush()
    return out


def read_jsonl(path: str | os.PathLike, tokens_key: str = "tokens", tags_key: str = "tags") -> list[TaggedSentence]:
    """JSONL, one sentence a line: ``{"tokens": [...], "tags": [...]}`` (equal lengths, strings;
    tags may also be given under ``ner_tags``). UserError naming file:line otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    out = []
    with text_lines(path) as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{n}: expected a JSON object with {tokens_key!r} and {tags_key!r}")
            key = tags_key if tags_key in row or "ner_tags" not in row else "ner_tags"
            toks, tags = row.get(tokens_key), row.get(key)
            if not isinstance(toks, list) or not isinstance(tags, list):
                raise UserError(f"{path}:{n}: {tokens_key!r} and {tags_key!r} must both be lists")
            if len(toks) != len(tags):
                raise UserError(f"{path}:{n}: {len(tags)} tags for {len(toks)} tokens")
            if not all(isinstance(x, str) for x in toks) or not all(isinstance(x, str) for x in tags):
                raise UserError(f"{path}:{n}: tokens and tags must be strings")
            if toks:
                out.append(TaggedSentence(toks, tags, str(path), n))
    return out


def tag_fields(text_column=None, label_column=None) -> tuple[str, str]:
    """The record fields holding the words and the tags, from the data flags ``--text-column`` /
    ``--label-column`` (their table defaults ``text`` / ``label`` mean the tagging defaults
    ``tokens`` / ``tags``, as multiple choice maps ``text`` to ``context``)."""
    tokens = str(text_column) if text_column not in (None, "text") else "tokens"
    tags = str(label_column) if label_column not in (None, "label") else "tags"
    return tokens, tags


def _class_label_names(path: Path, field_name: str) -> list[str] | None:
    """A `datasets` directory whose tag column is ``Sequence(ClassLabel(names))`` (the hub's NER
    sets store ``ner_tags`` as ids): those names, from its dataset_info.json; else None."""
    try:
        info = json.loads((path / "dataset_info.json").read_text(encoding="utf-8"))
        inner = info["features"][field_name].get("feature") or {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    names = inner.get("names") if inner.get("_type") == "ClassLabel" else None
    return [str(n) for n in names] if isinstance(names, list) else None


def read_tag_records(path: str | os.PathLike, format: str = "auto", tokens_field: str = "tokens",
                     tags_field: str = "tags") -> list[TaggedSentence]:
    """A parquet file or a `datasets` save_to_disk directory, one sentence a row: a list of words
    in ``tokens_field`` and a list of tags in ``tags_field`` (``ner_tags`` when that is absent;
    ids are read through a ClassLabel's names). A bad row is a UserError naming file and row."""
    path = Path(path)
    records, report = read_records(path, format=format)
    names = None
    out = []
    for row, rec in records:
        at = f"{path}: row {row}"
        key = tags_field if tags_field in rec or "ner_tags" not in rec else "ner_tags"
        if names is None and report.format == "datasets":
            names = _class_label_names(path, key) or []
        toks, tags = rec.get(tokens_field), rec.get(key)
        if toks is None or tags is None:
            raise UserError(f"{at}: no field {tokens_field if toks is None else tags_field!r} "
                            f"(fields: {', '.join(map(str, rec))}; --text-column / --label-column name others)")
        if not isinstance(toks, (list, tuple)) or not isinstance(tags, (list, tuple)):
            raise UserError(f"{at}: {tokens_field!r} and {key!r} must both be lists")
        if names and all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < len(names) for t in tags):
            tags = [names[t] for t in tags]
        if len(toks) != len(tags):
            raise UserError(f"{at}: {len(tags)} tags for {len(toks)} tokens")
        if not all(isinstance(x, str) for x in toks) or not all(isinstance(x, str) for x in tags):
            raise UserError(f"{at}: tokens and tags must be strings (tag ids need a ClassLabel with names)")
        if toks:
            out.append(TaggedSentence(list(toks), list(tags), str(path), row))
    return out


def read_tagged(path: str | os.PathLike, tag_column: int = -1, *, format: str | None = "auto",
                tokens_field: str = "tokens", tags_field: str = "tags") -> list[TaggedSentence]:
    """By ``format`` (auto: by extension; a directory is a `datasets` save_to_disk): parquet and
    `datasets` -> :func:`read_tag_records`; ``.jsonl`` / ``.json`` -> :func:`read_jsonl`; anything
    else (``.conll``, ``.txt``, ``.tsv``...) -> :func:`read_conll`."""
    p = Path(path)
    fmt = format or "auto"
    if fmt == "auto":
        ext = p.suffix.lower()
        fmt = ("datasets" if p.is_dir() else "parquet" if ext in (".parquet", ".pq")
               else "jsonl" if ext in (".jsonl", ".json") else "conll")
    if fmt in ("parquet", "datasets"):
        return read_tag_records(path, fmt, tokens_field, tags_field)
    if fmt == "jsonl":
        return read_jsonl(path, tokens_field, tags_field)
    return read_conll(path, tag_column=tag_column)


def label_list(sentences: Iterable[TaggedSentence]) -> list[str]:
    """The tag set of some (training) sentences, sorted with ``O`` first, then by type and prefix
    (B before I...), so that the ids are stable across runs."""
    order = {p: i for i, p in enumerate("BIMESL")}
    seen = {t for s in sentences for t in s.tags}

    def key(tag):
        p, t = split_tag(tag)
        return (tag != OUTSIDE, t or "", order.get(p, 9), tag)

    return sorted(seen, key=key)


def check_labels(sentences: Iterable[TaggedSentence], labels: Iterable[str]) -> None:
    """UserError at the first tag not in ``labels`` (the training set's), naming its file:line."""
    known = set(labels)
    for s in sentences:
        for i, tag in enumerate(s.tags):
            if tag not in known:
                line = s.line + i if s.columns else s.line  # CoNLL: a token a line; JSONL: a sentence a line
                raise UserError(f"{s.source}:{line}: tag {tag!r} is not in the training labels "
                                f"({len(known)} tags: {', '.join(sorted(known)[:8])}{'...' if len(known) > 8 else ''})")


# --------------------------------------------------------------------------------------------- alignment

def b_to_i_map(labels: Sequence[str]) -> list[int]:
    """For ``label_all_subtokens``: label id -> the id its later sub-tokens get (``B-X`` -> ``I-X``
    when the label set has it, as transformers' run_ner does; ``S-X`` -> ``I-X`` likewise; else itself)."""
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for i, name in enumerate(labels):
        p, t = split_tag(name)
        out.append(index.get(f"I-{t}", i) if p in ("B", "S") else i)
    return out


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int], label_all_subtokens: bool = False,
                 b_to_i: Sequence[int] | None = None) -> list[int]:
    """Word labels -> one label per token: a word's label on its first sub-token, ``IGNORE_INDEX``
    (-100) on its other sub-tokens and on special tokens (``word_ids`` None). With
    ``label_all_subtokens`` the later sub-tokens get the label too (mapped through ``b_to_i`` when
    given, so a ``B-PER`` word's continuation is ``I-PER``)."""
    out = []
    prev = None
    for w in word_ids:
        if w is None:
            out.append(IGNORE_INDEX)
        elif w != prev:
            out.append(word_labels[w])
        elif label_all_subtokens:
            lab = word_labels[w]
            out.append(b_to_i[lab] if b_to_i is not None and lab >= 0 else lab)
        else:
            out.append(IGNORE_INDEX)
        prev = w
    return out


def word_pieces(tokenizer, words: Sequence[str]) -> list[list[int]]:
    """Each word's sub-token ids with the tokenizer's own word boundaries (its backend's
    ``encode(words, is_pretokenized=True).word_ids``, the same as transformers'
    ``is_split_into_words``). A word that tokenizes to nothing (a control character) gets [UNK],
    so that every word has a first sub-token to carry its label and its prediction."""
    return word_pieces_batch(tokenizer, [words])[0]


def word_pieces_batch(tokenizer, sentences: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """:func:`word_pieces` for many sentences in one call of the backend (its threads do the work)."""
    backend = getattr(tokenizer, "backend", tokenizer)
    encs = backend.encode_batch([list(w) for w in sentences], is_pretokenized=True, add_special_tokens=False)
    unk = tokenizer.unk_id
    out = []
    for words, enc in zip(sentences, encs):
        pieces: list[list[int]] = [[] for _ in words]
        for tok, w in zip(enc.ids, enc.word_ids):
            if w is not None:
                pieces[w].append(tok)
        out.append([p or [unk] for p in pieces])
    return out


def split_words(tokenizer, text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Raw text -> (words, their character spans in ``text``), the words being the tokenizer's own
    (whitespace and punctuation splits, one word per Chinese character), so that a prediction made
    per word maps back to the original string, accents and case included."""
    words, offsets, _ = split_words_batch(tokenizer, [text])[0]
    return words, offsets


def split_words_batch(tokenizer, texts: Sequence[str]) -> list[tuple[list[str], list[tuple[int, int]], list[list[int]]]]:
    """:func:`split_words` for many texts in one call of the backend, each with its words'
    sub-token ids too: ``(words, offsets, pieces)`` per text. The pieces are what
    :func:`word_pieces` gives for those words (WordPiece never looks across a word boundary), so
    serving raw text tokenizes once, not twice."""
    backend = getattr(tokenizer, "backend", tokenizer)
    out = []
    for text, enc in zip(texts, backend.encode_batch(list(texts), add_special_tokens=False)):
        spans: list[list[int]] = []
        pieces: list[list[int]] = []
        last = None
        for w, tok, (a, b) in zip(enc.word_ids, enc.ids, enc.offsets):
            if w is None:
                continue
            if w != last:  # word ids rise along the text: a new one starts a new word
                spans.append([a, b])
                pieces.append([])
                last = w
            spans[-1][1] = b
            pieces[-1].append(tok)
        offsets = [(a, b) for a, b in spans]
        out.append(([text[a:b] for a, b in offsets], offsets, pieces))
    return out


def word_windows(lengths: Sequence[int], max_tokens: int, stride: int) -> list[tuple[int, int]]:
    """Split words with ``lengths`` sub-tokens each into windows [start, end) of whole words, each
    at most ``max_tokens`` sub-tokens (a single longer word is a window alone, cut by the caller),
    consecutive windows sharing up to ``stride`` sub-tokens of words. Every word is in a window;
    a sentence that fits is one window."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    n = len(lengths)
    out: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end, used = start, 0
        while end < n and used + lengths[end] <= max_tokens:
            used += lengths[end]
            end += 1
        end = max(end, start + 1)
        out.append((start, end))
        if end >= n:
            break
        # step back over up to `stride` sub-tokens of words, leaving room for the next new word
        # (so every window adds at least one word the previous one did not have)
        nxt, overlap = end, 0
        while (nxt - 1 > start and overlap + lengths[nxt - 1] <= stride
               and overlap + lengths[nxt - 1] + lengths[end] <= max_tokens):
            nxt -= 1
            overlap += lengths[nxt]
        start = nxt
    return out


def merge_windows(windows: Sequence[tuple[int, int]], predictions: Sequence[Sequence], n_words: int) -> list:
    """Window predictions (one per word of each window) -> exactly one per word: from the window
    where the word is most central (farthest from either edge; the earlier window on a tie), so a
    word near a cut is predicted with context on both sides."""
    best: list = [None] * n_words
    depth = [-1] * n_words
    for (start, end), preds in zip(windows, predictions, strict=True):
        if len(preds) != end - start:
            raise ValueError(f"window [{start}, {end}) has {end - start} words but {len(preds)} predictions")
        for i in range(start, end):
            d = min(i - start, end - 1 - i)
            if d > depth[i]:
                depth[i], best[i] = d, preds[i - start]
    missing = [i for i, d in enumerate(depth) if d < 0]
    if missing:
        raise ValueError(f"words {missing[:5]} are in no window")
    return best


def tagging_features(tokenizer, words: Sequence[str], word_labels: Sequence[int] | None = None, *,
                     max_length: int = 128, stride: int = 32, label_all_subtokens: bool = False,
                     b_to_i: Sequence[int] | None = None) -> list[dict]:
    """One sentence -> model inputs, one dict per window: ``input_ids`` ([CLS] pieces [SEP]),
    ``token_type_ids``, ``attention_mask``, ``word_ids`` (the sentence's word index per token, None
    for specials), ``labels`` (when ``word_labels`` is given, see :func:`align_labels`),
    ``window`` ((start, end) in words, for :func:`merge_windows`) and ``first`` (the position of
    each window word's first sub-token, where its prediction is read)."""
    if max_length < 3:
        raise UserError(f"max length must be at least 3 for a tagged window, got {max_length}")
    return _features(tokenizer, word_pieces(tokenizer, words), word_labels, max_length=max_length, stride=stride,
                     label_all_subtokens=label_all_subtokens, b_to_i=b_to_i)


def tagging_features_batch(tokenizer, sentences: Sequence[Sequence[str]],
                           labels: Sequence[Sequence[int]] | None = None, pieces=None, **kw) -> list[list[dict]]:
    """:func:`tagging_features` for many sentences (one backend call): a list of windows per
    sentence. ``pieces``: each sentence's words' sub-token ids when the caller has them already
    (:func:`split_words_batch`), so the backend is not called again."""
    pieces = word_pieces_batch(tokenizer, sentences) if pieces is None else pieces
    if kw.get("max_length", 128) < 3:
        raise UserError(f"max length must be at least 3 for a tagged window, got {kw['max_length']}")
    return [_features(tokenizer, p, None if labels is None else labels[i], **kw) for i, p in enumerate(pieces)]


def _features(tokenizer, pieces, word_labels, *, max_length=128, stride=32, label_all_subtokens=False, b_to_i=None):
    budget = max_length - 2  # [CLS] and [SEP]
    out = []
    for start, end in word_windows([len(p) for p in pieces], budget, stride):
        ids, wids, firsts = [tokenizer.cls_id], [None], []
        for w in range(start, end):
            piece = pieces[w][:budget]  # a single word longer than the window keeps its head
            firsts.append(len(ids))  # where the word's first sub-token sits: its prediction is read there
            ids += piece
            wids += [w] * len(piece)
        ids.append(tokenizer.sep_id)
        wids.append(None)
        feat = {"input_ids": ids, "token_type_ids": [0] * len(ids), "attention_mask": [1] * len(ids),
                "word_ids": wids, "window": (start, end), "first": firsts}
        if word_labels is not None:
            feat["labels"] = align_labels(wids, word_labels, label_all_subtokens, b_to_i)
        out.append(feat)
    return out


MODEL_KEYS = ("input_ids", "token_type_ids", "attention_mask")


def pad_batch(features: Sequence[dict], pad_id: int, pad_to_multiple_of: int | None = None,
              keys: Sequence[str] = MODEL_KEYS + ("labels",)) -> dict:
    """Windows -> a batch of [B, L] LongTensors, right-padded to the longest (rounded up to
    ``pad_to_multiple_of``): ``input_ids`` with ``pad_id``, ``labels`` with -100 (ignored), the
    rest with 0 -- transformers' DataCollatorForTokenClassification. Keys a feature lacks are left out."""
    import torch  # here: reading and windowing data never needs torch

    width = max(len(f["input_ids"]) for f in features)
    if pad_to_multiple_of:
        width = -(-width // pad_to_multiple_of) * pad_to_multiple_of
    fill = {"input_ids": pad_id, "labels": IGNORE_INDEX}
    out = {}
    for key in keys:
        if key not in features[0]:
            continue
        value = fill.get(key, 0)
        out[key] = torch.tensor([list(f[key]) + [value] * (width - len(f[key])) for f in features], dtype=torch.long)
    return out


def first_token_predictions(word_ids: Sequence[int | None], token_predictions: Sequence, window: tuple[int, int]) -> list:
    """A window's per-token predictions -> one per word of the window (its first sub-token's), the
    input :func:`merge_windows` takes."""
    out: list = [None] * (window[1] - window[0])
    for w, pred in zip(word_ids, token_predictions):
        if w is not None and out[w - window[0]] is None:
            out[w - window[0]] = pred
    return out


# --------------------------------------------------------------------------------------------- output

def bio_entities(tags: Sequence[str], scheme: str | None = None) -> list[tuple[str, int, int]]:
    """The entities of predicted tags: [(type, start word, end word exclusive)], read leniently
    (the tags are first made valid BIO by :func:`to_bio`, as seqeval's default mode reads them)."""
    out = []
    for i, tag in enumerate(to_bio(tags, scheme)):
        if tag.startswith("B-"):
            out.append([tag[2:], i, i + 1])
        elif tag.startswith("I-"):
            out[-1][2] = i + 1
    return [tuple(e) for e in out]


def entity_spans(text: str, offsets: Sequence[tuple[int, int]], tags: Sequence[str],
                 scores: Sequence[float] | None = None, scheme: str | None = None) -> list[dict]:
    """Word tags of a raw text (``offsets`` from :func:`split_words`) -> entities as predict
    prints them: ``{"type", "text", "start", "end", "score"}`` with character offsets into
    ``text`` (end exclusive) and the mean of the words' scores (transformers' "simple" aggregation)."""
    out = []
    for typ, a, b in bio_entities(tags, scheme):
        start, end = offsets[a][0], offsets[b - 1][1]
        ent = {"type": typ, "text": text[start:end], "start": start, "end": end}
        if scores is not None:
            ent["score"] = float(sum(scores[a:b]) / (b - a))
        out.append(ent)
    return out


def conll_text(sentences: Sequence[TaggedSentence], predicted: Sequence[Sequence[str]]) -> str:
    """``TOKEN GOLD PREDICTED`` lines, a blank line after each sentence (conlleval's input); a
    sentence without gold tags (raw input) gets ``TOKEN PREDICTED``."""
    lines = []
    for s, pred in zip(sentences, predicted, strict=True):
        if len(pred) != len(s.tokens):
            raise ValueError(f"{len(pred)} predicted tags for {len(s.tokens)} tokens ({s.source}:{s.line})")
        for i, (tok, p) in enumerate(zip(s.tokens, pred)):
            lines.append(f"{tok} {s.tags[i]} {p}" if s.tags else f"{tok} {p}")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")


def write_conll(path: str | os.PathLike, sentences: Sequence[TaggedSentence],
                predicted: Sequence[Sequence[str]]) -> Path:
    """:func:`conll_text` into ``path``."""
    path = Path(path)
    path.write_text(conll_text(sentences, predicted), encoding="utf-8")
    return path
