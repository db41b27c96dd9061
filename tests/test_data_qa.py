"""Extractive-QA data (berts.data.qa): readers and their errors, windows and offsets equal to
transformers' (return_overflowing_tokens, stride, return_offsets_mapping) on the same tokenizer
directory, answer token positions, and the n-best postprocessing on hand-made logits."""
import json

import numpy as np
import pytest

from berts.data.qa import QAExample, postprocess, qa_batch, qa_features, read_qa, read_qa_jsonl, read_squad
from berts.errors import UserError

CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
           "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland and "
           "Norway who, under their leader Rollo, agreed to swear fealty to King Charles III of West Francia.")


def squad_doc(version2=False):
    start = CONTEXT.index("Rollo")
    qas = [{"id": "q1", "question": "Who led the Norse?", "answers": [{"text": "Rollo", "answer_start": start}]},
           {"id": "q2", "question": "Where is Normandy?", "answers": [{"text": "France", "answer_start": CONTEXT.index("France")}]}]
    if version2:
        qas.append({"id": "q3", "question": "Who ruled Italy?", "answers": [], "is_impossible": True,
                    "plausible_answers": [{"text": "Rollo", "answer_start": start}]})
    return {"version": "2.0" if version2 else "1.1", "data": [{"title": "Normans", "paragraphs": [
        {"context": CONTEXT, "qas": qas}]}]}


def test_readers(tmp_path):
    f = tmp_path / "dev.json"
    f.write_text(json.dumps(squad_doc(True)), encoding="utf-8")
    ex = read_qa(f)
    assert [e.id for e in ex] == ["q1", "q2", "q3"]
    assert ex[0].answers == [("Rollo", CONTEXT.index("Rollo"))] and ex[2].is_impossible
    j = tmp_path / "dev.jsonl"
    rows = [{"question": "Who?", "context": "Ann met Bob.", "answers": {"text": ["Bob"], "answer_start": [8]}},
            {"id": "x", "question": "Who?", "context": "Ann met Bob.", "answers": [{"text": "Ann", "answer_start": 0}]},
            {"question": "Why?", "context": "No reason.", "answers": {"text": [], "answer_start": []}}]
    j.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    ex = read_qa(j)
    assert [(e.id, e.answers) for e in ex] == [("1", [("Bob", 8)]), ("x", [("Ann", 0)]), ("3", [])]


def test_reader_errors(tmp_path):
    doc = squad_doc()
    doc["data"][0]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] += 1
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.json: question 'q2': answer 'France' does not match the context"):
        read_squad(f)
    j = tmp_path / "bad.jsonl"
    j.write_text('{"question": "Who?", "context": "Ann met Bob.", "answers": [{"text": "Ann", "answer_start": 0}]}\n'
                 '{"question": "Who?", "context": "Ann met Bob.", "answers": {"text": ["Bob"], "answer_start": [7]}}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: answer 'Bob' does not match .* \(the context has ' Bo' there\)"):
        read_qa_jsonl(j)
    j.write_text('{"question": "Who?"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:1: a row needs 'question' and 'context'"):
        read_qa_jsonl(j)
    f.write_text('{"data": [}')
    with pytest.raises(UserError, match=r"bad.json:1: not valid JSON"):
        read_squad(f)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from berts.tokenizer.wordpiece import Tokenizer

    d = tmp_path_factory.mktemp("tok")
    corpus = d / "corpus.txt"
    corpus.write_text((CONTEXT + "\nWho led the Norse? Where is Normandy? Who ruled Italy?\n") * 10, encoding="utf-8")
    tok = Tokenizer.train([corpus], 150, show_progress=False)
    return tok, tok.save_pretrained(d / "tokenizer")


def test_windows_and_offsets_equal_transformers(tokenizer_dir, tmp_path):
    transformers = pytest.importorskip("transformers")
    tok, path = tokenizer_dir
    hf = transformers.BertTokenizerFast.from_pretrained(str(path))
    f = tmp_path / "dev.json"
    f.write_text(json.dumps(squad_doc(True)), encoding="utf-8")
    examples = read_squad(f)
    feats = qa_features(tok, examples, max_length=48, doc_stride=12)
    enc = hf([e.question for e in examples], [e.context for e in examples], truncation="only_second", max_length=48,
             stride=12, return_overflowing_tokens=True, return_offsets_mapping=True)
    assert len(feats) == len(enc["input_ids"]) > len(examples)  # the context is cut into several windows
    for i, feat in enumerate(feats):
        assert feat["input_ids"] == enc["input_ids"][i]
        assert feat["token_type_ids"] == enc["token_type_ids"][i]
        assert feat["example"] == enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        assert feat["offsets"] == [tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], seq)]
        ex = examples[feat["example"]]
        s, e = feat["start_positions"], feat["end_positions"]
        if ex.answers and (s, e) != (0, 0):
            a, b = feat["offsets"][s][0], feat["offsets"][e][1]
            assert ex.context[a:b] == ex.answers[0][0]  # the answer falls on token boundaries here
        elif ex.answers:  # the window lacks some of the answer
            text, start = ex.answers[0]
            ctx = [o for o in feat["offsets"] if o is not None]
            assert start < ctx[0][0] or start + len(text) > ctx[-1][1]
    # every answerable example has at least one window that holds its answer
    for k, ex in enumerate(examples):
        hits = [f for f in feats if f["example"] == k and f["start_positions"] > 0]
        assert bool(hits) == bool(ex.answers)


