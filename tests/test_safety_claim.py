"""claim_output_dir: a command takes an output directory only when it is new, empty or its own run
(issue 13, data loss). Every case asserts the one line the user gets and what is left on disk."""
from __future__ import annotations

import json
import os

import pytest

from berts.errors import UserError
from berts.util.fileio import MARKER, claim_output_dir, read_marker


def _earlier_run(out, kind="pretrain"):
    claim_output_dir(out, kind)
    (out / "config.yaml").write_text("model: tiny\n")
    (out / "metrics.jsonl").write_text("{}\n")
    for d in ("checkpoints/step-10", "final", "tb"):
        (out / d).mkdir(parents=True)
        (out / d / "x").write_text("x")


def test_missing_or_empty_is_created_and_marked(tmp_path):
    out = claim_output_dir(tmp_path / "a" / "run", "pretrain")
    assert out.is_dir() and read_marker(out)["kind"] == "pretrain"
    assert sorted(os.listdir(out)) == [MARKER]
    (tmp_path / "empty").mkdir()
    claim_output_dir(tmp_path / "empty", "finetune")
    assert json.loads((tmp_path / "empty" / MARKER).read_text())["kind"] == "finetune"


def test_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("mine")
    with pytest.raises(UserError, match=r"f: exists and is not a directory$"):
        claim_output_dir(tmp_path / "f", "pretrain")
    assert (tmp_path / "f").read_text() == "mine"


def test_foreign_files_are_refused_and_kept(tmp_path):
    out = tmp_path / "x"
    out.mkdir()
    for name in ("notes.txt", "config.yaml", "data.csv", "paper.tex", "z.txt"):
        (out / name).write_text("mine")
    with pytest.raises(UserError) as e:
        claim_output_dir(out, "pretrain")
    msg = str(e.value)
    assert msg.startswith(f"{out}: holds 4 files that berts did not write (data.csv, notes.txt, paper.tex, z.txt)")
    assert "--overwrite" in msg and "\n" not in msg
    assert sorted(os.listdir(out)) == ["config.yaml", "data.csv", "notes.txt", "paper.tex", "z.txt"]
    # --overwrite writes beside them: only what berts writes goes, the user's files stay
    claim_output_dir(out, "pretrain", overwrite=True)
    assert sorted(os.listdir(out)) == [MARKER, "data.csv", "notes.txt", "paper.tex", "z.txt"]
    assert (out / "notes.txt").read_text() == "mine"


def test_an_earlier_run_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    _earlier_run(out)
    with pytest.raises(UserError) as e:
        claim_output_dir(out, "pretrain")
    assert str(e.value) == (f"{out}: holds an earlier pretrain run (checkpoints/, config.yaml, final/, "
                            f"metrics.jsonl, ...); pass --resume auto to continue it, or --overwrite to "
                            f"replace its outputs")
    assert (out / "checkpoints" / "step-10" / "x").exists()
    # its own directory, resumed: nothing touched
    before = sorted(os.listdir(out))
    assert claim_output_dir(out, "pretrain", resume=True) == out
    assert sorted(os.listdir(out)) == before
    # a run of another kind is not resumed
    with pytest.raises(UserError, match=r"holds an earlier pretrain run .*; pass --overwrite to replace it$"):
        claim_output_dir(out, "finetune", resume=True)
    (out / "notes.txt").write_text("mine")
    claim_output_dir(out, "finetune", overwrite=True)
    assert sorted(os.listdir(out)) == [MARKER, "notes.txt"]
    assert read_marker(out)["kind"] == "finetune"


def test_overwrite_never_removes_what_the_run_reads(tmp_path):
    out = tmp_path / "run"
    _earlier_run(out)
    with pytest.raises(UserError) as e:
        claim_output_dir(out, "finetune", overwrite=True, protect=[out / "final"])
    assert str(e.value) == (f"{out}: this run reads {(out / 'final').resolve()}, which lies inside "
                            f"{out / 'final'} that --overwrite would remove; write to another --out")
    assert (out / "final" / "x").exists() and (out / "checkpoints" / "step-10").exists()
    # a protected path elsewhere (or beside the removed names) is no obstacle
    claim_output_dir(out, "pretrain", overwrite=True, protect=[tmp_path / "model", out])
    assert sorted(os.listdir(out)) == [MARKER]


def test_a_run_of_an_older_berts_without_marker(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "config.yaml").write_text("x")
    (out / "checkpoints").mkdir()
    with pytest.raises(UserError, match="holds an earlier pretrain run"):
        claim_output_dir(out, "pretrain")
    claim_output_dir(out, "pretrain", resume=True)
    assert read_marker(out)["kind"] == "pretrain" and (out / "config.yaml").exists()


def test_tokenizer_files_are_berts_only_for_a_tokenizer(tmp_path):
    out = tmp_path / "tok"
    out.mkdir()
    (out / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(UserError, match=r"holds an earlier tokenizer \(vocab.txt\); pass --overwrite to replace it$"):
        claim_output_dir(out, "tokenizer")
    with pytest.raises(UserError, match=r"holds 1 file that berts did not write \(vocab.txt\)"):
        claim_output_dir(out, "pretrain")
    with pytest.raises(UserError, match="lies inside"):  # `tokenizer import tok/vocab.txt --out tok`
        claim_output_dir(out, "tokenizer", overwrite=True, protect=[out / "vocab.txt"])
    claim_output_dir(out, "tokenizer", overwrite=True)
    assert sorted(os.listdir(out)) == [MARKER]


def test_leftovers_of_atomic_writes_are_berts(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".final.tmp-abc").mkdir()
    (out / f".{MARKER[1:]}.tmp-12").write_text("")
    claim_output_dir(out, "pretrain")  # nothing but hidden leftovers: taken
    assert read_marker(out)["kind"] == "pretrain"
