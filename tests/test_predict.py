"""`berts predict` / `berts evaluate` through the inference API: the text (or an id) in the output,
one numbering for a file and for stdin, the header detected on stdin, --int8 reported against
fp32, and the one-line errors (batch size, <stdin>, no classifier weights, stdout closed)."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_inference import make_classifier, sentences

from berts.cli import main


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_classifier(tmp_path_factory.mktemp("pred") / "clf")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "test.tsv"
    rows = [f"{t}\t{'pos' if i % 3 else 'neg'}" for i, t in enumerate(sentences(40, seed=21))]
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run(args, stdin: bytes | None, capsys):
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        rc = main([str(a) for a in args])
    finally:
        sys.stdin = saved
    out, err = capsys.readouterr()
    return rc, out, err


def test_file_and_stdin_give_the_same_output(model, table, tmp_path, capsys):
    rc, from_file, _ = run(["predict", model, table], None, capsys)
    assert rc == 0
    rc, from_stdin, err = run(["predict", model], table.read_bytes(), capsys)
    assert rc == 0 and from_stdin == from_file and err == ""
    rows = [json.loads(x) for x in from_file.splitlines()]
    lines = table.read_text().splitlines()
    assert [r["line"] for r in rows] == list(range(2, 42))  # the physical line; the header is line 1
    assert [r["text"] for r in rows] == [lines[r["line"] - 1].split("\t")[0] for r in rows]
    assert set(rows[0]) == {"line", "text", "label", "probabilities"}
    # `head -4 test.tsv | berts predict M`: the header is not predicted
    head = b"".join(table.read_bytes().splitlines(keepends=True)[:4])
    rc, out, _ = run(["predict", model], head, capsys)
    three = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and [(r["line"], r["text"], r["label"]) for r in three] == \
        [(r["line"], r["text"], r["label"]) for r in rows[:3]]  # (other batches: probabilities within 1e-5)
    assert [r["probabilities"]["pos"] for r in three] == pytest.approx([r["probabilities"]["pos"] for r in rows[:3]],
                                                                       abs=1e-5)
    # plain lines (no header naming the model's column): the same rule for a file and for stdin
    plain = tmp_path / "plain.txt"
    plain.write_text("the cat sat\n\na big red dog ran\n")
    rc, a, _ = run(["predict", model, plain], None, capsys)
    rc2, b, _ = run(["predict", model], plain.read_bytes(), capsys)
    assert rc == rc2 == 0 and a == b
    assert [(r["line"], r["text"]) for r in map(json.loads, a.splitlines())] == [(1, "the cat sat"), (3, "a big red dog ran")]
    # the labels are the API's
    from berts.serve.predict import Classifier

    preds = Classifier.from_pretrained(model).predict([r["text"] for r in rows])
    assert [r["label"] for r in rows] == [p.label for p in preds]


def test_id_column(model, tmp_path, capsys):
    data = tmp_path / "ids.tsv"
    data.write_text("id\tsentence\nr-7\tthe cat sat\nr-9\ta dog\n")
    rc, out, _ = run(["predict", model, data, "--id-column", "id"], None, capsys)
    rows = [json.loads(x) for x in out.splitlines()]
    assert rc == 0 and [(r["line"], r["id"]) for r in rows] == [(2, "r-7"), (3, "r-9")] and "text" not in rows[0]
    rc, out2, _ = run(["predict", model, "--id-column", "id"], data.read_bytes(), capsys)
    assert out2 == out


def test_evaluate_and_predict_int8_report_against_fp32(model, table, capsys):
    rc, out, _ = run(["evaluate", model, table, "--json"], None, capsys)
    fp32 = json.loads(out)
    rc, out, _ = run(["evaluate", model, table, "--json", "--int8"], None, capsys)
    int8 = json.loads(out)
    assert rc == 0 and int8["fp32"] == {k: v for k, v in fp32.items() if k != "examples"}
    assert 0.8 <= int8["int8_vs_fp32"]["label_agreement"] <= 1 and int8["examples"] == 40
    rc, out, _ = run(["evaluate", model, table, "--int8"], None, capsys)
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith(f"{table} (int8): accuracy") and lines[1].startswith(f"{table} (fp32)")
    assert lines[2].startswith("int8 vs fp32: accuracy ")
    rc, out, err = run(["predict", model, table, "--int8"], None, capsys)
    assert rc == 0 and len(out.splitlines()) == 40
    assert "predict --int8: against fp32 on the first 40 examples: label_agreement" in err


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_one_line_errors(model, table, tmp_path, capsys, command):
    for size in ("0", "-1"):
        with pytest.raises(SystemExit) as exit_:  # argparse's (berts.util.values): before the model loads
            run([command, model, table, "--batch-size", size], None, capsys)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and "--batch-size: an integer >= 1 expected" in err
    # a classifier directory without its classifier weights: not a random head
    headless = tmp_path / "headless"
    make_classifier(headless)
    from safetensors.torch import load_file, save_file

    sd = load_file(str(headless / "model.safetensors"))
    save_file({k: v for k, v in sd.items() if not k.startswith("classifier")}, str(headless / "model.safetensors"))
    rc, out, err = run([command, headless, table], None, capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1 and "weights are not in the checkpoint" in err


def test_stdin_errors_name_stdin(model, capsys):
    rc, _, err = run(["predict", model], b"sentence\tlabel\nthe cat\tpos\nno label here\tpos\textra\n", capsys)
    assert rc == 2 and err == "berts: error: <stdin>:3: expected 2 columns, found 3\n"
    rc, _, err = run(["predict", model, "--skip-bad-rows"], b"sentence\tlabel\nthe cat\tpos\na\tb\tc\n", capsys)
    assert rc == 0 and err.startswith("<stdin>: 1 examples, skipped 1 bad rows") and "berts-predict-" not in err


def test_closed_stdout_is_one_line(model, table):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1] / "src"))
    p = subprocess.run(f"'{sys.executable}' -m berts predict '{model}' '{table}' >&-", shell=True, env=env,
                       capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip().splitlines()[-1] == "berts: error: stdout is closed: nowhere to write the predictions (give --out FILE)"
