"""Serving a token-classification directory (NER, POS): the one path `berts predict`, `berts
evaluate`, the Python API and the NER benchmark go through::

    tagger = berts.Tagger.from_pretrained("runs/ner/best")        # int8=True: dynamic int8
    tagger.predict(["Alice moved to Paris."])                      # raw text -> entities
    # [[{"type": "PER", "text": "Alice", "start": 0, "end": 5, "score": 0.98}, {"type": "LOC", ...}]]
    tags, scores = tagger.tag([["Alice", "moved", "to", "Paris", "."]])  # words -> a tag per word
    tagger.evaluate(sentences)                                     # TaggedSentence rows -> metrics

Raw text is cut into the tokenizer's own words with their character spans (data/tagging.py's
split_words: whitespace, punctuation, one word per CJK character), each word gets the tag of its
first sub-token (the CRF's Viterbi path when the directory has ``crf.json``), and the entities are
read from those tags leniently (as seqeval's default mode) with offsets into the original string
and the mean of their words' probabilities as score (transformers' "simple" aggregation).
Windows: a text longer than the model's window is split into overlapping windows of whole words,
each word predicted from the window where it is most central (with a CRF, a window cut inside
its sentence is decoded with ``free_start`` / ``free_end``: no start / end score or constraint at
the cut, berts.model.crf). Batches are taken longest first
and the results come back in the input order; the unpad / pack fast paths are on (without
autograd, packed rows attend each sequence alone: no padded rows, no masks), and on the CPU in fp32 the linear layers' weights are packed once for oneDNN with the FFN's GELU fused
into its up-projection (berts.model.onednn).
"""
from __future__ import annotations

import json
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from berts.errors import UserError
from berts.util.fileio import read_text
from berts.compress.transforms import quantize_int8
from berts.data.tagging import TaggedSentence
from berts.data.tagging import check_labels
from berts.data.tagging import detect_scheme
from berts.data.tagging import entity_spans, split_words_batch
from berts.hf import load
from berts.model.onednn import pack_linears
from berts.serve.predict import check_batch_size
from berts.tasks.token_classification import BertForTokenClassification
from berts.tasks.token_classification import TAGGING_KEY
from berts.tasks.token_classification import TaggingDataset
from berts.tasks.token_classification import evaluation
from berts.tasks.token_classification import tag_sentences
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.device import resolve_device

DEFAULT_MAX_LENGTH = 128
# Sentences per batch when the caller gives none. On the CPU: 32 sentences (~800 tokens of short
# texts). With attention per sequence (packed rows without autograd) and the GELU fused into the
# FFN's up-projection (berts.model.onednn), 32 was 2-6% faster than 16 at presets mini and small on
# one thread, where the padded, masked rows had been fastest at 16 (experiments/2026-12-06-ner/
# README.md); a GPU wants bigger batches.
CPU_BATCH, GPU_BATCH = 32, 64


def is_tagger(directory) -> bool:
    """Whether a model directory is a token classifier (ours or transformers'), from config.json alone."""
    try:
        d = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    archs = d.get("architectures") if isinstance(d, dict) else None
    return bool(archs) and isinstance(archs[0], str) and archs[0].endswith("ForTokenClassification")


