"""More than one machine, on localhost: two `torchrun --nnodes 2 --nproc-per-node 1` processes
meeting at one c10d rendezvous (what two machines run, docs/multinode.md) train as one process
does on the same global batch; a run checkpointed by 2 ranks resumes on 1 (another world size,
another grad_accum) at the same example and ends where the uninterrupted run ends; a position no
micro-batch of the new width starts at is refused with one line."""
import socket
import subprocess

import pytest
import torch
from train_utils import PYTHON, ROOT, cli, env, pretrain_args, shards, weights  # noqa: F401 (fixture)

from berts.data.sampler import ResumableBatchSampler

SAME_BATCHES = ["train.max_steps=4", "train.batch_size=8", "model.hidden_dropout_prob=0",
                "model.attention_probs_dropout_prob=0", "log.every=1", "train.save_every=2"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worst(a: dict, b: dict) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def two_nodes(shards, out, *extra):  # noqa: F811
    """Two "nodes" of one process each, one rendezvous: each torchrun is what one machine runs."""
    port = free_port()
    cmd = [PYTHON, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "berts-test",
           "-m", "berts", *map(str, pretrain_args(shards, out, *SAME_BATCHES, *extra))]
    procs = [subprocess.Popen(cmd, env=env(), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(2)]
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=240)[0])
        finally:
            if p.poll() is None:
                p.kill()
    for p, text in zip(procs, outs):
        assert p.returncode == 0, text[-4000:]
    return "".join(outs)


@pytest.mark.ddp
def test_two_nodes_match_one_process(shards, tmp_path):  # noqa: F811
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(pretrain_args(shards, one, *SAME_BATCHES)) == 0
    text = two_nodes(shards, two, "train.grad_accum=2")  # 2 nodes x 2 micro-batches of 2 = 8
    assert "2 processes (DDP)" in text and text.count("pretrain: finished") == 1  # global rank 0 speaks
    a, b = weights(one / "final"), weights(two / "final")
    assert worst(a, b) < 1e-5, worst(a, b)
    assert worst(a, weights(one / "checkpoints" / "step-2")) > 20 * 1e-5  # it moved far more than that

    # preempted after step 2, resumed on one machine with one process: 4 micro-batches of 2 keep
    # the global batch of 8; the position (16 examples into the epoch) is 8 micro-batches now
    resumed = tmp_path / "resumed"
    import shutil

    shutil.copytree(two / "checkpoints" / "step-2", resumed / "checkpoints" / "step-2")
    assert cli(pretrain_args(shards, resumed, *SAME_BATCHES, "train.grad_accum=4") + ["--resume", "auto"]) == 0
    c = weights(resumed / "final")
    assert worst(b, c) < 1e-5, worst(b, c)
    saved = torch.load(resumed / "checkpoints" / "step-4" / "trainer_state.pt", weights_only=True)
    assert saved["world_size"] == 1 and saved["sampler"]["width"] == 2 and saved["sampler"]["step"] == 16  # 32 examples in


def test_sampler_position_across_widths():
    """The position is kept in examples: 3 steps of 4 = 6 steps of 2 = 12 examples; the batches
    that follow are the same examples whatever the width and number of ranks."""
    def rest(world, per_rank, state, steps):
        ranks = [ResumableBatchSampler(40, per_rank, seed=3, rank=r, world_size=world) for r in range(world)]
        got = []
        for s in ranks:
            s.load_state_dict(state)
        its = [iter(s) for s in ranks]
        for _ in range(steps):
            got += [int(i) for it in its for i in next(it)[2]]
        return [sorted(got[i:i + 4]) for i in range(0, len(got), 4)]  # the same examples, 4 by 4

    two = ResumableBatchSampler(40, 2, seed=3, rank=0, world_size=2)  # width 4
    state = {"epoch": 0, "step": 3, "seed": 3, "width": two.width}
    assert rest(2, 2, state, 4) == rest(1, 2, state, 8) == rest(4, 1, state, 4)
    one = ResumableBatchSampler(40, 2, seed=3)
    one.load_state_dict(state)
    assert one.step == 6
    odd = ResumableBatchSampler(40, 5, seed=3)  # 12 examples are not whole micro-batches of 5
    with pytest.raises(ValueError, match="12 examples into its epoch"):
        odd.load_state_dict(state)
    bucketed = ResumableBatchSampler(40, 2, seed=3, lengths=list(range(40)), bucket_size=2)
    with pytest.raises(ValueError, match="length bucketing"):
        bucketed.load_state_dict(state)


def test_resume_refused_in_one_line(shards, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "run"
    assert cli(pretrain_args(shards, out, "train.max_steps=2", "train.batch_size=8", "train.grad_accum=2",
                             "train.save_every=1")) == 0  # width 4: step 1 is 4 examples in
    capsys.readouterr()
    shutil_dir = out / "checkpoints"
    step1 = sorted(shutil_dir.iterdir())[0]
    assert cli(pretrain_args(shards, tmp_path / "again", "train.max_steps=2", "train.batch_size=6",
                             "train.grad_accum=2") + ["--resume", str(step1)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a whole number of micro-batches of 3" in err[0], err


def torchrun(shards, out, *extra, resume=None):  # noqa: F811
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "berts",
           *map(str, pretrain_args(shards, out, *SAME_BATCHES, "train.grad_accum=2", *extra))]
    if resume:
        cmd += ["--resume", str(resume)]
    proc = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stderr


@pytest.mark.ddp
def test_fsdp_equals_ddp(shards, tmp_path):  # noqa: F811
    """train.strategy fsdp (FSDP2 fully_shard, gloo on CPU) against ddp, 2 ranks each: the same
    weights at the end, in the checkpoints, and after resuming the fsdp run from its step 2."""
    ddp, fsdp = tmp_path / "ddp", tmp_path / "fsdp"
    torchrun(shards, ddp)
    assert "2 processes (FSDP2)" in torchrun(shards, fsdp, "train.strategy=fsdp")
    a, b = weights(ddp / "final"), weights(fsdp / "final")
    assert worst(a, b) < 1e-5, worst(a, b)
    assert worst(a, weights(ddp / "checkpoints" / "step-2")) > 20 * 1e-5
    step2 = weights(fsdp / "checkpoints" / "step-2")
    assert worst(weights(ddp / "checkpoints" / "step-2"), step2) < 1e-5
    again = tmp_path / "again"
    torchrun(shards, again, "train.strategy=fsdp", resume=fsdp / "checkpoints" / "step-2")
    c = weights(again / "final")
    assert worst(b, c) < 1e-5, worst(b, c)