def test_postprocess_by_hand():
    ctx = "Ann met Bob in Rome"
    ex = [QAExample("q", "Who met Ann?", ctx, [("Bob", 8)])]
    #        [CLS] q    q    [SEP] Ann    met    Bob     in       Rome     [SEP]
    offsets = [None, None, None, None, (0, 3), (4, 7), (8, 11), (12, 14), (15, 19), None]
    feats = [{"offsets": offsets, "example": 0}]
    start = np.full((1, 10), -5.0)
    end = np.full((1, 10), -5.0)
    start[0, 6], end[0, 6] = 3.0, 2.0  # "Bob": 5
    start[0, 4], end[0, 8] = 2.5, 2.8  # "Ann" starts, "Rome" ends
    start[0, 1], end[0, 1] = 9.0, 9.0  # inside the question: never an answer
    start[0, 0], end[0, 0] = 1.0, 1.0  # null score 2
    # the 3 best starts {1: 9, 6: 3, 4: 2.5} x ends {1: 9, 8: 2.8, 6: 2}; spans in the context, end >= start,
    # at most 3 tokens: (6, 8) "Bob in Rome" 5.8, (6, 6) "Bob" 5.0, (4, 6) "Ann met Bob" 4.5; (4, 8) has 5 tokens
    (r,) = postprocess(ex, feats, start, end, n_best=3, max_answer_length=3)
    assert (r["text"], r["start"], r["end"], r["score"]) == ("Bob in Rome", 8, 19, pytest.approx(5.8))
    assert [(x["text"], x["score"]) for x in r["nbest"]] == [("Bob in Rome", pytest.approx(5.8)), ("Bob", 5.0),
                                                              ("Ann met Bob", 4.5)]
    # probabilities: softmax of (5.8, 5.0, 4.5)
    z = np.exp([0.0, -0.8, -1.3])
    assert [x["probability"] for x in r["nbest"]] == pytest.approx(list(z / z.sum()))
    assert sum(x["probability"] for x in r["nbest"]) == pytest.approx(1.0)
    (r,) = postprocess(ex, feats, start, end, n_best=3, max_answer_length=1)
    assert r["text"] == "Bob" and [x["text"] for x in r["nbest"]] == ["Bob"]
    # v2: null 2.0 vs best 5.8: diff -3.8 -> answered; a threshold of -4 -> ""
    (r,) = postprocess(ex, feats, start, end, n_best=3, max_answer_length=3, version_2=True)
    assert r["null_score_diff"] == pytest.approx(-3.8) and r["text"] == "Bob in Rome"
    (r,) = postprocess(ex, feats, start, end, n_best=3, max_answer_length=3, version_2=True, null_threshold=-4.0)
    assert (r["text"], r["start"], r["end"]) == ("", -1, -1)


def test_postprocess_over_windows_takes_the_best(tokenizer_dir):
    tok, _ = tokenizer_dir
    ex = [QAExample("q1", "Who led the Norse?", CONTEXT, [("Rollo", CONTEXT.index("Rollo"))])]
    feats = qa_features(tok, ex, max_length=48, doc_stride=12)
    assert len(feats) > 2
    # logits that point at the gold positions of the windows holding the answer (higher in the last)
    L = max(len(f["input_ids"]) for f in feats)
    start, end = np.zeros((len(feats), L)), np.zeros((len(feats), L))
    for i, f in enumerate(feats):
        if f["start_positions"]:
            start[i, f["start_positions"]] = end[i, f["end_positions"]] = 5.0 + i
    (r,) = postprocess(ex, feats, start, end)
    assert (r["text"], r["start"]) == ("Rollo", CONTEXT.index("Rollo"))