class Tagger:
    """A fine-tuned token classifier (with or without its CRF), ready to serve."""

    def __init__(self, model, tokenizer, directory: str | None = None, int8: bool = False):

        self.model, self.tokenizer, self.directory, self.int8 = model, tokenizer, directory, int8
        self.settings = dict(getattr(model.config, "finetune_data", None) or {})
        self.tagging = dict(self.settings.get(TAGGING_KEY) or {})  # scheme, stride, label_all_subtokens (berts' runs)

    @classmethod
    def from_pretrained(cls, directory, int8: bool = False, device: str = "auto") -> "Tagger":
        """Load a token-classification directory (berts' or transformers'); one-line UserError for
        another kind of directory or one whose head weights are missing."""

        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            model = load(directory)
        if not isinstance(model, BertForTokenClassification):
            raise UserError(f"{directory}: a {type(model).__name__}, not a token-classification model "
                            "(berts finetune --task token-classification)")
        missing = sorted(set(getattr(model, "loading_info", {}).get("missing_keys") or []))
        if missing:
            raise UserError(f"{directory}: not a fine-tuned tagger: {len(missing)} weights are not in the checkpoint "
                            f"({', '.join(missing[:4])}); its tags would come from random weights")
        tokenizer = load_tokenizer(directory)
        model.to(resolve_device(device)).eval()
        model.set_fast_path(unpad=True, pack=True)  # without autograd packed rows attend per sequence
        if model.device.type == "cpu" and not int8:  # fp32 on the CPU: weights packed once for oneDNN
            pack_linears(model)
        if int8:

            if model.device.type != "cpu":
                raise UserError(f"int8 runs on the CPU (torch's dynamic int8 kernels); got device {model.device}")
            model = quantize_int8(model, int8)
        return cls(model, tokenizer, str(directory), int8)

    # ------------------------------------------------------------------ properties
    @property
    def labels(self) -> list[str]:
        return self.model.labels

    @property
    def scheme(self) -> str:
        """The tag scheme: the run's (or the CRF's), else detected from the label names."""

        return self.tagging.get("scheme") or self.model.crf_scheme or detect_scheme([self.labels])

    @property
    def max_length(self) -> int:
        positions = self.model.config.max_position_embeddings
        return min(int(self.settings.get("max_length") or DEFAULT_MAX_LENGTH), positions)

    @property
    def default_batch_size(self) -> int:
        return CPU_BATCH if self.model.device.type == "cpu" else GPU_BATCH

    def autocast(self):
        if self.model.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    # ------------------------------------------------------------------ running
    def dataset(self, sentences, tags=None, pieces=None):

        return TaggingDataset(sentences, self.tokenizer, self.labels, tags, max_length=self.max_length,
                              stride=int(self.tagging.get("stride", 32)),
                              label_all_subtokens=bool(self.tagging.get("label_all_subtokens", False)),
                              pieces=pieces)

    def tag(self, sentences, batch_size: int | None = None, pieces=None,
            progress: bool = False) -> tuple[list[list[str]], list[list[float]]]:
        """Words (a list of word lists) -> (a tag per word, its probability), in the input order.
        ``pieces``: the words' sub-token ids when tokenized already (split_words_batch).
        ``progress``: a bar on stderr, one tick per batch of windows (off by default in the API; the
        commands follow berts.util.progress's rule: a terminal, not --quiet)."""

        batch_size = check_batch_size(self.default_batch_size if batch_size is None else batch_size)
        sentences = [list(s) for s in sentences]
        empty = [i for i, s in enumerate(sentences) if not s]
        keep = [s for s in sentences if s]
        tags: list[list[str]] = []
        scores: list[list[float]] = []
        if keep:
            ds = self.dataset(keep, pieces=None if pieces is None else [p for p in pieces if p])
            order = np.argsort(-ds.lengths, kind="stable")  # longest first: less padding per batch
            ids, scores, _ = tag_sentences(self.model, ds, batch_size, self.model.device, self.autocast, order=order,
                                           progress="predict" if progress else None)
            names = self.labels  # a property that builds the list: once, not once per word
            tags = [[names[i] for i in s] for s in ids]
        for i in empty:  # an empty sentence has no tags
            tags.insert(i, [])
            scores.insert(i, [])
        return tags, scores

    def predict(self, texts, batch_size: int | None = None, progress: bool = False) -> list[list[dict]]:
        """Raw texts -> their entities: ``{"type", "text", "start", "end", "score"}``, character
        offsets into each text (end exclusive)."""
        return [r["entities"] for r in self.predict_words(texts, batch_size, progress)]

    def predict_words(self, texts, batch_size: int | None = None, progress: bool = False) -> list[dict]:
        """Raw texts -> per text ``{"words", "offsets", "tags", "scores", "entities"}``."""

        if isinstance(texts, str):
            raise UserError("predict takes a list of texts, not one string (wrap it: [text])")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise UserError(f"text {i} is not a string: {t!r}")
        cut = split_words_batch(self.tokenizer, texts)  # one backend call: words, offsets and their pieces
        tags, scores = self.tag([w for w, _, _ in cut], batch_size, pieces=[p for _, _, p in cut], progress=progress)
        scheme = self.scheme
        return [{"words": w, "offsets": o, "tags": g, "scores": s,
                 "entities": entity_spans(t, o, g, s, scheme)}
                for t, (w, o, _), g, s in zip(texts, cut, tags, scores)]

    def evaluate(self, sentences, batch_size: int | None = None, mode: str = "default",
                 progress: bool = False) -> tuple[dict, list[list[str]]]:
        """TaggedSentence rows (with tags) -> (the report of berts.metrics.tagging.tagging_report,
        plus ``examples`` and the flat numbers; the predicted tags). A tag the model does not know
        is a one-line UserError naming file:line."""

        check_labels(sentences, self.labels)
        predicted, _ = self.tag([s.tokens for s in sentences], batch_size, progress=progress)
        metrics = evaluation([s.tags for s in sentences], predicted, self.scheme, mode)
        report = metrics.pop("report")
        report.update(metrics)
        report["sentences"] = len(sentences)
        return report, predicted


