"""A full disk (issue 13): every writer ends with one line naming the path, and leaves nothing
half-written where a later command would take it for whole. The disk is a fault-injecting write:
files opened for writing under a directory take ``budget`` bytes in all, then raise ENOSPC."""
from __future__ import annotations

import builtins
import errno
import io
import os

import pytest
import torch
from test_data_support import make_tokenizer, random_corpus

from berts import BertModel, preset
from berts.cli import main
from berts.data import prepare
from berts.data.shards import ShardReader
from berts.errors import UserError
from berts.util.fileio import atomic_write_file
from berts.tokenizer.wordpiece import Tokenizer, load_tokenizer
from berts.train import checkpoint

NO_SPACE = "cannot write (no space left on the device)"


class _File:
    def __init__(self, f, disk):
        self._f, self._disk = f, disk

    def write(self, data):
        self._disk.take(len(data))
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        return iter(self._f)


class FullDisk:
    """Under ``root``: ``budget`` more bytes, then ENOSPC (open()+write, os.write)."""

    def __init__(self, monkeypatch, root, budget=0):
        self.root, self.budget = str(root), budget
        real_open, real_write = builtins.open, os.write

        def fake_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and self.under(file):
                return _File(f, self)
            return f

        def fake_write(fd, data):
            try:
                path = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                path = ""
            if self.under(path):
                self.take(len(data))
            return real_write(fd, data)

        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(os, "write", fake_write)

    def under(self, path) -> bool:
        return os.path.abspath(os.fspath(path)).startswith(self.root)

    def take(self, n):
        if n > self.budget:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.budget -= n


