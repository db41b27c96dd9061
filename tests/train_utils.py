"""Helpers for the training tests (tests/test_train_*.py): tiny corpora, shards, runs."""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
WORDS = ("the cat dog bird sat ran flew over under near a big small red blue green house tree river hill "
         "quickly slowly").split()

# A tiny model and run: every training test starts from these and overrides a few values.
TINY = [
    "model.preset=tiny", "model.hidden_size=32", "model.num_hidden_layers=2", "model.num_attention_heads=2",
    "model.intermediate_size=64", "model.max_position_embeddings=64",
    "train.batch_size=8", "train.save_every=1000", "train.seed=0",
    "optim.lr=1e-3", "schedule.warmup=0.1",
    "data.num_workers=0", "impl.threads=1", "impl.device=cpu",
    "log.every=5", "log.progress=none", "log.tensorboard=false", "log.plots=false",
]


def write_corpus(path: Path, docs: int = 40, seed: int = 0, words=WORDS) -> Path:
    rng = random.Random(seed)
    out = []
    for _ in range(docs):
        sents = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))).capitalize() + "."
                 for _ in range(rng.randint(4, 8))]
        out.append("\n".join(sents))
    path.write_text("\n\n".join(out) + "\n", encoding="utf-8")
    return path


def make_shards(root: Path, corpus: Path, *, objective: str = "nsp", max_seq_length: int = 32,
                vocab_size: int = 60) -> Path:
    from berts.data import prepare
    from berts.tokenizer.wordpiece import Tokenizer

    tok_dir = root / "tok"
    if not tok_dir.exists():
        Tokenizer.train([corpus], vocab_size, show_progress=False).save_pretrained(tok_dir)
    out = root / f"shards-{objective}-{max_seq_length}"
    prepare([corpus], tok_dir, out, objective=objective, max_seq_length=max_seq_length, workers=1,
            short_seq_prob=0.0, seed=1)
    return out


@pytest.fixture(scope="session")
def shards(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain-data")
    return make_shards(root, write_corpus(root / "corpus.txt"))


def sets(*extra: str) -> list[str]:
    """--set arguments: TINY, then ``extra``."""
    out = []
    for item in TINY + list(extra):
        out += ["--set", item]
    return out


def pretrain_args(shards: Path, out: Path, *extra: str) -> list[str]:
    return ["pretrain", "--data", str(shards), "--out", str(out)] + sets(*extra)


def cli(argv: list[str]) -> int:
    from berts.cli import main

    return main([str(a) for a in argv])


def weights(directory: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(directory) / "model.safetensors"))


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + e.get("PYTHONPATH", "")
    e.setdefault("OMP_NUM_THREADS", "1")
    return e


def spawn(script: str, *args: str) -> subprocess.Popen:
    """A python process running ``script`` (source text) with argv ``args``."""
    return subprocess.Popen([PYTHON, "-c", script, *map(str, args)], env=env(), cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended (rc {proc.returncode}) before {what}:\n{proc.stdout.read()}")
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def kill_after_first_checkpoint(proc: subprocess.Popen, out: Path, jitter: float = 0.1) -> None:
    """SIGKILL ``proc`` at a random moment after its first checkpoint under ``out`` appeared, and
    check that it died of it before finishing (no ``final/``)."""
    import signal

    from berts.train import checkpoint

    try:
        wait_for(lambda: checkpoint.find_latest(out) is not None, proc, what="the first checkpoint")
        time.sleep(random.uniform(0.0, jitter))  # somewhere after it
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (Path(out) / "final").exists(), "the run ended before it was killed"


# A resumable run with dropout on (the RNG states must be restored) and accumulation (the data
# position is mid-step), and a runner that slows its steps so that a test can kill or signal it
# between checkpoints.
RUN = ["train.max_steps=24", "train.save_every=8", "train.keep_last=2", "train.grad_accum=2", "log.every=4"]

SLOW_STEPS = """
import sys, time
from berts.train.trainer import Trainer
step = Trainer._train_step
def slow(self, batches):
    step(self, batches)
    time.sleep(0.04)
Trainer._train_step = slow
from berts.cli import main
sys.exit(main(sys.argv[1:]))
"""