# ---------------------------------------------------------------------------------- inputs

def read_words(path, fmt: str = "auto", shown: str | None = None) -> tuple[str, list]:
    """A predict input -> (kind, rows). ``kind`` "text": one raw text a line -> [(line, text)];
    "words": CoNLL columns (a token a line, blank line between sentences; a tag column, if any,
    kept as gold) or JSONL ``{"tokens": [...]}`` / ``{"text": "..."}`` -> TaggedSentence rows
    (tags [] when the input has none). ``fmt``: auto (by extension: .jsonl/.json JSONL; .conll,
    .bio, .bmes, .iob, .iob2, .bioes, .ner CoNLL; anything else raw text), text, conll or jsonl."""

    path = Path(path)
    shown = shown or str(path)
    if not path.is_file():
        raise UserError(f"{shown}: no such file")
    if fmt == "auto":
        ext = path.suffix.lower()
        fmt = ("jsonl" if ext in (".jsonl", ".json") else
               "conll" if ext in (".conll", ".bio", ".bmes", ".iob", ".iob2", ".bioes", ".ner") else "text")
    lines = read_text(path, "a text, CoNLL or JSONL file").splitlines()
    if fmt == "text":
        return "text", [(n, t) for n, t in enumerate(lines, 1) if t.strip()]
    out = []
    if fmt == "jsonl":
        texts = []
        for n, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                raise UserError(f"{shown}:{n}: not valid JSON ({e.msg})") from None
            if isinstance(row, dict) and isinstance(row.get("text"), str):
                texts.append((n, row["text"]))
                continue
            toks = row.get("tokens") if isinstance(row, dict) else None
            if not isinstance(toks, list) or not all(isinstance(t, str) for t in toks):
                raise UserError(f"{shown}:{n}: expected {{\"tokens\": [strings]}} or {{\"text\": string}}")
            tags = row.get("tags", row.get("ner_tags")) or []
            if tags and len(tags) != len(toks):
                raise UserError(f"{shown}:{n}: {len(tags)} tags for {len(toks)} tokens")
            out.append(TaggedSentence(toks, [str(t) for t in tags], shown, n))
        if texts and out:
            raise UserError(f"{shown}: mixes {{\"text\"}} and {{\"tokens\"}} rows; use one kind per file")
        return ("text", texts) if texts else ("words", out)
    if fmt != "conll":
        raise UserError(f"input format {fmt!r}: choose auto, text, conll or jsonl")
    toks: list[str] = []
    tags: list[str] = []
    first = 0
    for n, raw in enumerate(lines + [""], 1):
        cols = raw.split()
        if not cols or cols[0] == "-DOCSTART-":
            if toks:
                if tags and len(tags) != len(toks):
                    raise UserError(f"{shown}:{first}: a sentence with tags on some lines only")
                out.append(TaggedSentence(list(toks), list(tags), shown, first, [[]] * len(toks)))
            toks, tags = [], []
            continue
        if not toks:
            first = n
        toks.append(cols[0])
        if len(cols) > 1:
            tags.append(cols[-1])
    return "words", out
