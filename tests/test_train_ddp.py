"""torchrun with 2 CPU processes (gloo) against one process on the same global batch."""
import json
import subprocess

import pytest
from train_utils import PYTHON, ROOT, cli, env, pretrain_args, shards, weights  # noqa: F401 (fixture)

pytestmark = pytest.mark.ddp  # torchrun, two processes: `make test-fast` leaves them out

# Every example's mask is its own (seeded by seed, epoch and its index, not by its batch, width or
# rank), so a rank's micro-batches hold exactly the examples and masks they hold in the
# single-process batch, with the default dynamic masking and padding to a multiple of 8; no dropout.
SAME_BATCHES = ["train.max_steps=4", "train.batch_size=8", "model.hidden_dropout_prob=0",
                "model.attention_probs_dropout_prob=0", "log.every=1", "train.save_every=2"]


def records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("masking", [[], ["data.static_masking=true", "data.masking=wwm"]], ids=["dynamic", "static"])
def test_two_processes_match_one(shards, tmp_path, masking):  # noqa: F811
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(pretrain_args(shards, one, *SAME_BATCHES, *masking)) == 0
    # 2 processes x 2 micro-batches of 2 = the global batch of 8
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "berts",
           *map(str, pretrain_args(shards, two, *SAME_BATCHES, *masking, "train.grad_accum=2"))]
    proc = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "2 processes (DDP)" in proc.stderr and proc.stdout.count("pretrain: finished") == 1  # rank 0 speaks

    a, b = weights(one / "final"), weights(two / "final")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-5, worst
    moved = max((a[k] - weights(one / "checkpoints" / "step-2")[k]).abs().max().item() for k in a)
    assert moved > 20 * 1e-5  # the weights moved far more than the tolerance

    ra, rb = records(one), records(two)
    assert [r["step"] for r in rb] == [1, 2, 3, 4]  # one writer
    for x, y in zip(ra, rb):  # the logged loss is the global-batch mean in both
        assert abs(x["loss"] - y["loss"]) < 1e-5 and abs(x["mlm"] - y["mlm"]) < 1e-5
        assert x["tokens"] == y["tokens"]
    state = json.loads((two / "final" / "train_result.json").read_text())
    assert state["step"] == 4
    import torch

    saved = torch.load(two / "checkpoints" / "step-4" / "trainer_state.pt", weights_only=True)
    assert saved["world_size"] == 2 and len(saved["rng"]) == 2  # every rank's random state
