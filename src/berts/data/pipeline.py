"""``prepare``: corpus -> tokenized pretraining instances in shards, streaming and in parallel.

The main process reads the files and groups documents into *pools* of about ``pool_bytes`` of
text (at least two documents each); workers split sentences, tokenize, find word/unit
boundaries and make the instances of a pool (random B of ``nsp`` from another document of the
same pool); the main process writes the pools' instances in order. A pool's randomness is
seeded from ``(seed, pool number)`` alone, so the shards are byte-identical for the same inputs
and seed whatever the number of workers. Memory holds a few pools, whatever the corpus size.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from berts.data import corpus as corpus_mod
from berts.data.corpus import FORMATS, Corpus, Problems, RawDocument, document_sentences
from berts.data.instances import create_instances, num_labels, num_special, objectives
from berts.data.segment import EntityMatcher, Segmenter, jieba_available, read_lexicon, token_bits
from berts.data.shards import CONTINUATION_FILE, FORMAT, META_FILE, VERSION, ShardWriter, token_dtype
from berts.errors import UserError, where
from berts.objectives.registry import get as get_objective
from berts.util.fileio import atomic_write_file, fsync_path, is_storage_error, storage_error
from berts.tokenizer.wordpiece import load_tokenizer

SEGMENTER_CHOICES = (None, "auto", "jieba", "gold", "lexicon")
POOL_BYTES = 1 << 20


def _tokenizer_digest(path: Path) -> str:
    """sha256 over the tokenizer's vocabulary files (tokenizer.json, vocab.txt, or the file given)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else [path / n for n in ("tokenizer.json", "vocab.txt") if (path / n).is_file()]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


# ----------------------------------------------------------------------------- pools
def _pools(docs: Iterable[RawDocument], pool_bytes: int) -> Iterator[list[RawDocument]]:
    """Groups of consecutive documents of >= pool_bytes characters and >= 2 documents (the last
    group takes a lone trailing document)."""
    held: list[RawDocument] | None = None
    cur: list[RawDocument] = []
    size = 0
    for doc in docs:
        cur.append(doc)
        size += sum(len(line) for line in doc.lines)
        if size >= pool_bytes and len(cur) >= 2:
            if held is not None:
                yield held
            held, cur, size = cur, [], 0
    if held is not None and len(cur) == 1:
        held, cur = held + cur, []
    if held is not None:
        yield held
    if cur:
        yield cur


# ----------------------------------------------------------------------------- worker side
_W: dict = {}


def _init_worker(config: dict, single_thread: bool) -> None:
    if single_thread:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tok = load_tokenizer(config["tokenizer_dir"])
    lexicon = config["lexicon_entries"]
    matcher = EntityMatcher(tok.encode_ids_batch(lexicon)) if lexicon else None
    _W.clear()
    _W.update(config=config, tok=tok, continuation=np.asarray(tok.is_continuation),
              segmenter=Segmenter(config["segmenter"], lexicon or ()), matcher=matcher,
              sources=config["sources"])


