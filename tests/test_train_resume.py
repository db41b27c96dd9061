"""Checkpoints and resume: SIGKILL + --resume gives bit-identical weights; a kill during a
checkpoint write never leaves the latest checkpoint unreadable; --resume vs --init-from."""
import json
import signal

import pytest
import torch
from train_utils import RUN, SLOW_STEPS, cli, kill_after_first_checkpoint, pretrain_args, shards, spawn, wait_for, weights  # noqa: F401 (fixture)

from berts.train import checkpoint


HANG_IN_CHECKPOINT = """
import sys, time
from pathlib import Path
import torch
save = torch.save
def half_then_hang(obj, f, *args, **kwargs):
    save(obj, f, *args, **kwargs)
    if isinstance(obj, dict) and obj.get("step") == 16:  # the second checkpoint: cut it and hang
        if hasattr(f, "flush"):  # a file object (the writer flushes and fsyncs it itself)
            f.flush()
        path = Path(getattr(f, "name", f))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        Path(sys.argv[1]).touch()
        time.sleep(120)
torch.save = half_then_hang
from berts.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli(pretrain_args(shards, out, *RUN)) == 0
    return out


def losses(out):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["mlm"], r["lr"]) for r in rows if r["kind"] == "train"]


def test_sigkill_then_resume_is_bit_identical(shards, reference, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    proc = spawn(SLOW_STEPS, *pretrain_args(shards, out, *RUN))
    kill_after_first_checkpoint(proc, out, 0.15)
    killed_at = checkpoint.find_latest(out)
    assert cli(pretrain_args(shards, out, *RUN) + ["--resume", "auto"]) == 0
    a, b = weights(reference / "final"), weights(out / "final")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed from {killed_at.name}: weights differ in {different[:3]}"
    assert losses(out) == losses(reference)  # the same losses, step for step, and no duplicate records
    state = checkpoint.read_state(checkpoint.find_latest(out))
    ref_state = checkpoint.read_state(checkpoint.find_latest(reference))
    assert state["sampler"] == ref_state["sampler"] and state["step"] == ref_state["step"] == 24
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-16", "step-24"]  # keep_last 2


def test_kill_during_a_checkpoint_write_keeps_the_latest_readable(shards, reference, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    marker = tmp_path / "hanging"
    proc = spawn(HANG_IN_CHECKPOINT, marker, *pretrain_args(shards, out, *RUN))
    try:
        wait_for(marker.exists, proc, what="the checkpoint write")
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    partial = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".step-16.tmp-")]
    assert partial, "the kill did not land inside the write"
    latest = checkpoint.find_latest(out)
    assert latest.name == "step-8"
    assert checkpoint.read_state(latest)["step"] == 8
    assert checkpoint.resolve_resume("auto", out) == latest
    import berts

    berts.load(latest)  # the model directory loads too
    assert cli(pretrain_args(shards, out, *RUN) + ["--resume", "auto"]) == 0
    assert not [p for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]  # cleaned up
    a, b = weights(reference / "final"), weights(out / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_and_init_from_are_distinct(shards, reference, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "init"
    assert cli(pretrain_args(shards, out, "train.max_steps=4") + ["--init-from", reference / "final"]) == 0
    printed = capsys.readouterr()
    assert "initialised from" in printed.out + printed.err and "weights only, fresh optimizer" in printed.out + printed.err
    assert checkpoint.read_state(checkpoint.find_latest(out))["step"] == 4  # a new run: its own steps
    assert json.loads((out / "final" / "train_result.json").read_text())["step"] == 4

    assert cli(pretrain_args(shards, tmp_path / "x", "train.max_steps=4")
               + ["--resume", "auto", "--init-from", reference / "final"]) == 2
    assert "--resume continues a run" in capsys.readouterr().err
    assert cli(pretrain_args(shards, tmp_path / "y", "train.max_steps=4") + ["--resume", reference / "final"]) == 2
    assert "use --init-from" in capsys.readouterr().err

    fresh = tmp_path / "fresh"
    assert cli(pretrain_args(shards, fresh, "train.max_steps=4") + ["--resume", "auto"]) == 0
    printed = capsys.readouterr()
    assert "no checkpoint" in printed.out + printed.err

    # resuming a finished run from its last checkpoint: nothing left to do, same weights
    assert cli(pretrain_args(shards, reference, *RUN) + ["--resume", "auto"]) == 0
    printed = capsys.readouterr()
    assert "resumed from" in printed.out + printed.err and "at step 24" in printed.out + printed.err
