"""Training runs lose nothing (issue 13): --out is claimed (someone else's files, an earlier run,
the model being read, a file), SIGTERM/SIGINT write a checkpoint and resume exactly, and the last
tracebacks and silent garbage of the training commands are one-line errors."""
import json
import random
import signal
import string

import pytest
import torch
from train_utils import RUN, SLOW_STEPS, cli, pretrain_args, shards, spawn, wait_for, weights  # noqa: F401 (fixture)

from berts.train import checkpoint

WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false", "--set", "log.every=5"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny berts BertForPreTraining directory with its tokenizer."""
    from berts import BertConfig, BertForPreTraining
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("safety")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS) | {"cat"}), *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertForPreTraining(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64)).save_pretrained(root / "bert",
                                                                                                   tokenizer=tok)
    return root / "bert"


def table(path, n=32, seed=0, labels=("neg", "pos")):
    rng = random.Random(seed)
    rows = ["sentence\tlabel"] + [" ".join(rng.choice(WORDS) for _ in range(5)) + "\t" + labels[i % len(labels)]
                                  for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def finetune(base, train, out, *extra):
    return cli(["finetune", "--model", base, "--train", train, "--text-column", "sentence", "--out", out,
                "--max-steps", "2", "--batch-size", "8", *COMMON, *extra])


def snapshot(directory):
    """{relative path: bytes} of every file under ``directory``."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("berts: error: "), err
    return err.strip()


# ----------------------------------------------------------------------------- --out
def test_someone_elses_files_are_refused_and_kept(base, tmp_path, capsys):
    train = table(tmp_path / "train.tsv")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    (out / "config.yaml").write_text("mine: true\n")  # a berts name, but no berts run wrote it
    assert finetune(base, train, out) == 2
    err = one_line(capsys)
    assert f"{out}: holds" in err and "notes.txt" in err and "--overwrite" in err
    assert snapshot(out) == {"notes.txt": b"my notes\n", "config.yaml": b"mine: true\n"}


def test_a_new_run_in_an_earlier_runs_out_needs_resume_or_overwrite(base, tmp_path, capsys):
    train = table(tmp_path / "train.tsv")
    out = tmp_path / "run"
    assert finetune(base, train, out) == 0
    before = snapshot(out)
    capsys.readouterr()
    assert finetune(base, train, out, "--seed", "1") == 2
    err = one_line(capsys)
    assert f"{out}: holds an earlier finetune run" in err and "--resume auto" in err and "--overwrite" in err
    assert snapshot(out) == before  # nothing written, nothing pruned, metrics.jsonl whole
    # --resume auto continues it (nothing left to do); --overwrite replaces the earlier outputs only
    assert finetune(base, train, out, "--resume", "auto") == 0
    (out / "notes.txt").write_text("kept\n")
    assert finetune(base, train, out, "--seed", "1", "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "kept\n"
    assert weights(out / "final").keys() == {k for k in weights(out / "final")}
    assert snapshot(out)["final/model.safetensors"] != before["final/model.safetensors"]  # the new run's
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [2]  # one run's records, not two
    capsys.readouterr()
    assert finetune(base, train, out, "--resume", "auto", "--overwrite") == 2
    assert "give one of them" in one_line(capsys)


def test_finetune_from_a_run_into_that_run_is_refused(base, tmp_path, capsys):
    train = table(tmp_path / "train.tsv")
    run = tmp_path / "run"
    assert finetune(base, train, run) == 0
    before = snapshot(run)
    capsys.readouterr()
    assert finetune(run / "final", train, run) == 2
    assert "holds an earlier finetune run" in one_line(capsys)
    assert finetune(run / "final", train, run, "--overwrite") == 2
    err = one_line(capsys)
    assert f"this run reads {(run / 'final').resolve()}" in err and "write to another --out" in err
    assert snapshot(run) == before
    # the same for pretraining from a run into it
    assert cli(["pretrain", "--init-from", run / "final", "--out", run, "--data", tmp_path, "--overwrite"]) == 2
    capsys.readouterr()
    assert snapshot(run) == before


def test_resume_without_a_checkpoint_does_not_replace_a_finished_run(base, tmp_path, capsys):
    train = table(tmp_path / "train.tsv")
    out = tmp_path / "run"
    assert finetune(base, train, out, "--keep-last", "0") == 0  # no resume checkpoint: final/ only
    before = snapshot(out)
    capsys.readouterr()
    assert finetune(base, train, out, "--keep-last", "0", "--resume", "auto") == 2
    err = one_line(capsys)
    assert "--resume found no checkpoint to continue" in err and "final/" in err and "--overwrite instead" in err
    assert snapshot(out) == before
    # a run killed before its first checkpoint (no final/, no best/) simply starts again
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / ".berts-run.json").write_text('{"kind": "finetune", "created": "2026-01-01T00:00:00+00:00"}\n')
    (fresh / "metrics.jsonl").write_text("")
    assert finetune(base, train, fresh, "--resume", "auto") == 0
    assert "no checkpoint in" in capsys.readouterr().err


def test_out_naming_a_file(base, tmp_path, capsys):
    train = table(tmp_path / "train.tsv")
    path = tmp_path / "afile"
    path.write_text("x\n")
    assert finetune(base, train, path) == 2
    assert one_line(capsys) == f"berts: error: {path}: exists and is not a directory"
    assert path.read_text() == "x\n"


# ----------------------------------------------------------------------------- signals


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli(pretrain_args(shards, out, *RUN)) == 0
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_writes_a_checkpoint_and_resume_is_bit_identical(shards, reference, tmp_path, sig, status):  # noqa: F811
    out = tmp_path / "run"
    proc = spawn(SLOW_STEPS, *pretrain_args(shards, out, *RUN))
    try:
        wait_for(lambda: checkpoint.find_latest(out) is not None and '"step": 12' in
                 (out / "metrics.jsonl").read_text(), proc, what="step 12, after the first checkpoint")
        proc.send_signal(sig)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, output
    assert not (out / "final").exists(), "the run ended before the signal"
    latest = checkpoint.find_latest(out)
    step = checkpoint.read_state(latest)["step"]
    assert 12 <= step < 24 and latest.name == f"step-{step}"  # the step reached, not the last periodic one
    name = signal.Signals(sig).name
    assert f"berts: interrupted by {name}: checkpoint at step {step} in {latest}: continue with --resume auto" in output
    stop = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    assert stop["kind"] == "stop" and stop["signal"] == name and stop["step"] == step
    assert cli(pretrain_args(shards, out, *RUN) + ["--resume", "auto"]) == 0
    a, b = weights(reference / "final"), weights(out / "final")
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resumed from step {step}: weights differ in {different[:3]}"


# ----------------------------------------------------------------------------- tracebacks and garbage
@pytest.mark.parametrize("item", ["optim.lr=nan", "optim.lr=inf", "optim.weight_decay=-inf", "optim.betas=[0.9, nan]",
                                  "model.hidden_dropout_prob=nan"])
def test_nan_and_inf_are_one_line(tmp_path, capsys, item):
    assert cli(["pretrain", "--data", tmp_path, "--out", tmp_path / "o", "--set", item]) == 2
    key = item.split("=")[0]
    assert f"--set {item}: {key} must be a finite number" in one_line(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, line, what", [
    ("optim:\n  lr: 1e-3\ntrain:\n  max_steps: 3\noptim:\n  eps: 1e-8\n", 5, "duplicate section optim (first at line 1)"),
    ("optim:\n  lr: 1e-3\n  lr: 2e-3\n", 3, "duplicate key optim.lr (first at line 2)"),
    ("optim:\n  lr: .nan\n", 2, "optim.lr must be a finite number"),
])
def test_yaml_duplicates_and_nan_name_file_and_line(tmp_path, capsys, text, line, what):
    config = tmp_path / "c.yaml"
    config.write_text(text)
    assert cli(["pretrain", "--config", config, "--data", tmp_path]) == 2
    assert f"{config}:{line}: {what}" in one_line(capsys)


def test_weights_that_do_not_fit_are_an_error_unless_asked(base, tmp_path, capsys):
    import shutil

    train = table(tmp_path / "train.tsv")
    empty = tmp_path / "empty-config"
    shutil.copytree(base, empty)
    (empty / "config.json").write_text("{}")  # a random BERT-base would be trained on silently
    assert finetune(empty, train, tmp_path / "a") == 2
    err = one_line(capsys)
    assert f"{empty}: " in err and "weights do not fit the model its config.json describes" in err
    assert "bert.embeddings.word_embeddings.weight" in err and "--ignore-mismatched-sizes" in err
    assert not (tmp_path / "a" / "final").exists()

    # a classifier of 3 labels fine-tuned on 2: its head does not fit
    three = tmp_path / "three"
    assert finetune(base, table(tmp_path / "t3.tsv", 33, labels=("a", "b", "c")), three) == 0
    capsys.readouterr()
    assert finetune(three / "final", train, tmp_path / "b") == 2
    err = one_line(capsys)
    assert "2 weights do not fit" in err and "classifier.weight" in err and "(3, 32)" in err and "(2, 32)" in err
    assert finetune(three / "final", train, tmp_path / "b", "--ignore-mismatched-sizes") == 0
    assert "new: classifier" in capsys.readouterr().err  # a warning lists what was re-initialised
    # a new head where the directory has none is normal: listed, not an error
    assert finetune(base, train, tmp_path / "c") == 0
    assert "new: classifier" in capsys.readouterr().err


def test_one_label_tables_are_refused(base, tmp_path, capsys):
    one = table(tmp_path / "one.tsv", labels=("pos",))
    two = table(tmp_path / "two.tsv")
    assert finetune(base, one, tmp_path / "a") == 2
    assert f"{one}: every training example has the label 'pos'" in one_line(capsys)
    assert finetune(base, two, tmp_path / "b", "--dev", one) == 2
    assert f"{one}: every evaluation example has the label 'pos'" in one_line(capsys)


def test_a_missing_model_directory_is_named(tmp_path, capsys):
    train = table(tmp_path / "train.tsv")
    assert finetune(tmp_path / "nonexistent", train, tmp_path / "o") == 2
    assert one_line(capsys) == f"berts: error: {tmp_path / 'nonexistent'}: no such model directory"
    assert finetune(train, train, tmp_path / "o") == 2
    assert "not a model directory" in one_line(capsys)
    assert not (tmp_path / "o").exists()


SLOW_RANK = """
import os, sys, time
from pathlib import Path
from berts.train.trainer import Trainer
Path(sys.argv[1], "rank%s.pid" % os.environ["RANK"]).write_text(str(os.getpid()))
step = Trainer._train_step
def slow(self, batches):
    step(self, batches)
    time.sleep(0.05)
Trainer._train_step = slow
from berts.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.ddp
def test_under_ddp_every_rank_agrees_on_the_signal_and_rank_0_writes(shards, tmp_path):  # noqa: F811
    """SIGTERM to rank 1 alone: rank 0 stops at the same step (the flag is all-reduced), the
    checkpoint holds both ranks' random states, and both exit 143 without waiting on each other."""
    import os
    import subprocess

    from train_utils import PYTHON, ROOT, env

    script = tmp_path / "slow_rank.py"
    script.write_text(SLOW_RANK)
    out = tmp_path / "two"
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(tmp_path),
           *map(str, pretrain_args(shards, out, *RUN))]
    proc = subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: (tmp_path / "rank1.pid").exists() and checkpoint.find_latest(out) is not None and
                 '"step": 12' in (out / "metrics.jsonl").read_text(), proc, timeout=120, what="step 12")
        os.kill(int((tmp_path / "rank1.pid").read_text()), signal.SIGTERM)
        output = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    import re

    # the first rank to leave exits 143; torchrun then sends the other SIGTERM (already done by then)
    assert proc.returncode != 0 and re.search(r"exitcode\s*:\s*143", output), output[-3000:]
    latest = checkpoint.find_latest(out)
    state = checkpoint.read_state(latest)
    assert 12 <= state["step"] < 24 and latest.name == f"step-{state['step']}", output[-3000:]
    assert state["world_size"] == 2 and len(state["rng"]) == 2
    assert f"berts: interrupted by SIGTERM: checkpoint at step {state['step']}" in output
    assert not (out / "final").exists()
