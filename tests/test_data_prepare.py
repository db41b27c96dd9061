"""`prepare` / `berts prepare`: instances (nsp, sop, none), shards, determinism, problems, Chinese units."""
from __future__ import annotations

import io
import itertools
import json
import random

import numpy as np
import pytest
from test_data_support import doc_marked_corpus, make_tokenizer, random_corpus

from berts.cli import main
from berts.data import prepare
from berts.data.corpus import RawDocument
from berts.data.instances import create_instances
from berts.data.pipeline import _pools
from berts.data.segment import UNIT_START, WORD_START
from berts.data.shards import ShardReader
from berts.errors import UserError
from berts.tokenizer.wordpiece import Tokenizer

CLS, SEP = 2, 3


# ----------------------------------------------------------------------------- instances (unit level)
def synthetic_documents(n_docs, seed=0):
    """Token id = doc * 10_000 + position in the document: every token tells where it came from."""
    rng = random.Random(seed)
    docs = []
    for d in range(n_docs):
        pos, sents = 0, []
        for _ in range(rng.randint(2, 25)):
            n = rng.randint(3, 30)
            sents.append([10 + d * 10_000 + pos + k for k in range(n)])
            pos += n
        docs.append(sents)
    return docs


def split_pair(tokens, b_start):
    assert tokens[0] == CLS and tokens[b_start - 1] == SEP and tokens[-1] == SEP
    return np.array(tokens[1:b_start - 1]) - 10, np.array(tokens[b_start:-1]) - 10