def test_long_question_is_cut_and_bad_sizes_refused(tokenizer_dir):
    tok, _ = tokenizer_dir
    ex = [QAExample("q", "Who led the Norse raiders from Denmark?", CONTEXT, [])]
    f = qa_features(tok, ex, max_length=64, doc_stride=8, max_question_tokens=3)[0]
    assert f["token_type_ids"].index(1) == 1 + 3 + 1  # [CLS] 3 question tokens [SEP], then the context
    assert (f["start_positions"], f["end_positions"]) == (0, 0)  # no answer: [CLS]
    with pytest.raises(UserError, match="doc stride 60 must be below"):
        qa_features(tok, ex, max_length=64, doc_stride=60, max_question_tokens=3)
    with pytest.raises(UserError, match="leaves no room"):
        qa_features(tok, ex, max_length=6, doc_stride=1, max_question_tokens=3)


def test_chinese_context_windows_equal_transformers(tokenizer_dir):
    transformers = pytest.importorskip("transformers")
    tok, path = tokenizer_dir
    hf = transformers.BertTokenizerFast.from_pretrained(str(path))
    ctx = "据记载，郑成功在台湾建立了政权，后来他的儿子继续统治台湾多年。"
    ex = [QAExample("c1", "谁在台湾建立了政权？", ctx, [("郑成功", ctx.index("郑成功"))])]
    feats = qa_features(tok, ex, max_length=24, doc_stride=4)
    enc = hf(["谁在台湾建立了政权？"], [ctx], truncation="only_second", max_length=24, stride=4,
             return_overflowing_tokens=True, return_offsets_mapping=True)
    assert [f["input_ids"] for f in feats] == enc["input_ids"] and len(feats) > 1
    f = feats[0]  # a token per character: [CLS] 0, question 1..10, [SEP] 11, 据记载， 12..15, 郑成功 16..18
    assert (f["start_positions"], f["end_positions"]) == (16, 18)
    assert ctx[f["offsets"][16][0]:f["offsets"][18][1]] == "郑成功"


def test_qa_batch(tokenizer_dir):
    tok, _ = tokenizer_dir
    ex = [QAExample("q1", "Who led the Norse?", CONTEXT, [("Rollo", CONTEXT.index("Rollo"))]),
          QAExample("q2", "Who?", "Ann met Bob.", [("Bob", 8)])]
    feats = qa_features(tok, ex, max_length=40, doc_stride=8)
    b = qa_batch(feats, tok.pad_id)
    L = max(len(f["input_ids"]) for f in feats)
    assert b["input_ids"].shape == (len(feats), L) and b["start_positions"].tolist() == [f["start_positions"] for f in feats]
    short = feats[-1]  # "Ann met Bob.": padded after its [SEP]
    n = len(short["input_ids"])
    assert n < L and b["input_ids"][-1, n:].eq(tok.pad_id).all() and b["attention_mask"][-1].sum() == n
    assert "labels" not in b and "offsets" not in b


def test_parquet_and_saved_datasets(tmp_path):
    """The JSONL's columns in a parquet file or a `datasets` directory: the same examples; a bad
    answer names the row."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = [{"id": "a", "question": "Who?", "context": "Ann met Bob.", "answers": {"text": ["Bob"], "answer_start": [8]}},
            {"id": None, "question": "Why?", "context": "No reason.", "answers": {"text": [], "answer_start": []}}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "dev.parquet")
    ex = read_qa(tmp_path / "dev.parquet")
    assert [(e.id, e.answers, e.line) for e in ex] == [("a", [("Bob", 8)], 1), ("2", [], 2)]
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    assert [(e.id, e.answers) for e in read_qa(tmp_path / "ds")] == [("a", [("Bob", 8)]), ("2", [])]
    rows[0]["answers"]["answer_start"] = [7]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "bad.parquet")
    with pytest.raises(UserError, match=r"bad.parquet:1: answer 'Bob' does not match"):
        read_qa(tmp_path / "bad.parquet")
