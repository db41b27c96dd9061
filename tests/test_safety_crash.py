"""Crash windows (issue 13): replacing final/ or best/ never leaves no directory under the name;
a kill between the steps of either way to replace it (the atomic swap, or the two-rename fallback)
leaves a complete directory or one that the next reader recovers; files are published with the
umask's modes; --resume auto falls back past a checkpoint that does not load."""
from __future__ import annotations

import os
import stat

import pytest
import torch

from berts import BertModel, preset
from berts.util import fileio
from berts.errors import UserError
from berts.util.fileio import atomic_write_dir, recover_dir
from berts.train import checkpoint


def _version(d):
    return (d / "version").read_text() if (d / "version").is_file() else None


def _write(version):
    def write(tmp):
        (tmp / "version").write_text(version)
        (tmp / "sub").mkdir()
        (tmp / "sub" / "part").write_text(version * 1000)
    return write


def _complete(d):
    return d.is_dir() and (d / "sub" / "part").read_text() == _version(d) * 1000


def _killed_at(monkeypatch, directory, target, name, n):
    """Fork; in the child, replace ``atomic_write_dir``'s n-th call of ``name`` with a kill (os._exit:
    no except, no finally); return whether the child got that far."""
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery after this point
        calls = [0]
        real = getattr(target, name)

        def step(*args, **kwargs):
            calls[0] += 1
            if calls[0] == n:
                os._exit(9)
            return real(*args, **kwargs)

        monkeypatch.setattr(target, name, step)
        try:
            atomic_write_dir(directory, _write("new"))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 9


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_a_kill_between_any_two_steps_leaves_a_complete_directory(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(fileio, "_exchange", lambda a, b: False)
    else:
        (tmp_path / "x").mkdir(), (tmp_path / "y").mkdir()
        if not fileio._exchange(tmp_path / "x", tmp_path / "y"):
            pytest.skip("no renameat2 RENAME_EXCHANGE here")
    _dir = tmp_path / "run" / "best"
    atomic_write_dir(_dir, _write("old"))
    seen = set()
    # every rename, directory flush and removal of atomic_write_dir is a place to be killed
    for name, target in (("replace", fileio.os), ("rename", fileio.os), ("fsync_path", fileio),
                         ("rmtree", fileio.shutil), ("_exchange", fileio)):
        for n in range(1, 8):
            atomic_write_dir(_dir, _write("old"))
            if not _killed_at(monkeypatch, _dir, target, name, n):
                break
            if not exchange and not _dir.exists():  # only the fallback has the window ...
                seen.add("window")
                assert recover_dir(_dir)  # ... and the next reader closes it
            assert _complete(_dir), (name, n)
            seen.add(_version(_dir))
    assert seen >= {"old", "new"}
    assert ("window" in seen) == (not exchange)


def test_readers_recover_a_directory_left_as_old(tmp_path):
    model = BertModel(preset("tiny", vocab_size=100))
    model.save_pretrained(tmp_path / "run" / "final")
    os.rename(tmp_path / "run" / "final", tmp_path / "run" / ".final.old-123")  # the kill's window
    loaded = BertModel.from_pretrained(tmp_path / "run" / "final")
    assert (tmp_path / "run" / "final" / "model.safetensors").is_file()
    assert torch.equal(loaded.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)
    # and the trainer's start-up cleaning puts it back before it removes leftovers
    os.rename(tmp_path / "run" / "final", tmp_path / "run" / ".final.old-77")
    checkpoint.clean_partial(tmp_path / "run")
    assert sorted(os.listdir(tmp_path / "run")) == ["final"]


def test_an_error_while_writing_leaves_the_previous_directory(tmp_path):
    d = tmp_path / "best"
    atomic_write_dir(d, _write("old"))

    def broken(tmp):
        (tmp / "version").write_text("new")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_dir(d, broken)
    assert _version(d) == "old" and sorted(os.listdir(tmp_path)) == ["best"]


def test_published_directories_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        BertModel(preset("tiny", vocab_size=100)).save_pretrained(tmp_path / "m")
        fileio.atomic_write_file(tmp_path / "f.json", "{}")
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "m") == 0o755
    assert mode(tmp_path / "m" / "model.safetensors") == 0o644
    assert mode(tmp_path / "m" / "config.json") == 0o644
    assert mode(tmp_path / "f.json") == 0o644
    os.umask(0o077)
    try:
        BertModel(preset("tiny", vocab_size=100)).save_pretrained(tmp_path / "m")  # replaced: modes anew
    finally:
        os.umask(old)
    assert mode(tmp_path / "m") == 0o700 and mode(tmp_path / "m" / "model.safetensors") == 0o600


def test_replacing_keeps_other_files_and_their_modes(tmp_path):
    model = BertModel(preset("tiny", vocab_size=100))
    model.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "README.md").write_text("mine")
    os.chmod(tmp_path / "m" / "README.md", 0o640)
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "README.md").read_text() == "mine"
    assert stat.S_IMODE((tmp_path / "m" / "README.md").stat().st_mode) == 0o640


# ----------------------------------------------------------------------------- --resume auto
def _checkpoints(out, steps):
    model = BertModel(preset("tiny", vocab_size=100))
    for step in steps:
        checkpoint.write_checkpoint(checkpoint.step_dir(out, step), model, {"step": step, "modules": {}})
    return model


@pytest.mark.parametrize("damage", ["state", "weights", "empty-weights"])
def test_resume_auto_falls_back_past_a_checkpoint_that_does_not_load(tmp_path, damage, capsys):
    out = tmp_path / "run"
    _checkpoints(out, [10, 20, 30])
    newest = checkpoint.step_dir(out, 30)
    if damage == "state":
        f = newest / checkpoint.STATE_NAME
        f.write_bytes(f.read_bytes()[:50])
    elif damage == "weights":
        f = newest / "model.safetensors"
        f.write_bytes(f.read_bytes()[:-100])
    else:
        (newest / "model.safetensors").write_bytes(b"")
    assert checkpoint.find_latest(out) == newest  # complete by its files ...
    notes = []
    assert checkpoint.resolve_resume("auto", out, notes) == checkpoint.step_dir(out, 20)  # ... but not loadable
    assert len(notes) == 1 and notes[0].startswith(f"skipping checkpoint {newest}: it does not load (")
    assert notes[0].endswith("); using the one before")
    # without a list: a warning line on stderr
    assert checkpoint.resolve_resume("auto", out) == checkpoint.step_dir(out, 20)
    assert capsys.readouterr().err.startswith(f"berts: warning: skipping checkpoint {newest}")
    # the run directory given to --resume: the same; the broken checkpoint named: an error
    assert checkpoint.resolve_resume(str(out), out, []) == checkpoint.step_dir(out, 20)
    with pytest.raises(UserError, match=rf"^--resume {newest}: the checkpoint does not load \("):
        checkpoint.resolve_resume(str(newest), out)


def test_resume_auto_when_no_checkpoint_loads(tmp_path):
    out = tmp_path / "run"
    _checkpoints(out, [10])
    (checkpoint.step_dir(out, 10) / checkpoint.STATE_NAME).write_bytes(b"")
    notes = []
    assert checkpoint.resolve_resume("auto", out, notes) is None and len(notes) == 1
    with pytest.raises(UserError, match="no checkpoint under .* loads"):
        checkpoint.resolve_resume(str(out), out, [])
