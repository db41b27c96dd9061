"""Issue 30, class 1: an output never destroys an input or something that is not an output.
One check (fileio.claim_output_file / check_not_input, claim_output_dir for directories) that
every writing command runs before it loads anything; the cases below go through the real
commands (refused before the model is read, so a stand-in model directory is enough)."""
from __future__ import annotations

import os
import socket
import stat
import threading

import pytest

from berts.cli import main
from berts.errors import UserError
from berts.util.fileio import atomic_write_file, claim_output_dir, claim_output_file, is_stream


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "model.safetensors").write_bytes(b"weights")
    return d


def _refused(capsys, argv, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and needle in err, err
    return err


def test_outputs_that_are_inputs_are_refused_by_every_writer(tmp_path, model_dir, capsys):
    table = tmp_path / "t.tsv"
    table.write_text("text\tlabel\na\t0\n")
    (tmp_path / "link.tsv").symlink_to(table)
    os.link(table, tmp_path / "hard.tsv")
    dotted = f"{tmp_path}/sub/../t.tsv"
    (tmp_path / "sub").mkdir()
    cases = [
        ["predict", str(model_dir), str(table), "--out", str(table)],
        ["predict", str(model_dir), str(table), "--out", str(tmp_path / "link.tsv"), "--overwrite"],
        ["predict", str(model_dir), str(table), "--out", str(tmp_path / "hard.tsv"), "--overwrite"],
        ["augment", str(table), "--model", str(model_dir), "--out", dotted, "--overwrite"],
        ["export", str(model_dir), "--onnx", str(model_dir / "model.safetensors"), "--overwrite"],
        ["export", str(model_dir), "--onnx", str(model_dir / "config.json")],
        ["augment", str(table), "--model", str(model_dir), "--out", str(model_dir / "config.json"), "--overwrite"],
        ["compare", str(model_dir), "--eval-file", str(table), "--out", str(model_dir)],
        ["prepare", str(table), "--tokenizer", str(model_dir), "--out", str(model_dir)],
    ]
    for argv in cases:
        _refused(capsys, argv, "destroy")
    assert table.read_text() == "text\tlabel\na\t0\n"
    assert (model_dir / "model.safetensors").read_bytes() == b"weights"


def test_a_file_berts_did_not_write_needs_overwrite(tmp_path, model_dir, capsys):
    table = tmp_path / "t.tsv"
    table.write_text("text\na\n")
    mine = tmp_path / "notes.jsonl"
    mine.write_text("mine")
    _refused(capsys, ["predict", str(model_dir), str(table), "--out", str(mine)], "pass --overwrite")
    _refused(capsys, ["augment", str(table), "--model", str(model_dir), "--out", str(mine)], "pass --overwrite")
    _refused(capsys, ["export", str(model_dir), "--onnx", str(mine)], "pass --overwrite")
    assert mine.read_text() == "mine"
    assert claim_output_file(mine, inputs=[table], overwrite=True) is False  # asked for: taken
    with pytest.raises(UserError, match="is a directory"):
        claim_output_file(tmp_path, overwrite=True)
    with pytest.raises(UserError, match="no such directory"):
        claim_output_file(tmp_path / "nope" / "x.tsv")


def test_compare_out_keeps_a_users_compare_md(tmp_path, model_dir, capsys):
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "compare.md").write_text("my notes")
    table = tmp_path / "t.tsv"
    table.write_text("text\tlabel\na\t0\n")
    _refused(capsys, ["compare", str(model_dir), "--eval-file", str(table), "--out", str(out)], "comparison")
    assert (out / "compare.md").read_text() == "my notes"
    _refused(capsys, ["compare", str(model_dir), "--eval-file", str(table), "--out", str(table)],
             "destroy")  # was a traceback; an unrelated existing file: "exists and is not a directory"
    (tmp_path / "f").write_text("x")
    _refused(capsys, ["compare", str(model_dir), "--eval-file", str(table), "--out", str(tmp_path / "f")],
             "not a directory")
    # a directory with only another file of the user's: written beside it only with --overwrite, which keeps it
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.txt").write_text("a")
    with pytest.raises(UserError, match="did not write"):
        claim_output_dir(other, "compare")


