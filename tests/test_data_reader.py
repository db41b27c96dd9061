"""One corpus reader: `berts tokenizer train` and `berts prepare` read the same inputs the same way
(directories, globs, .gz, JSONL with a custom --text-field), and fail with the same one-line errors."""
from __future__ import annotations

import gzip
import json

import pytest

from berts.cli import main
from berts.data.corpus import Corpus
from berts.data.shards import ShardReader
from berts.tokenizer.wordpiece import load_tokenizer

# Made-up words, each repeated enough to become a whole token; "decoy" words sit in a JSONL
# field that is not the text field, so a reader that took the wrong field would learn them.
DOCS = [
    ["zorbly quaxen mirtle zorbly.", "quaxen mirtle blorp zorbly quaxen."],
    ["mirtle blorp zorbly. quaxen mirtle blorp."],  # two sentences on one line (plain)
    ["blorp zorbly quaxen mirtle.", "zorbly blorp mirtle quaxen blorp."],
]
WORDS = {"zorbly", "quaxen", "mirtle", "blorp"}


def _text(docs):
    return "\n\n".join("\n".join(d) for d in docs) + "\n"


def _layout(kind, root):
    """(inputs given to both commands, extra options, the text lines a reader must see)."""
    lines = [line for d in DOCS for line in d]
    if kind == "directory":
        (root / "corpus" / "sub").mkdir(parents=True)
        (root / "corpus" / "a.txt").write_text(_text(DOCS[:2]), encoding="utf-8")
        with gzip.open(root / "corpus" / "sub" / "b.txt.gz", "wt", encoding="utf-8") as f:
            f.write(_text(DOCS[2:]))
        (root / "corpus" / ".hidden").write_text("decoy decoy decoy\n", encoding="utf-8")
        return [str(root / "corpus")], [], lines
    if kind == "glob":
        for i, d in enumerate(DOCS):
            (root / f"part{i}.txt").write_text(_text([d]), encoding="utf-8")
        (root / "notes.md").write_text("decoy decoy decoy\n", encoding="utf-8")
        return [str(root / "part*.txt")], [], lines
    if kind == "gzip":
        with gzip.open(root / "corpus.txt.gz", "wt", encoding="utf-8") as f:
            f.write(_text(DOCS))
        return [str(root / "corpus.txt.gz")], [], lines
    assert kind == "jsonl"
    path = root / "corpus.jsonl"
    path.write_text("".join(json.dumps({"body": "\n".join(d), "text": "decoy decoy decoy"}) + "\n" for d in DOCS),
                    encoding="utf-8")
    return [str(path)], ["--text-field", "body"], lines


@pytest.mark.parametrize("kind", ["directory", "glob", "gzip", "jsonl"])
def test_tokenizer_train_and_prepare_read_the_same_text(kind, tmp_path, capsys):
    inputs, options, lines = _layout(kind, tmp_path)
    field = options[1] if options else "text"
    # the reader itself: the trainer's lines and prepare's sentences hold the same words
    corpus = Corpus(inputs, text_field=field)
    texts = list(corpus.texts())
    assert texts == lines
    sentences = [s for doc in Corpus(inputs, text_field=field).sentences() for s in doc]
    assert " ".join(sentences).split() == " ".join(texts).split()

    tok_dir, shards = tmp_path / "tok", tmp_path / "shards"
    assert main(["tokenizer", "train", "--corpus", *inputs, *options, "--vocab-size", "60",
                 "--min-frequency", "1", "--out", str(tok_dir)]) == 0
    summary = capsys.readouterr().out
    assert f"{len(lines)} lines" in summary
    tok = load_tokenizer(tok_dir)
    vocab = tok.vocab()
    assert WORDS <= set(vocab) and "decoy" not in vocab

    assert main(["prepare", *inputs, *options, "--tokenizer", str(tok_dir), "--out", str(shards),
                 "--objective", "none", "--max-seq-length", "64", "--workers", "1", "--quiet"]) == 0
    capsys.readouterr()
    reader = ShardReader(shards)
    meta = reader.meta
    assert [str(p) for p in Corpus(inputs).files] == meta["inputs"]
    assert meta["counts"]["documents"] == len(DOCS) and meta["counts"]["sentences"] == len(sentences)
    seen = [t for i in range(len(reader)) for t in tok.convert_ids_to_tokens(reader.instance(i)["input_ids"].tolist())]
    assert sorted(t for t in seen if t not in ("[CLS]", "[SEP]")) == sorted(tok.tokenize(" ".join(texts)))


@pytest.mark.parametrize("bad, message", [
    ("missing.txt", "missing.txt: no such file or directory"),
    ("nothing*.txt", "nothing*.txt: no files match this pattern"),
    ("emptydir", "emptydir: directory holds no files"),
])
def test_same_one_line_errors(bad, message, tmp_path, capsys):
    (tmp_path / "emptydir").mkdir()
    tok_dir = tmp_path / "tok"
    (tmp_path / "ok.txt").write_text(_text(DOCS), encoding="utf-8")
    assert main(["tokenizer", "train", "--corpus", str(tmp_path / "ok.txt"), "--vocab-size", "60",
                 "--out", str(tok_dir)]) == 0
    capsys.readouterr()
    target = str(tmp_path / bad)
    errors = []
    for args in (["tokenizer", "train", "--corpus", target, "--vocab-size", "60", "--out", str(tmp_path / "t2")],
                 ["prepare", target, "--tokenizer", str(tok_dir), "--out", str(tmp_path / "s"), "--quiet"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        errors.append(err[0])
    assert errors[0] == errors[1] == f"berts: error: {tmp_path}/{message}"