def _listing(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ----------------------------------------------------------------------------- the writers
def test_atomic_write_file(tmp_path, monkeypatch):
    atomic_write_file(tmp_path / "meta.json", "old")
    FullDisk(monkeypatch, tmp_path, budget=2)
    with pytest.raises(UserError) as e:
        atomic_write_file(tmp_path / "meta.json", "{ a longer new text }")
    assert str(e.value) == f"{tmp_path / 'meta.json'}: {NO_SPACE}"
    monkeypatch.undo()
    assert (tmp_path / "meta.json").read_text() == "old" and _listing(tmp_path) == ["meta.json"]


@pytest.mark.parametrize("budget", [0, 3000])
def test_model_save(tmp_path, monkeypatch, budget):
    old = BertModel(preset("tiny", vocab_size=100))
    old.save_pretrained(tmp_path / "m")
    before = _listing(tmp_path)
    FullDisk(monkeypatch, tmp_path, budget)
    with pytest.raises(UserError) as e:
        BertModel(preset("tiny", vocab_size=100)).save_pretrained(tmp_path / "m")
    assert str(e.value) == f"{tmp_path / 'm'}: {NO_SPACE}"
    monkeypatch.undo()
    assert _listing(tmp_path) == before  # no temporary directory left, the old model whole
    back = BertModel.from_pretrained(tmp_path / "m")
    assert torch.equal(back.embeddings.word_embeddings.weight, old.embeddings.word_embeddings.weight)


def test_checkpoint(tmp_path, monkeypatch):
    model = BertModel(preset("tiny", vocab_size=100))
    checkpoint.write_checkpoint(checkpoint.step_dir(tmp_path, 10), model, {"step": 10, "modules": {}})
    FullDisk(monkeypatch, tmp_path, budget=200_000)  # the weights fit, the trainer state does not
    with pytest.raises(UserError) as e:
        checkpoint.write_checkpoint(checkpoint.step_dir(tmp_path, 20), model, {"step": 20, "modules": {},
                                    "big": torch.zeros(100_000)})
    assert str(e.value) == f"{checkpoint.step_dir(tmp_path, 20)}: {NO_SPACE}"
    monkeypatch.undo()
    assert _listing(tmp_path / "checkpoints")[:1] == ["step-10"]
    assert not any(p.name.startswith(("step-20", ".step-20")) for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoint.resolve_resume("auto", tmp_path, []) == checkpoint.step_dir(tmp_path, 10)


def test_tokenizer_save_keeps_the_previous_one(tmp_path, monkeypatch):
    old = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"])})
    old.save_pretrained(tmp_path / "tok")
    new = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"])})
    for budget in (0, 40, 2000):  # nothing, part of vocab.txt, part of tokenizer.json
        FullDisk(monkeypatch, tmp_path, budget)
        with pytest.raises(UserError) as e:
            new.save_pretrained(tmp_path / "tok")
        assert str(e.value) == f"{tmp_path / 'tok'}: {NO_SPACE}"
        monkeypatch.undo()
        assert _listing(tmp_path) == ["tok", "tok/special_tokens_map.json", "tok/tokenizer.json",
                                      "tok/tokenizer_config.json", "tok/vocab.txt"]
        assert load_tokenizer(tmp_path / "tok").vocab_size == 6


def test_tokenizer_train_command(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"the word w{i} and more words w{i % 7}\n" for i in range(300)))
    FullDisk(monkeypatch, tmp_path, budget=1000)
    assert main(["tokenizer", "train", "--corpus", str(corpus), "--vocab-size", "60", "--out",
                 str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == f"berts: error: {tmp_path / 'out'}: {NO_SPACE}\n"
    monkeypatch.undo()
    assert not (tmp_path / "out").exists()  # no 0-byte tokenizer.json for a later command to load


def test_prepare(tmp_path, monkeypatch, capsys):
    tok = make_tokenizer(tmp_path / "tok")
    corpus = random_corpus(tmp_path / "c.txt", 200)
    out = tmp_path / "shards"
    for budget in (100, 20_000):  # in the shards; after them (continuation.npy / meta.json)
        FullDisk(monkeypatch, out, budget)
        with pytest.raises(UserError) as e:
            prepare([corpus], tok, out, workers=1, shard_size=50)
        assert str(e.value) == f"{out}: {NO_SPACE}"
        monkeypatch.undo()
        assert _listing(out) == []  # no shards without meta.json
        with pytest.raises(UserError, match="not a prepared data directory"):
            ShardReader(out)
    FullDisk(monkeypatch, out, 5000)
    assert main(["prepare", str(corpus), "--tokenizer", str(tok), "--out", str(out), "--workers", "1"]) == 2
    assert capsys.readouterr().err == f"berts: error: {out}: {NO_SPACE}\n"
    monkeypatch.undo()
    prepare([corpus], tok, out, workers=1, shard_size=50)  # the disk has room again: the same command works
    assert len(ShardReader(out)) > 0


def test_meta_json_is_written_last(tmp_path, monkeypatch):
    """A kill before meta.json: the shards are there but the directory is not prepared data."""
    tok = make_tokenizer(tmp_path / "tok")
    corpus = random_corpus(tmp_path / "c.txt", 100)
    import berts.data.pipeline as pipeline

    def killed(path, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "atomic_write_file", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare([corpus], tok, tmp_path / "out", workers=1)
    assert not (tmp_path / "out" / "meta.json").exists()
    with pytest.raises(UserError, match="not a prepared data directory"):
        ShardReader(tmp_path / "out")


def test_a_truncated_shard_is_one_line(tmp_path, capsys):
    tok = make_tokenizer(tmp_path / "tok")
    out = tmp_path / "out"
    prepare([random_corpus(tmp_path / "c.txt", 100)], tok, out, workers=1)
    tokens = out / "shard_00000.tokens.bin"
    size = tokens.stat().st_size
    tokens.write_bytes(tokens.read_bytes()[:size // 2])
    with pytest.raises(UserError) as e:
        ShardReader(out)
    assert str(e.value) == (f"{tokens}: {size // 2} bytes, meta.json says {size} (a truncated or foreign shard); "
                            "run `berts prepare` again")
    tokens.unlink()
    with pytest.raises(UserError, match=r"shard_00000.tokens.bin: missing \(the shard is listed in meta.json\)"):
        ShardReader(out)
    prepare([random_corpus(tmp_path / "c.txt", 100)], tok, out, workers=1, overwrite=True)
    index = out / "shard_00000.index.npy"
    index.write_bytes(index.read_bytes()[:100])
    with pytest.raises(UserError, match=rf"^{index}: cannot read \("):
        ShardReader(out)


# ----------------------------------------------------------------------------- stdout
class _BrokenStdout(io.StringIO):
    def __init__(self, error):
        super().__init__()
        self.error = error

    def write(self, text):
        raise OSError(self.error, os.strerror(self.error)) if self.error != errno.EPIPE else BrokenPipeError(
            errno.EPIPE, "Broken pipe")


def test_stdout_on_a_full_disk_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout", _BrokenStdout(errno.ENOSPC))
    assert main(["info", "tiny"]) == 2
    assert capsys.readouterr().err == f"berts: error: <stdout>: {NO_SPACE}\n"


def test_stdout_closed_pipe_is_a_quiet_exit(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout", _BrokenStdout(errno.EPIPE))
    assert main(["info", "tiny"]) == 0
    assert capsys.readouterr().err == ""


def test_stdout_none_is_no_traceback(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdout", None)  # started with `>&-`
    assert main(["info", "tiny"]) == 0
    assert capsys.readouterr().err == ""