def test_nsp_random_next_rate_and_never_same_document():
    docs = synthetic_documents(3000)
    inst = create_instances(docs, random.Random(1), objective="nsp", max_seq_length=128, short_seq_prob=0.1,
                            cls_id=CLS, sep_id=SEP)
    assert len(inst) > 5000
    labels = np.array([x.label for x in inst])
    assert abs(labels.mean() - 0.5) < 0.02
    for x in inst:
        a, b = split_pair(x.tokens, x.b_start)
        assert len(x.tokens) <= 128 and len(a) and len(b)
        da, db = set(a // 10_000), set(b // 10_000)
        assert len(da) == 1 and len(db) == 1
        if x.label == 1:
            assert da != db  # a random B never comes from the same document
        else:
            assert da == db and a.max() < b.min()  # the real continuation
            assert np.all(np.diff(a) >= 1) and np.all(np.diff(b) >= 1)


def test_sop_swap_rate_and_order():
    docs = synthetic_documents(3000, seed=3)
    inst = create_instances(docs, random.Random(2), objective="sop", max_seq_length=128, short_seq_prob=0.1,
                            cls_id=CLS, sep_id=SEP)
    labels = np.array([x.label for x in inst])
    assert len(inst) > 5000 and abs(labels.mean() - 0.5) < 0.02
    for x in inst:
        a, b = split_pair(x.tokens, x.b_start)
        assert len(set(a // 10_000) | set(b // 10_000)) == 1  # both segments from one document
        if x.label == 0:
            assert a.max() < b.min()
        else:
            assert b.max() < a.min()


def test_none_packs_whole_sentences_and_short_targets():
    docs = synthetic_documents(800, seed=5)
    starts = {s[0] for d in docs for s in d}
    inst = create_instances(docs, random.Random(3), objective="none", max_seq_length=64, short_seq_prob=0.1,
                            cls_id=CLS, sep_id=SEP)
    lengths = np.array([len(x.tokens) for x in inst])
    assert lengths.max() <= 64
    for x in inst:
        assert x.label == -1 and x.b_start == len(x.tokens)
        assert x.tokens[0] == CLS and x.tokens[-1] == SEP and SEP not in x.tokens[1:-1]
        assert x.tokens[1] in starts  # begins with a whole sentence (none is longer than 62 here)
    total = sum(len(s) for d in docs for s in d)
    assert sum(len(x.tokens) - 2 for x in inst) == total  # nothing dropped


def test_truncation_keeps_pairs_within_length():
    docs = [[list(range(100 + 1000 * d, 400 + 1000 * d))] * 3 for d in range(20)]  # 300-token sentences
    for objective in ("nsp", "sop"):
        for x in create_instances(docs, random.Random(0), objective=objective, max_seq_length=32,
                                  short_seq_prob=0.0, cls_id=CLS, sep_id=SEP):
            assert len(x.tokens) == 32 and 2 <= x.b_start <= 30


def test_pools_stream():
    """Pools come out one by one from an endless corpus: memory does not grow with it."""
    endless = (RawDocument(0, i, "bert", ["x" * 100]) for i in itertools.count())
    pools = list(itertools.islice(_pools(endless, 1000), 3))
    assert [len(p) for p in pools] == [10, 10, 10]
    lone = [RawDocument(0, i, "bert", ["x" * 600]) for i in range(5)]
    assert [len(p) for p in _pools(lone, 1000)] == [2, 3]  # never a pool of one document


# ----------------------------------------------------------------------------- prepare end to end
@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("tok"), n_docs=3000)


def shard_files(out):
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_nsp_end_to_end_never_same_document(tmp_path, tok_dir):
    corpus = doc_marked_corpus(tmp_path / "c.txt", 2500, sentences=(3, 12), length=(2, 12))
    summary = prepare([corpus], tok_dir, tmp_path / "out", objective="nsp", workers=2, seed=7,
                      pool_bytes=1 << 16)
    reader = ShardReader(tmp_path / "out")
    assert summary["instances"] == len(reader) > 2000
    labels = reader.index[:, 3]
    assert abs(labels.mean() - 0.5) < 0.02
    for i in range(len(reader)):
        x = reader.instance(i)
        ids, b = x["input_ids"], x["b_start"]
        a_doc, b_doc = set(ids[1:b - 1].tolist()), set(ids[b:-1].tolist())
        assert len(a_doc) == 1 and len(b_doc) == 1
        assert (a_doc != b_doc) == (x["label"] == 1)
    meta = reader.meta
    assert meta["objective"] == "nsp" and meta["seed"] == 7 and meta["token_dtype"] == "<u2"
    assert meta["counts"]["instances"] == len(reader) and meta["counts"]["documents"] == 2500
    assert meta["labels"]["1"] == int(labels.sum())


def test_same_seed_gives_identical_shards_whatever_the_workers(tmp_path, tok_dir):
    corpus = random_corpus(tmp_path / "c.txt", 300, fmt="plain")
    outs = []
    for name, workers, seed in (("a", 2, 1), ("b", 2, 1), ("c", 1, 1), ("d", 2, 2)):
        prepare([corpus], tok_dir, tmp_path / name, workers=workers, seed=seed, pool_bytes=4096, shard_size=100,
                objective="sop")
        outs.append(shard_files(tmp_path / name))
    assert len([n for n in outs[0] if n.endswith(".tokens.bin")]) > 1  # several shards
    assert outs[0] == outs[1] == outs[2]
    assert outs[0]["shard_00000.tokens.bin"] != outs[3]["shard_00000.tokens.bin"]


def test_problems_are_reported_counted_and_skipped(tmp_path, tok_dir):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"W1 w2 w3.\nW4 \xc3\x28 w5.\nW6 w7.\n\nW8 w9.\nW10 w11.\n")
    records = tmp_path / "r.jsonl"
    records.write_text("\n".join([json.dumps({"text": "W1 w2. W3 w4."}), json.dumps({"text": "  "}),
                                  "{oops", json.dumps({"text": "W5 w6. W7."})]) + "\n", encoding="utf-8")
    err = io.StringIO()
    summary = prepare([bad, records], tok_dir, tmp_path / "out", workers=1, warnings_stream=err)
    assert summary["skipped"] == {"invalid_utf8_line": 1, "bad_record": 1, "empty_document": 1}
    text = err.getvalue()
    assert f"{bad}:2: invalid UTF-8" in text
    assert f"{records}:2: empty document" in text
    assert f"{records}:3: invalid JSON" in text
    assert summary["documents"] == 4
    assert ShardReader(tmp_path / "out").meta["counts"]["skipped"] == summary["skipped"]


def test_mixed_inputs_directory_glob_gz_jsonl(tmp_path, tok_dir):
    import gzip

    src = tmp_path / "corpus"
    (src / "more").mkdir(parents=True)
    (src / "a.txt").write_text("W1 w2 w3.\nW4 w5.\n\nW6 w7 w8.\nW9 w10.\n", encoding="utf-8")  # bert
    with gzip.open(src / "more" / "b.txt.gz", "wt", encoding="utf-8") as f:  # plain, compressed
        f.write("Dr. Smith went home. He said w1 w2, e.g. w3. W4 w5 w6!\n\nW7 w8. W9 w10.\n")
    (src / "more" / "c.jsonl").write_text(json.dumps({"text": "W11 w12. W13 w14 w15."}) + "\n", encoding="utf-8")
    summary = prepare([src / "a.txt", str(src / "more" / "*")], tok_dir, tmp_path / "out", objective="sop",
                      workers=1)
    meta = ShardReader(tmp_path / "out").meta
    assert meta["input_formats"] == ["bert", "plain", "jsonl"]
    assert summary["documents"] == 5 and summary["skipped"] == {}
    assert meta["counts"]["sentences"] == 2 + 2 + 3 + 2 + 2


def test_objective_none_and_overwrite(tmp_path, tok_dir):
    corpus = random_corpus(tmp_path / "c.txt", 50)
    prepare([corpus], tok_dir, tmp_path / "out", objective="none", max_seq_length=64)
    reader = ShardReader(tmp_path / "out")
    assert (reader.index[:, 2] == reader.index[:, 1]).all() and (reader.index[:, 3] == -1).all()
    with pytest.raises(UserError, match="already holds prepared data"):
        prepare([corpus], tok_dir, tmp_path / "out")
    prepare([corpus], tok_dir, tmp_path / "out", overwrite=True, max_seq_length=32)
    assert ShardReader(tmp_path / "out").lengths.max() <= 32


def test_bad_arguments(tmp_path, tok_dir):
    corpus = random_corpus(tmp_path / "c.txt", 5)
    with pytest.raises(UserError, match="objective"):
        prepare([corpus], tok_dir, tmp_path / "o", objective="mlm")
    with pytest.raises(UserError, match="no such file"):
        prepare([tmp_path / "nope.txt"], tok_dir, tmp_path / "o")
    with pytest.raises(UserError):
        prepare([corpus], tmp_path / "no-tokenizer", tmp_path / "o")
    one = tmp_path / "one.txt"
    one.write_text("W1 w2.\nW3 w4.\n")
    with pytest.raises(UserError, match="no instances"):
        prepare([one], tok_dir, tmp_path / "o2", objective="nsp")


# ----------------------------------------------------------------------------- CLI
def test_cli_end_to_end(tmp_path, tok_dir, capsys):
    corpus = random_corpus(tmp_path / "c.txt", 60)
    out = tmp_path / "shards"
    rc = main(["prepare", str(corpus), "--tokenizer", str(tok_dir), "--out", str(out), "--objective", "sop",
               "--max-seq-length", "64", "--workers", "2", "--quiet"])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert stdout.startswith("prepared 60 documents, ") and "MB/s" in stdout
    assert {"meta.json", "continuation.npy", "shard_00000.tokens.bin", "shard_00000.index.npy"} <= {
        p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["objective"] == "sop" and meta["max_seq_length"] == 64


def test_cli_missing_input_is_a_one_line_error(tmp_path, tok_dir, capsys):
    rc = main(["prepare", str(tmp_path / "missing.txt"), "--tokenizer", str(tok_dir), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("berts: error: ") and "missing.txt" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------- Chinese units
def bits_of(reader, i):
    x = reader.instance(i)
    return x["input_ids"], x["units"]


def words_of(tok, ids, bits, flag):
    words, cur = [], ""
    for t, b in zip(ids.tolist(), bits.tolist()):
        if t in (CLS, SEP):
            if cur:
                words.append(cur)
            cur = ""
            continue
        piece = tok.convert_ids_to_tokens(t)
        if b & flag and cur:
            words.append(cur)
            cur = ""
        cur += piece[2:] if piece.startswith("##") else piece
    if cur:
        words.append(cur)
    return words


def test_gold_segmentation_and_lexicon_entities(tmp_path, tok_dir):
    corpus = tmp_path / "zh.txt"
    corpus.write_text("北京 大学 是 一个 大学 。\n上海市 长江大桥 很 好 。\n\n我们 研究 生命 起源 。\n他 说 unbelievable 。\n",
                      encoding="utf-8")
    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("北京大学\n长江大桥\n", encoding="utf-8")
    prepare([corpus], tok_dir, tmp_path / "out", objective="none", segmenter="gold", lexicon=lexicon, workers=1)
    reader = ShardReader(tmp_path / "out")
    tok = Tokenizer.from_pretrained(tok_dir)
    texts = {}
    for i in range(len(reader)):
        ids, bits = bits_of(reader, i)
        texts["".join(words_of(tok, ids, bits, WORD_START))] = (words_of(tok, ids, bits, WORD_START),
                                                                  words_of(tok, ids, bits, UNIT_START))
    first = texts["北京大学是一个大学。上海市长江大桥很好。"]
    assert first[0] == ["北京", "大学", "是", "一个", "大学", "。", "上海市", "长江大桥", "很", "好", "。"]
    assert first[1] == ["北京大学", "是", "一个", "大学", "。", "上海市", "长江大桥", "很", "好", "。"]
    second = texts["我们研究生命起源。他说unbelievable。"]
    assert second[0] == ["我们", "研究", "生命", "起源", "。", "他", "说", "unbelievable", "。"]
    assert reader.meta["units"] == {"stored": True, "segmenter": "gold", "lexicon": str(lexicon), "lexicon_entries": 2}


def test_jieba_and_lexicon_segmenters(tmp_path, tok_dir):
    pytest.importorskip("jieba")
    corpus = tmp_path / "zh.txt"
    corpus.write_text("我们研究生命起源。他说北京大学很好。\n\n上海市长江大桥很好。\n", encoding="utf-8")
    tok = Tokenizer.from_pretrained(tok_dir)
    prepare([corpus], tok_dir, tmp_path / "jieba", objective="none", segmenter="auto", workers=1)
    reader = ShardReader(tmp_path / "jieba")
    assert reader.meta["units"]["segmenter"] == "jieba"
    words = [w for i in range(len(reader)) for w in words_of(tok, *bits_of(reader, i), WORD_START)]
    assert "我们" in words and "北京大学" in words and all(len(w) <= 4 for w in words)

    lexicon = tmp_path / "lex.txt"
    lexicon.write_text("研究生\n生命\n起源\n上海市\n长江大桥\n", encoding="utf-8")
    prepare([corpus], tok_dir, tmp_path / "lex", objective="none", segmenter="lexicon", lexicon=lexicon, workers=1)
    reader = ShardReader(tmp_path / "lex")
    words = [w for i in range(len(reader)) for w in words_of(tok, *bits_of(reader, i), WORD_START)]
    # forward maximum matching: 研究生 wins over 研究, then 命 is left alone
    k = words.index("研究生")
    assert words[k - 2:k + 4] == ["我", "们", "研究生", "命", "起源", "。"]
    assert "长江大桥" in words and "上海市" in words
