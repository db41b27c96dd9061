"""`berts embed`: outputs equal berts.embed.Encoder.encode, input formats, bad input, the engines
(int8, ONNX) and torchrun (2 gloo processes give the one-process output, whole and in order)."""
import json
import os
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from berts.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["cat", "dog", "bird", "tree", "river", "hill", "house", "red", "blue", "green", "big", "small"]
TEXTS = ["the cat is big", "a dog by the river", "red house on a hill", "the small bird",
         "green trees and blue rivers", "cat", "a big dog and a small cat by the house", "the hill is red"]


def make_model(path: Path, st: bool = False) -> Path:
    from berts.model.config import BertConfig
    from berts.model.encoder import BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "is", ".", ",", "and", "on", "by",
              *WORDS, "##s", "run", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    model = BertModel(cfg)
    if st:
        from berts.embed.st_format import write_st_dir

        write_st_dir(path, model, tok, "mean", True, 32)
    else:
        model.save_pretrained(path, tokenizer=tok)
    return path


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("embedcli") / "st", st=True)


def reference(model_dir, texts):
    from berts.embed.encoder import Encoder

    return Encoder.from_pretrained(model_dir).encode(texts)


def test_lines_to_npy_jsonl_parquet_equal_the_encoder(model_dir, tmp_path, capsys):
    f = tmp_path / "t.txt"
    f.write_text(TEXTS[0] + "\n\n" + "\n".join(TEXTS[1:]) + "\n   \n")  # two empty lines: skipped
    want = reference(model_dir, TEXTS)
    assert main(["embed", str(model_dir), str(f), "--out", str(tmp_path / "e.npy"), "--batch-size", "3"]) == 0
    err = capsys.readouterr().err
    assert "2 empty text(s) skipped (first at line 2)" in err
    got = np.load(tmp_path / "e.npy")
    assert got.shape == (8, 32) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)  # the directory's 2_Normalize

    assert main(["embed", str(model_dir), str(f), "--out", str(tmp_path / "e.jsonl"), "--no-normalize"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["1", "3", "4", "5", "6", "7", "8", "9"]  # the line numbers
    assert [r["text"] for r in rows] == TEXTS
    raw = np.array([r["embedding"] for r in rows])
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), want, atol=1e-6)
    assert abs(np.linalg.norm(raw[0]) - 1) > 1e-3  # not normalised

    pq = pytest.importorskip("pyarrow.parquet")
    assert main(["embed", str(model_dir), str(f), "--out", str(tmp_path / "e.parquet")]) == 0
    table = pq.read_table(tmp_path / "e.parquet").to_pydict()
    assert table["text"] == TEXTS and table["id"][1] == "3"
    np.testing.assert_allclose(np.array(table["embedding"]), want, atol=1e-6)


def test_jsonl_corpus_and_table_column(model_dir, tmp_path):
    docs = tmp_path / "c.jsonl"
    docs.write_text("".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS[:3])))
    assert main(["embed", str(model_dir), str(docs), "--out", str(tmp_path / "c.jsonl.out.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "c.jsonl.out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d0", "d1", "d2"]
    table = tmp_path / "t.tsv"
    table.write_text("label\tsentence\n" + "".join(f"{i % 2}\t{t}\n" for i, t in enumerate(TEXTS)))
    assert main(["embed", str(model_dir), str(table), "--text-column", "sentence", "--out", str(tmp_path / "t.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "t.npy"), reference(model_dir, TEXTS), atol=1e-6)


def test_bad_input_is_one_line_and_writes_nothing(model_dir, tmp_path, capsys):
    out = tmp_path / "e.npy"
    out.write_bytes(b"earlier")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nbroken \xff here\n")
    assert main(["embed", str(model_dir), str(bad), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"berts: error: {bad}:2: invalid UTF-8 (byte 0xff at column 8)"
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    assert main(["embed", str(model_dir), str(empty), "--out", str(out)]) == 2
    assert "no texts" in capsys.readouterr().err
    assert main(["embed", str(model_dir), str(bad), "--out", str(tmp_path / "e.csv")]) == 2
    assert ".npy, .jsonl, .parquet" in capsys.readouterr().err
    assert main(["embed", str(tmp_path), str(bad), "--out", str(out)]) == 2  # not a model directory
    assert out.read_bytes() == b"earlier"


def test_int8_engine_is_close_to_fp32(model_dir, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS) + "\n")
    assert main(["embed", str(model_dir), str(f), "--out", str(tmp_path / "q.npy"), "--int8"]) == 0
    q, ref = np.load(tmp_path / "q.npy"), reference(model_dir, TEXTS)
    cos = (q * ref).sum(1)  # both normalised
    assert cos.min() > 0.99 and np.abs(q - ref).max() > 0  # close, and really another engine


@pytest.mark.onnx
def test_onnx_engine_equals_torch(model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    import shutil

    from berts.embed.engines import OnnxEncoder, load_engine
    from berts.serve.export import export_onnx

    onnx_dir = tmp_path / "onnx"
    shutil.copytree(model_dir, onnx_dir)
    export_onnx(onnx_dir, onnx_dir / "model.onnx", texts=TEXTS)  # `berts export DIR --onnx DIR/model.onnx`
    enc = load_engine(onnx_dir)
    assert isinstance(enc, OnnxEncoder)
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=3), reference(model_dir, TEXTS), rtol=0, atol=1e-5)


@pytest.mark.ddp
def test_torchrun_two_processes_write_the_whole_output_in_order(model_dir, tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS + TEXTS[:3]) + "\n")  # 11 texts: slices of 5 and 6
    out = tmp_path / "e.jsonl"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "berts",
           "embed", str(model_dir), str(f), "--out", str(out), "--batch-size", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("embed: 11 texts") == 1 and "(2 processes)" in proc.stdout  # rank 0 writes
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 12)]
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), reference(model_dir, TEXTS + TEXTS[:3]),
                               rtol=0, atol=1e-5)
