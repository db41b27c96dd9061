"""Retrieval sets built from real text (no published benchmark is reachable from here: see
docs/embed.md). Each is a BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv) that
`berts index`, `berts search`, `berts compare --eval-file` and berts.embed.metrics.read_beir read.

brown_first_sentence: every Brown paragraph of 3+ sentences (a first sentence of 5+ words, the
rest 20+ words) gives a query, its FIRST sentence, and a document, the REST of the paragraph;
the query's one relevant document is its own paragraph's rest, among every document of its
split. Splits by Brown file (500 files): file i % 10 == 0 test, == 1 dev, else train, so no
text of a test file is seen in training or model choice. (experiments/2026-12-06-embeddings
built it first: test 693 queries / 693 documents, dev 743, train 5,854 pairs.)
"""
from __future__ import annotations

import json
from pathlib import Path

from berts.data.corpus import split_sentences

SPLITS = ("train", "dev", "test")


def brown_pairs(text: Path) -> dict[str, list[tuple[str, str, str]]]:
    """The Brown corpus (berts.data.corpora.en_brown()['text']: a paragraph a line, a blank line
    between files) -> {split: [(id, first sentence, rest of the paragraph)]}, in corpus order."""
    docs = [d for d in Path(text).read_text(encoding="utf-8").split("\n\n") if d.strip()]
    splits: dict[str, list] = {s: [] for s in SPLITS}
    for i, doc in enumerate(docs):
        which = "test" if i % 10 == 0 else "dev" if i % 10 == 1 else "train"
        for j, para in enumerate(doc.splitlines()):
            sents = split_sentences(para)
            rest = " ".join(sents[1:])
            if len(sents) >= 3 and len(rest.split()) >= 20 and len(sents[0].split()) >= 5:
                splits[which].append((f"b{i}p{j}", sents[0], rest))
    return splits


def write_beir(rows: list[tuple[str, str, str]], folder: Path, split: str) -> Path:
    """(id, query, document) rows -> a BEIR folder where each query's one relevant document is its own."""
    folder = Path(folder)
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "text": d}) + "\n" for k, _, d in rows),
                                         encoding="utf-8")
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": k, "text": q}) + "\n" for k, q, _ in rows),
                                          encoding="utf-8")
    (folder / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{k}\t{k}\t1\n" for k, _, _ in rows), encoding="utf-8")
    return folder


def brown_first_sentence(text: Path, folder: Path, split: str = "test", limit: int | None = None) -> dict:
    """The ``split`` of the first-sentence set as a BEIR folder; ``limit``: its first pairs only
    (corpus order: a smaller corpus makes retrieval easier for every system alike)."""
    pairs = brown_pairs(text)
    if split not in pairs:
        raise ValueError(f"split {split!r}: one of {', '.join(SPLITS)}")
    rows = pairs[split][:limit] if limit is not None else pairs[split]
    write_beir(rows, folder, split)
    return {"split": split, "queries": len(rows), "documents": len(rows), "of": len(pairs[split]),
            "folder": Path(folder)}
