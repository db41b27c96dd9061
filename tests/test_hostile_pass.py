"""Issue 30, the defects the re-run hostile pass found (experiments/2026-12-06-hostile/run.py:
1,454 cases over every command), one test per class, each with several instances:

* a flag of another kind of model is refused (a --question to a tagger read stdin and ignored it);
* every numeric value goes through the one validation layer, task options and seeds included;
* a file that is not UTF-8 is one line naming file:line in every reader (tagging, QA, raw text);
* an ONNX task graph is not an encoder: embed refuses it in one line;
* --report-png is claimed like every output (tests/test_safety_outputs.py).
"""
from __future__ import annotations

import string
import sys
from pathlib import Path

import pytest
import torch

from berts.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_model_kinds import dirs  # noqa: E402,F401  (the fixture: clf, pair, mlm, clm, ... directories)


def _one_line(capsys, argv, needle, code=2):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == code, (argv, err)
    assert len(err.splitlines()) == 1 and needle in err, err
    return err


@pytest.fixture(scope="module")
def tagger_and_qa(tmp_path_factory):
    """A token-classification and a QA directory (saved, untrained: their kind is what matters)."""
    from berts.model.config import BertConfig
    from berts.tasks.qa import BertForQuestionAnswering
    from berts.tasks.token_classification import BertForTokenClassification
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("kinds2")
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ann", "sat",
                                                            "who", "?", *string.ascii_lowercase])})
    cfg = dict(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    labels = ["O", "B-PER", "I-PER"]
    BertForTokenClassification(BertConfig(**cfg, num_labels=3, id2label=dict(enumerate(labels)),
                                          label2id={n: i for i, n in enumerate(labels)})).save_pretrained(root / "tagger", tok)
    BertForQuestionAnswering(BertConfig(**cfg, num_labels=2)).save_pretrained(root / "qa", tok)
    return root


def test_flags_of_another_kind_are_refused(dirs, tagger_and_qa, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sys, "stdin", None)  # a flag that fell through to stdin would fail here, not pass
    t, q = tagger_and_qa / "tagger", tagger_and_qa / "qa"
    _one_line(capsys, ["predict", t, "--question", "who", "--context", "ann sat"], "--question is for question-answering")
    _one_line(capsys, ["predict", t, "--text", "ann sat", "--speed", "0.5"], "early exit is for classification")
    _one_line(capsys, ["predict", q, "--text", "ann sat"], "--text is for token-classification models")
    _one_line(capsys, ["predict", q, "--question", "who", "--context", "ann", "--conll"], "--conll is for token-classification")
    _one_line(capsys, ["predict", dirs / "clf", "--text", "the a"], "--text is for token-classification")
    _one_line(capsys, ["predict", dirs / "clf", "--question", "q", "--context", "c"], "--question is for question-answering")
    table = tmp_path / "t.tsv"
    table.write_text("a\tb\nthe a\ta the\n")
    _one_line(capsys, ["predict", dirs / "clf", table, "--text-column", "a", "--pair-column", "b"],
              "fine-tuned on one sentence")
    _one_line(capsys, ["evaluate", dirs / "clf", table, "--speeds", "0.1,0.5"], "--speeds sets --sweep's grid")
    _one_line(capsys, ["evaluate", dirs / "clf", table, "--patiences", "2"], "--patiences sets --sweep's grid")


@pytest.mark.parametrize("argv, says", [
    (["finetune", "--task", "qa", "--model", "m", "--train", "t.jsonl", "--doc-stride", "-1"],
     "task.doc_stride (--doc-stride): an integer >= 0 expected, got '-1'"),
    (["finetune", "--task", "qa", "--model", "m", "--train", "t.jsonl", "--n-best", "0"],
     "task.n_best (--n-best): an integer >= 1 expected"),
    (["finetune", "--task", "qa", "--model", "m", "--train", "t.jsonl", "--max-answer-length", "0"],
     "task.max_answer_length (--max-answer-length): an integer >= 1"),
    (["finetune", "--task", "sentence-embedding", "--model", "m", "--train", "t", "--temperature", "0"],
     "task.temperature (--temperature): a finite number > 0 expected"),
    (["finetune", "--task", "token-classification", "--model", "m", "--train", "t", "--stride", "-2"],
     "task.stride (--stride): an integer >= 0 expected"),
    (["finetune", "--model", "m", "--train", "t", "--set", "train.seed=-3"], "train.seed (--seed): an integer >= 0"),
    (["finetune", "--model", "m", "--train", "t", "--seed", "-1"], "--seed: an integer >= 0 expected"),
    (["augment", "f", "--model", "m", "--out", "o", "--seed", "-1"], "--seed: an integer >= 0 expected"),
    (["generate", "m", "--seed", "-5"], "--seed: an integer >= 0 expected"),
    (["embed", "m", "f", "--out", "o.npy", "--batch-size", "0"], "--batch-size: an integer >= 1 expected"),
    (["embed", "m", "f", "--out", "o.npy", "--max-length", "-3"], "--max-length: an integer >= 1 expected"),
    (["index", "f", "--model", "m", "--out", "i", "--nprobe", "0"], "--nprobe: an integer >= 1 expected"),
    (["search", "i", "q", "--threads", "-2"], "--threads: an integer >= 1 expected"),
    (["search", "i", "q", "-k", "0"], "--top-k: an integer >= 1 expected"),
    (["evaluate", "m", "f", "--sweep", "--speeds", "0.1,nan"], "--speeds '0.1,nan': a finite number expected"),
    (["evaluate", "m", "f", "--sweep", "--patiences", "1,0"], "--patiences '1,0': an integer >= 1 expected"),
])
def test_every_numeric_value_goes_through_the_one_layer(argv, says, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("m", "i"):  # a directory that exists, so the check under test is the one that speaks
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "f").write_text("text\tlabel\na\t0\n")
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and says in err, err


def test_files_that_are_not_utf8_are_one_line_naming_file_and_line(tmp_path):
    from berts.data.qa import read_qa
    from berts.data.tagging import read_conll, read_jsonl
    from berts.errors import UserError
    from berts.serve.tagger import read_words
    from berts.util.fileio import read_text

    bad = "caf\xe9".encode("latin-1")
    conll = tmp_path / "a.conll"
    conll.write_bytes(b"ann B-PER\nsat O\n\n" + bad + b" O\n")
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_bytes(b'{"tokens": ["a"], "tags": ["O"]}\n{"tokens": ["' + bad + b'"], "tags": ["O"]}\n')
    squad = tmp_path / "s.json"
    squad.write_bytes(b'{"data": [\n{"title": "' + bad + b'"}]}')
    raw = tmp_path / "r.txt"
    raw.write_bytes(b"fine\nfine\n" + bad + b"\n")
    for call, where in ((lambda: read_conll(conll), f"{conll}:4"), (lambda: read_jsonl(jsonl), f"{jsonl}:2"),
                        (lambda: read_qa(jsonl), f"{jsonl}:2"), (lambda: read_qa(squad), f"{squad}:2"),
                        (lambda: read_words(raw), f"{raw}:3"), (lambda: read_text(raw), f"{raw}:3")):
        with pytest.raises(UserError) as e:
            call()
        assert str(e.value).startswith(f"{where}: not UTF-8 text") and "\n" not in str(e.value), str(e.value)
    bom = tmp_path / "bom.conll"
    bom.write_bytes("\ufeffann B-PER\r\nsat O\r\n".encode("utf-8"))  # a BOM and CRLF stay fine
    [s] = read_conll(bom)
    assert s.tokens == ["ann", "sat"] and s.tags == ["B-PER", "O"]


def test_the_command_line_catches_any_reader_left(capsys, monkeypatch):
    """The last net (berts.cli): a UnicodeDecodeError from a reader that did not go through
    fileio.read_text is still one line, never a traceback."""
    import berts.commands.predict as predict

    def boom(args):
        return b"ok \xe9".decode("utf-8")
    monkeypatch.setattr(predict, "run", boom)  # register() reads the module's run when the parser is built
    assert main(["predict", "m"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "an input file is not UTF-8 text" in err, err


def test_embed_refuses_a_task_graph(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from test_embed_cli import TEXTS, make_model

    from berts.model.config import BertConfig
    from berts.model.heads import BertForSequenceClassification
    from berts.tokenizer.wordpiece import load_tokenizer

    enc = make_model(tmp_path / "enc")
    tok = load_tokenizer(enc)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "clf", tok)
    assert main(["export", str(tmp_path / "clf"), "--onnx", str(tmp_path / "clf" / "model.onnx")]) == 0
    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    capsys.readouterr()
    _one_line(capsys, ["embed", tmp_path / "clf", texts, "--out", tmp_path / "e.npy", "--quiet"],
              "outputs logits, not last_hidden_state")
    assert not (tmp_path / "e.npy").exists()
    # the encoder's own export embeds as the torch weights do
    assert main(["export", str(enc), "--onnx", str(enc / "model.onnx")]) == 0
    assert main(["embed", str(enc), str(texts), "--out", str(tmp_path / "o.npy"), "--quiet"]) == 0
    enc2 = tmp_path / "enc2"
    import shutil

    shutil.copytree(enc, enc2)
    (enc2 / "model.onnx").unlink()
    assert main(["embed", str(enc2), str(texts), "--out", str(tmp_path / "t.npy"), "--quiet"]) == 0
    import numpy as np

    assert np.abs(np.load(tmp_path / "o.npy") - np.load(tmp_path / "t.npy")).max() < 1e-4
