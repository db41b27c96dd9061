"""Reading corpora: formats, sentence splitting, encodings, inputs."""
from __future__ import annotations

import gzip
import io
import json

import pytest

from berts.data.corpus import (
    Problems,
    detect_format,
    document_sentences,
    expand_inputs,
    read_documents,
    split_sentences,
)
from berts.errors import UserError


def read_all(files, fmt, problems=None):
    problems = problems or Problems(stream=io.StringIO())
    docs = list(read_documents(files, [fmt] * len(files), problems))
    return [document_sentences(d)[0] for d in docs], docs, problems


# ----------------------------------------------------------------------------- sentences
def test_english_abbreviations_do_not_end_sentences():
    text = ("Dr. Smith went to Washington. He arrived at 5 p.m. on Monday, e.g. before dinner. "
            "Mr. J. R. Jones agreed, i.e. Dr. Smith was right! See No. 5 and Fig. 3 today. "
            "Was it true? She said \"Yes.\" Then she left.")
    assert split_sentences(text) == [
        "Dr. Smith went to Washington.",
        "He arrived at 5 p.m. on Monday, e.g. before dinner.",
        "Mr. J. R. Jones agreed, i.e. Dr. Smith was right!",
        "See No. 5 and Fig. 3 today.",
        "Was it true?",
        "She said \"Yes.\"",
        "Then she left.",
    ]


def test_numbers_and_lower_case_continuations_stay_whole():
    assert split_sentences("Prices rose 3.5 percent. the end... and more") == [
        "Prices rose 3.5 percent. the end... and more"]


def test_chinese_punctuation_and_closing_quotes():
    text = "他说：“今天天气很好。”我们出去吧！好的；走吧……真的吗？OK!好"
    assert split_sentences(text) == ["他说：“今天天气很好。”", "我们出去吧！", "好的；", "走吧……", "真的吗？", "OK!", "好"]


def test_mixed_and_empty():
    assert split_sentences("") == []
    assert split_sentences("   ") == []
    assert split_sentences("北京大学。Peking University is in Beijing. 很好") == [
        "北京大学。", "Peking University is in Beijing.", "很好"]


# ----------------------------------------------------------------------------- formats
def test_bert_format_documents_and_sentences(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("First sentence.\nSecond one here.\n\n\n\nOther doc.\n  \nThird doc line.\n", encoding="utf-8")
    sents, docs, problems = read_all([f], "bert")
    assert sents == [["First sentence.", "Second one here."], ["Other doc."], ["Third doc line."]]
    assert [d.line for d in docs] == [1, 6, 8]
    assert problems.total == 0


def test_plain_format_splits_paragraph_lines(tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("Dr. Smith arrived. He sat down, e.g. on a chair.\nA new paragraph.\n\n"
                 "北京大学很好。我们走吧！\n", encoding="utf-8")
    sents, _, _ = read_all([f], "plain")
    assert sents == [["Dr. Smith arrived.", "He sat down, e.g. on a chair.", "A new paragraph."],
                     ["北京大学很好。", "我们走吧！"]]


def test_jsonl_records_are_documents_with_problems_reported(tmp_path):
    f = tmp_path / "d.jsonl"
    rows = [json.dumps({"text": "One. Two sentences here."}), "{not json", json.dumps({"body": "x"}),
            json.dumps({"text": "Line one.\nLine two."}), ""]
    f.write_text("\n".join(rows) + "\n", encoding="utf-8")
    problems = Problems(stream=io.StringIO())
    docs = list(read_documents([f], ["jsonl"], problems))
    assert [d.line for d in docs] == [1, 2, 3, 4]
    results = [document_sentences(d) for d in docs]
    assert results[0] == (["One.", "Two sentences here."], None)
    assert "invalid JSON" in results[1][1]
    assert "text" in results[2][1]
    assert results[3] == (["Line one.", "Line two."], None)


def test_gzip_reads_like_plain(tmp_path):
    text = "Alpha beta.\nGamma.\n\nDelta.\n"
    plain, gz = tmp_path / "a.txt", tmp_path / "a.txt.gz"
    plain.write_text(text, encoding="utf-8")
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(text)
    assert read_all([gz], "bert")[0] == read_all([plain], "bert")[0] == [["Alpha beta.", "Gamma."], ["Delta."]]


def test_detect_format(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "b.txt").write_text('{"text": "x. Y z."}\n')
    (tmp_path / "c.txt").write_text("One sentence.\nAnother one.\n\nThird.\n")
    (tmp_path / "d.txt").write_text("First. Second one. Third!\nMore here. And more.\n")
    with gzip.open(tmp_path / "e.jsonl.gz", "wt") as f:
        f.write('{"text": "x"}\n')
    assert [detect_format(tmp_path / n) for n in ("a.jsonl", "b.txt", "c.txt", "d.txt", "e.jsonl.gz")] == [
        "jsonl", "jsonl", "bert", "plain", "jsonl"]


# ----------------------------------------------------------------------------- inputs
def test_directories_globs_and_order(tmp_path):
    sub = tmp_path / "corpus" / "sub"
    sub.mkdir(parents=True)
    for name in ("b.txt", "a.txt", ".hidden"):
        (tmp_path / "corpus" / name).write_text("x\n")
    (sub / "c.txt.gz").write_bytes(gzip.compress(b"y\n"))
    files = expand_inputs([tmp_path / "corpus"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["corpus/a.txt", "corpus/b.txt", "corpus/sub/c.txt.gz"]
    globbed = expand_inputs([str(tmp_path / "corpus" / "**" / "*.gz"), str(tmp_path / "corpus" / "a.txt"),
                             str(tmp_path / "corpus" / "a.txt")])
    assert [f.name for f in globbed] == ["c.txt.gz", "a.txt"]
    with pytest.raises(UserError, match="no such file"):
        expand_inputs([tmp_path / "missing.txt"])
    with pytest.raises(UserError, match="no files match"):
        expand_inputs([str(tmp_path / "*.nothing")])


def test_invalid_utf8_is_reported_with_location_and_skipped(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"Good line.\nBad \xff\xfe line.\nAnother good.\n\nNext doc.\n")
    out = io.StringIO()
    problems = Problems(stream=out)
    sents, _, _ = read_all([f], "bert", problems)
    assert sents == [["Good line.", "Another good."], ["Next doc."]]
    assert problems.counts == {"invalid_utf8_line": 1}
    assert f"{f}:2: invalid UTF-8 (byte 0xff at column 5)" in out.getvalue()
    assert problems.summary() == "skipped 1 invalid UTF-8 line"