def _process_pool(task: tuple[int, list[RawDocument]]) -> dict:
    number, docs = task
    cfg, tok, cont = _W["config"], _W["tok"], _W["continuation"]
    units = cfg["units"]
    problems: list[tuple[str, str, str]] = []
    kept, sentences = [], []
    for doc in docs:
        sents, problem = document_sentences(doc, cfg["text_field"])
        if problem:
            problems.append(("bad_record", where(_W["sources"][doc.source], doc.line), problem))
            continue
        kept.append((doc, len(sents)))
        sentences.extend(sents)

    if units:
        segmenter, matcher = _W["segmenter"], _W["matcher"]
        encodings = tok.backend.encode_batch(sentences, add_special_tokens=False)
        ids_list, bits_list = [], []
        for text, enc in zip(sentences, encodings):
            ids = enc.ids
            ids_list.append(ids)
            if not ids:
                bits_list.append([])
                continue
            starts = segmenter.word_starts(text)
            entities = matcher.find(ids, cont) if matcher else ()
            bits_list.append(token_bits(ids, enc.offsets if starts is not None else None, starts, cont,
                                        entities).tolist())
    else:
        ids_list, bits_list = tok.encode_ids_batch(sentences), None

    documents, doc_bits, sources = [], ([] if units else None), []
    n_sentences = 0
    k = 0
    for doc, count in kept:
        sl = slice(k, k + count)
        k += count
        pairs = [(i, s) for i, s in enumerate(ids_list[sl]) if s]
        if not pairs:
            problems.append(("empty_document", where(_W["sources"][doc.source], doc.line),
                             "empty document (no tokens), skipped"))
            continue
        documents.append([s for _, s in pairs])
        sources.append(where(_W["sources"][doc.source], doc.line))
        if units:
            b = bits_list[sl]
            doc_bits.append([b[i] for i, _ in pairs])
        n_sentences += len(pairs)

    objective = cfg["objective"]
    need = 1 if objective == "none" else get_objective(objective).min_documents
    if 0 < len(documents) < need:  # e.g. nothing to draw a random B from
        problems.append(("unpaired_document", sources[0], f"the only document of its pool: {objective} has no "
                         "other document to draw a random B segment from, skipped"))
        documents = []
    rng = random.Random(f"berts-prepare/{cfg['seed']}/{number}")
    instances = create_instances(documents, rng, objective=objective, max_seq_length=cfg["max_seq_length"],
                                 short_seq_prob=cfg["short_seq_prob"], cls_id=tok.cls_id, sep_id=tok.sep_id,
                                 bits=doc_bits, continuation=cont, dupe_factor=cfg["dupe_factor"]) if documents else []
    lengths = np.fromiter((len(x.tokens) for x in instances), dtype=np.int64, count=len(instances))
    flat: list[int] = []
    for x in instances:
        flat.extend(x.tokens)
    flat_bits = None
    if units:
        fb: list[int] = []
        for x in instances:
            fb.extend(x.bits)
        flat_bits = np.array(fb, dtype=np.uint8)
    return {
        "number": number,
        "tokens": np.array(flat, dtype=cfg["token_dtype"]),
        "lengths": lengths,
        "b_start": np.fromiter((x.b_start for x in instances), dtype=np.int64, count=len(instances)),
        "labels": np.fromiter((x.label for x in instances), dtype=np.int64, count=len(instances)),
        "units": flat_bits,
        "documents": len(documents),
        "sentences": n_sentences,
        "problems": problems,
    }


# ----------------------------------------------------------------------------- main side
def _check_args(objective, max_seq_length, short_seq_prob, dupe_factor, workers, input_format, segmenter,
                shard_size):
    if objective not in objectives():
        raise UserError(f"objective must be one of {', '.join(objectives())}, got {objective!r}")
    if not isinstance(max_seq_length, int) or max_seq_length < num_special(objective) + 2:
        raise UserError(f"max_seq_length must be at least {num_special(objective) + 2}, got {max_seq_length!r}")
    if not 0.0 <= short_seq_prob <= 1.0:
        raise UserError(f"short_seq_prob must be in [0, 1], got {short_seq_prob!r}")
    if dupe_factor < 1:
        raise UserError(f"dupe_factor must be >= 1, got {dupe_factor!r}")
    if workers < 1:
        raise UserError(f"workers must be >= 1, got {workers!r}")
    if input_format not in FORMATS:
        raise UserError(f"input format must be one of {', '.join(FORMATS)}, got {input_format!r}")
    if segmenter not in SEGMENTER_CHOICES:
        raise UserError(f"segmenter must be one of auto, jieba, gold, lexicon (or none), got {segmenter!r}")
    if shard_size < 1:
        raise UserError(f"shard_size must be >= 1, got {shard_size!r}")


def _has_cjk(files: list[Path], sample_bytes: int = 1 << 16) -> bool:
    for path in files[:3]:
        try:
            with corpus_mod.open_binary(path) as f:
                text = f.read(sample_bytes).decode("utf-8", errors="ignore")
        except (OSError, EOFError):
            continue
        if corpus_mod.CJK.search(text):
            return True
    return False


