"""A task with two trainable modules (a tiny BERT encoder and a projection) and a frozen one (a
tiny teacher encoder), with a count-weighted two-part loss (tests/multimodule_task.py): the frozen
module gets no gradient, no optimizer state and stays as it was, in eval mode; what is saved
where; exact resume after SIGKILL; 2-process DDP equals one process; a version-1 checkpoint."""
import json
import subprocess
from pathlib import Path

import pytest
import torch
from train_utils import PYTHON, ROOT, TINY, cli, env, kill_after_first_checkpoint, pretrain_args, shards, weights  # noqa: F401

from berts.train import checkpoint

SCRIPT = str(Path(__file__).with_name("multimodule_task.py"))
# dropout on (RNG states restored), accumulation; checkpoints on log steps (the window is not saved)
RUN = ["train.max_steps=16", "train.save_every=4", "train.keep_last=2", "train.grad_accum=2", "log.every=4"]


def build(shards, out, *extra):  # noqa: F811
    from multimodule_task import build as build_task

    from berts.config.schema import PretrainConfig, load_config
    from berts.train.distributed import Dist

    cfg = load_config(PretrainConfig, None, TINY + [f"log.out={out}", *extra])
    return build_task(cfg, shards, Dist())


def run_script(shards, out, *args, timeout=240):  # noqa: F811
    proc = subprocess.run([PYTHON, SCRIPT, str(shards), str(out), *map(str, args)], env=env(), cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def records(out, kind="train"):
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


def extra_modules(directory):
    from safetensors.torch import load_file

    return load_file(str(Path(directory) / checkpoint.MODULES_NAME))


def test_frozen_module_is_not_trained_and_what_is_saved_where(shards, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    trainer = build(shards, out, "train.max_steps=6", "train.save_every=3", "log.every=3")
    task = trainer.task
    teacher_before = {k: v.clone() for k, v in task.teacher.state_dict().items()}
    proj_before = {k: v.clone() for k, v in task.proj.state_dict().items()}
    trainer.fit()

    # frozen: no gradients, no optimizer state, unchanged, eval mode (also after engine.train())
    teacher_params = list(task.teacher.parameters())
    assert all(not p.requires_grad and p.grad is None for p in teacher_params)
    in_optimizer = {id(p) for g in trainer.engine.optimizer.param_groups for p in g["params"]}
    assert not in_optimizer & {id(p) for p in teacher_params}
    assert not set(trainer.engine.optimizer.state) & set(teacher_params)
    assert all(torch.equal(v, task.teacher.state_dict()[k]) for k, v in teacher_before.items())
    assert not any(m is task.teacher for m in trainer.engine.modules.modules())  # outside what DDP wraps
    trainer.engine.train()
    assert not task.teacher.training and not any(m.training for m in task.teacher.modules())
    assert task.student.training and task.proj.training
    # trainable: both moved, both in the optimizer (the student's and the projection's parameters)
    assert {id(p) for p in [*task.student.parameters(), *task.proj.parameters()]} == in_optimizer
    assert not torch.equal(proj_before["weight"], task.proj.weight)

    # saved: the student is the HF directory (top level); the projection only in checkpoints; no teacher
    final = weights(out / "final")
    assert set(final) == set(weights(checkpoint.find_latest(out)))
    assert all(torch.equal(final[k], v) for k, v in _hf(task.student).items())
    assert not (out / "final" / checkpoint.MODULES_NAME).exists()
    assert not any("teacher" in p.name or "proj" in p.name for p in (out / "final").rglob("*"))
    saved = extra_modules(out / "checkpoints" / "step-6")
    assert set(saved) == {"proj.weight", "proj.bias"} and torch.equal(saved["proj.weight"], task.proj.weight)
    state = checkpoint.read_state(out / "checkpoints" / "step-6")
    assert state["version"] == checkpoint.STATE_VERSION and state["modules"] == {"model": "", "proj": None}
    import berts

    assert type(berts.load(out / "final")).__name__ == "BertModel"  # the directory loads as the student

    # the log: both parts, each the mean over its own items, and their sum is the loss
    last = records(out)[-1]
    assert {"hidden", "pooled", "hidden_cos"} <= set(last)
    assert last["loss"] == pytest.approx(last["hidden"] + last["pooled"], rel=1e-5)


def extra_modules_of(proj):
    return {f"proj.{k}": v for k, v in proj.state_dict().items()}


def _hf(model):
    from berts.hf import hf_state_dict

    return hf_state_dict(model)


def test_loss_parts_are_weighted_by_counts(shards, tmp_path):  # noqa: F811
    """2 micro-batches of 4 = one batch of 8, though the micro-batches hold different numbers of
    real tokens (the hidden part's items): the same weights, within float error."""
    common = ["train.max_steps=3", "model.hidden_dropout_prob=0", "data.pad_to_multiple_of=32"]
    a, b = build(shards, tmp_path / "a", *common), build(shards, tmp_path / "b", *common, "train.grad_accum=2")
    a.fit()
    b.fit()
    wa, wb = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    assert max((wa[k] - wb[k]).abs().max().item() for k in wa) < 1e-6
    assert torch.allclose(a.task.proj.weight, b.task.proj.weight, atol=1e-6)


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(shards, tmp_path):  # noqa: F811
    ref, out = tmp_path / "ref", tmp_path / "run"
    run_script(shards, ref, *RUN)
    proc = subprocess.Popen([PYTHON, SCRIPT, str(shards), str(out), "--sleep", "0.05", *RUN], env=env(),
                            cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kill_after_first_checkpoint(proc, out, 0.15)
    killed_at = checkpoint.find_latest(out)
    printed = run_script(shards, out, "--resume", "auto", *RUN)
    assert f"resumed from {killed_at}" in printed.stderr
    a, b = weights(ref / "final"), weights(out / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), f"resumed from {killed_at.name}"
    pa, pb = extra_modules(checkpoint.find_latest(ref)), extra_modules(checkpoint.find_latest(out))
    assert all(torch.equal(pa[k], pb[k]) for k in pa)  # the projection too, restored exactly
    assert [(r["step"], r["loss"], r["hidden"]) for r in records(out)] == \
           [(r["step"], r["loss"], r["hidden"]) for r in records(ref)]


@pytest.mark.ddp
def test_two_processes_match_one(shards, tmp_path):  # noqa: F811
    same = ["train.max_steps=4", "model.hidden_dropout_prob=0", "log.every=1", "train.save_every=4"]
    one, two = tmp_path / "one", tmp_path / "two"
    run_script(shards, one, *same)
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", SCRIPT, str(shards),
           str(two), *same, "train.grad_accum=2"]
    proc = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 processes (DDP)" in proc.stderr
    a, b = weights(one / "final"), weights(two / "final")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    pa, pb = extra_modules(one / "checkpoints" / "step-4"), extra_modules(two / "checkpoints" / "step-4")
    assert max((pa[k] - pb[k]).abs().max().item() for k in pa) < 1e-5
    initial = build(shards, tmp_path / "unused", *same).task
    moved = max((pa[k] - v).abs().max().item() for k, v in extra_modules_of(initial.proj).items())
    assert moved > 20 * 1e-5  # the projection moved far more than the tolerance
    for x, y in zip(records(one), records(two)):  # the logged parts are global-batch means in both
        # fp32 sums in another order (one process vs an all-reduce of two): a few ulps of the value,
        # so relative (the hidden MSE is about 60: 1e-5 absolute was 3 ulps, and failed once at 1.1e-5)
        for k in ("hidden", "pooled", "hidden_cos"):
            assert x[k] == pytest.approx(y[k], rel=1e-6, abs=1e-5), k


def test_a_version_1_checkpoint_fails_resume_but_its_weights_load(shards, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    assert cli(pretrain_args(shards, out, "train.max_steps=2", "train.save_every=2")) == 0
    old = checkpoint.find_latest(out)
    state = checkpoint.read_state(old)
    state["version"] = 1  # what the one-model trainer wrote: no modules, one model's optimizer state
    del state["modules"]
    torch.save(state, old / checkpoint.STATE_NAME)
    capsys.readouterr()
    assert cli(pretrain_args(shards, out, "train.max_steps=4") + ["--resume", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trainer state version 1" in err and f"--init-from {old}" in err
    assert cli(pretrain_args(shards, tmp_path / "new", "train.max_steps=2") + ["--init-from", str(old)]) == 0
    assert "initialised from" in capsys.readouterr().err


def test_evaluate_receives_the_engine_not_the_trainer(shards, tmp_path):  # noqa: F811
    """A task's evaluate(engine): the engine (device, autocast, to_device, is_main); the Trainer keeps
    no pass-throughs for tasks."""
    from berts.train.engine import Engine
    from berts.train.trainer import Trainer

    out = tmp_path / "run"
    trainer = build(shards, out, "train.max_steps=2", "log.every=1", "train.keep_last=0")
    seen = []
    trainer.task.evaluate = lambda engine: seen.append(engine) or {"probe": 0.5}
    trainer.fit()
    assert len(seen) == 1 and seen[0] is trainer.engine and isinstance(seen[0], Engine)
    assert seen[0].is_main and seen[0].device == torch.device("cpu") and callable(seen[0].autocast)
    assert [r["probe"] for r in records(out, "eval")] == [0.5]
    assert not any(hasattr(Trainer, name) for name in ("autocast", "to_device", "precision", "scaler", "optimizer"))