def test_devices_and_pipes_are_streams_never_replaced(tmp_path):
    assert is_stream("/dev/null") and not is_stream(tmp_path)
    atomic_write_file("/dev/null", "x\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert claim_output_file("/dev/null") is True
    with pytest.raises(UserError, match="regular file"):
        claim_output_file("/dev/null", streams=False, flag="--onnx")
    if os.path.exists("/dev/full"):  # a full device: one line, the node stays
        with pytest.raises(UserError, match="no space left"):
            atomic_write_file("/dev/full", "x\n")
        assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    assert claim_output_file(fifo) is True
    atomic_write_file(fifo, "through the pipe\n")
    reader.join(5)
    assert got == [b"through the pipe\n"] and stat.S_ISFIFO(os.stat(fifo).st_mode)
    sock_path = tmp_path / "s"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with pytest.raises(UserError, match="socket"):
            claim_output_file(sock_path)


def test_demo_out_with_someone_elses_files_needs_overwrite(tmp_path):
    from berts.commands.demo import check_demo_out

    check_demo_out(tmp_path / "new", False)
    out = tmp_path / "d"
    out.mkdir()
    (out / "report.md").write_text("an earlier demo's")
    (out / "zh").mkdir()
    check_demo_out(out, False)  # its own rerun
    (out / "thesis.tex").write_text("mine")
    with pytest.raises(UserError, match=r"holds 1 file the demo did not write \(thesis.tex\)"):
        check_demo_out(out, False)
    check_demo_out(out, True)
    with pytest.raises(UserError, match="not a directory"):
        check_demo_out(out / "thesis.tex", True)


def test_compare_out_never_touches_a_training_run(tmp_path, model_dir, capsys):
    run = claim_output_dir(tmp_path / "run", "finetune")
    (run / "final").mkdir()
    (run / "final" / "x").write_text("weights")
    table = tmp_path / "t.tsv"
    table.write_text("text\tlabel\na\t0\n")
    _refused(capsys, ["compare", str(model_dir), "--eval-file", str(table), "--out", str(run), "--overwrite"],
             "holds a berts finetune run")
    assert (run / "final" / "x").read_text() == "weights"
    plain = tmp_path / "plain"  # an older run (no marker): its final/ is not a comparison's to remove
    (plain / "final").mkdir(parents=True)
    claim_output_dir(plain, "compare", overwrite=True)
    assert (plain / "final").is_dir()


@pytest.mark.parametrize("task", ["qa", "multi-label", "multiple-choice", "classification"])
def test_predict_guards_every_tasks_output_before_dispatch(tmp_path, task, capsys):
    """The output guard runs once, before `berts predict` hands a directory to its task's serving:
    --out naming the input is refused in one line for every task, and the input is kept."""
    import json

    from berts.cli import main

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "bert", "finetune_data": {"task": task}}))
    data = tmp_path / "in.jsonl"
    data.write_text('{"question": "q", "context": "c"}\n')
    assert main(["predict", str(model), str(data), "--out", str(data)]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in.jsonl" in err
    assert data.read_text() == '{"question": "q", "context": "c"}\n'


def test_evaluate_report_png_is_claimed_like_every_output(tmp_path, model_dir, capsys):
    """`berts evaluate --report-png` (found by experiments/2026-12-06-hostile): the input, a link
    to it, a model file, a user's file and a name matplotlib cannot write were a traceback or a
    replaced file; each is now one line before the model loads, and /dev/full is a stream."""
    table = tmp_path / "t.tsv"
    table.write_text("text\tlabel\na\t0\n")
    (tmp_path / "link.png").symlink_to(table)
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my picture")
    ev = ["evaluate", str(model_dir), str(table), "--report-png"]
    _refused(capsys, [*ev, str(table)], "is the input")
    _refused(capsys, [*ev, str(tmp_path / "link.png"), "--overwrite"], "is the input")
    _refused(capsys, [*ev, str(model_dir / "config.json")], "destroy the model")
    _refused(capsys, [*ev, str(mine)], "pass --overwrite")
    _refused(capsys, [*ev, str(tmp_path)], "this writes .png files")
    _refused(capsys, [*ev, str(tmp_path / "no" / "r.png")], "no such directory")
    assert table.read_text() == "text\tlabel\na\t0\n" and mine.read_bytes() == b"my picture"
    assert (model_dir / "config.json").read_text() == "{}"


def test_report_png_writes_atomically_and_to_streams(tmp_path):
    from berts.metrics.report import save_report_png

    report = {"classes": [{"name": "a", "precision": 1.0, "recall": 0.5, "f1": 0.667}], "confusion": [[1]]}
    out = save_report_png(report, tmp_path / "r.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.path.exists("/dev/null"):
        save_report_png(report, "/dev/null")
        assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