def _text_size(path: Path) -> int:
    """Bytes of text in a file (a gzip file's size from its trailer, modulo 4 GiB)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(2) == b"\x1f\x8b" and size >= 18:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    return size


def _clear_output(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    old = [p for p in out.iterdir() if p.name == META_FILE or p.name == CONTINUATION_FILE
           or (p.name.startswith("shard_") and p.suffix in (".bin", ".npy"))]
    if old and not overwrite:
        raise UserError(f"{out}: already holds prepared data; pass --overwrite to replace it")
    # meta.json first: a kill mid-way must not leave it describing shards that are gone
    for p in sorted(old, key=lambda p: p.name != META_FILE):
        p.unlink()


def prepare(inputs: str | os.PathLike | Iterable[str | os.PathLike], tokenizer_dir: str | os.PathLike,
            out_dir: str | os.PathLike, *, objective: str = "nsp", max_seq_length: int = 128,
            short_seq_prob: float = 0.1, dupe_factor: int = 1, seed: int = 12345, workers: int = 2,
            input_format: str = "auto", segmenter: str | None = None, lexicon: str | os.PathLike | None = None,
            text_field: str = "text", shard_size: int = 1_000_000, pool_bytes: int = POOL_BYTES,
            overwrite: bool = False, progress: bool = False, warnings_stream=None) -> dict:
    """Make pretraining shards from text files (see the module docstring and berts.data.shards).

    ``segmenter``: None (words are ``##`` runs), ``"auto"`` (jieba when the first 64 KiB of one of
    the first three files hold Chinese characters and jieba is installed), ``"jieba"``, ``"gold"`` (words separated by spaces in the corpus)
    or ``"lexicon"`` (forward maximum matching with ``lexicon``). A ``lexicon`` also marks its
    entries as knowledge units for entity masking. Returns a summary dict (counts, MB/s).
    """
    start = time.perf_counter()
    _check_args(objective, max_seq_length, short_seq_prob, dupe_factor, workers, input_format, segmenter, shard_size)
    problems = Problems(stream=warnings_stream)
    corpus = Corpus(inputs, input_format=input_format, text_field=text_field, problems=problems)  # as `tokenizer train`
    files, formats = corpus.files, corpus.formats
    tokenizer_dir = Path(tokenizer_dir)
    tok = load_tokenizer(tokenizer_dir)
    entries = read_lexicon(lexicon) if lexicon is not None else []
    if segmenter == "auto":
        segmenter = None
        if _has_cjk(files):
            if jieba_available():
                segmenter = "jieba"
            else:
                print("berts: warning: Chinese text found but jieba is not installed: whole-word masking "
                      "will see single characters (pip install 'berts[zh]')", file=warnings_stream or sys.stderr)
    Segmenter(segmenter, entries)  # checks the choice early
    units = segmenter is not None or bool(entries)
    out = Path(out_dir)
    _clear_output(out, overwrite)

    config = {
        "tokenizer_dir": str(tokenizer_dir), "objective": objective, "max_seq_length": max_seq_length,
        "short_seq_prob": short_seq_prob, "dupe_factor": dupe_factor, "seed": seed, "text_field": text_field,
        "segmenter": segmenter, "lexicon_entries": entries, "units": units,
        "token_dtype": token_dtype(tok.vocab_size).str, "sources": [str(f) for f in files],
    }
    read = [0]
    pools = enumerate(_pools(corpus.documents(read), pool_bytes))
    writer = ShardWriter(out, vocab_size=tok.vocab_size, units=units, shard_size=shard_size)
    counts = {"documents": 0, "sentences": 0, "instances": 0, "tokens": 0}
    lengths_hist = np.zeros(max_seq_length + 1, dtype=np.int64)
    labels = np.zeros(num_labels(objective), dtype=np.int64)  # instances per class

    total = sum(_text_size(f) for f in files)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, unit="B", unit_scale=True, desc="prepare", file=sys.stderr, dynamic_ncols=True)

    def take(result: dict) -> None:
        problems.merge(result["problems"])
        writer.add(result["tokens"], result["lengths"], result["b_start"], result["labels"], result["units"])
        counts["documents"] += result["documents"]
        counts["sentences"] += result["sentences"]
        counts["instances"] += len(result["lengths"])
        counts["tokens"] += int(result["lengths"].sum())
        lengths_hist[:] += np.bincount(result["lengths"], minlength=max_seq_length + 1)[:max_seq_length + 1]
        if objective != "none":
            labels[:] += np.bincount(result["labels"], minlength=len(labels))[:len(labels)]
        if bar is not None:
            bar.update(min(read[0], total) - bar.n)

    try:
        _make_shards(workers, config, pools, take)
        shards = writer.close()
        if counts["instances"] == 0:
            why = "; ".join(problems.messages[:3]) or "the inputs hold no text"
            raise UserError(f"no instances were made ({why})")
        np.save(out / CONTINUATION_FILE, np.asarray(tok.is_continuation, dtype=bool))
        fsync_path(out / CONTINUATION_FILE)
    except BaseException as exc:
        # shards without meta.json are not prepared data (the reader refuses them): remove them
        _abort(writer, out)
        if bar is not None:
            bar.close()
        if isinstance(exc, OSError) and is_storage_error(exc):  # a full disk...: one line naming --out
            raise storage_error(out, exc) from None
        raise
    if bar is not None:
        bar.close()

    n = counts["instances"]
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "objective": objective,
        "max_seq_length": max_seq_length,
        "short_seq_prob": short_seq_prob,
        "dupe_factor": dupe_factor,
        "seed": seed,
        "tokenizer": {
            "path": str(tokenizer_dir.resolve()),
            "sha256": _tokenizer_digest(tokenizer_dir),
            "vocab_size": tok.vocab_size,
            "pad_id": tok.pad_id, "unk_id": tok.unk_id, "cls_id": tok.cls_id, "sep_id": tok.sep_id,
            "mask_id": tok.mask_id, "special_ids": sorted(int(i) for i in tok.special_ids),
            "lowercase": bool(getattr(tok, "lowercase", True)),
        },
        "vocab_size": tok.vocab_size,
        "token_dtype": token_dtype(tok.vocab_size).str,
        "units": {"stored": units, "segmenter": segmenter, "lexicon": str(lexicon) if lexicon else None,
                  "lexicon_entries": len(entries)},
        "inputs": [str(f) for f in files],
        "input_formats": formats,
        "counts": {**counts, "skipped": dict(sorted(problems.counts.items()))},
        "lengths": {
            "max": int(np.flatnonzero(lengths_hist).max()),
            "min": int(np.flatnonzero(lengths_hist).min()),
            "mean": round(float((lengths_hist * np.arange(len(lengths_hist))).sum() / n), 3),
            "full": int(lengths_hist[max_seq_length]),
        },
        "labels": {str(c): int(v) for c, v in enumerate(labels)} if objective != "none" else None,
        "shards": shards,
    }
    try:  # last, atomically (fsynced): from here on the directory is prepared data
        atomic_write_file(out / META_FILE, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    except UserError:
        _abort(writer, out)
        raise

    seconds = time.perf_counter() - start
    return {
        "out_dir": str(out),
        **counts,
        "bytes": read[0],
        "seconds": seconds,
        "mb_per_s": read[0] / 1e6 / seconds if seconds > 0 else float("inf"),
        "shards": len(shards),
        "skipped": dict(problems.counts),
        "skipped_summary": problems.summary(),
        "problems": problems.messages,
        "labels": {str(c): int(v) for c, v in enumerate(labels)},
    }


def _abort(writer: ShardWriter, out: Path) -> None:
    writer.abort()
    (out / CONTINUATION_FILE).unlink(missing_ok=True)


def _make_shards(workers: int, config: dict, pools, take) -> None:
    """Every pool through _process_pool, in order, into ``take``: here or in worker processes."""
    if workers == 1:
        _init_worker(config, single_thread=False)
        for task in pools:
            take(_process_pool(task))
    else:
        # a worker that dies (out of memory...) fails the run instead of hanging it
        context = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(config, True)) as pool:
            pending: deque = deque()  # at most 2 pools a worker in flight: bounded memory
            for task in pools:
                pending.append(pool.submit(_process_pool, task))
                if len(pending) >= 2 * workers:
                    take(pending.popleft().result())
            while pending:
                take(pending.popleft().result())


def format_summary(summary: dict) -> str:
    """The one-line report of a prepare run."""
    line = (f"prepared {summary['documents']:,} documents, {summary['instances']:,} instances, "
            f"{summary['tokens']:,} tokens from {summary['bytes'] / 1e6:.1f} MB in {summary['seconds']:.1f} s "
            f"({summary['mb_per_s']:.2f} MB/s) -> {summary['out_dir']} ({summary['shards']} shard"
            f"{'s' if summary['shards'] != 1 else ''})")
    if summary.get("skipped_summary"):
        line += f"; {summary['skipped_summary']}"
    counts = summary.get("labels") or {}
    if len(counts) > 2:  # reorder / distance: the class balance, which short documents skew
        total = max(sum(counts.values()), 1)
        line += "; classes " + " ".join(f"{c}:{v / total:.1%}" for c, v in counts.items())
    return line
