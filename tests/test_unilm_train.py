"""UniLM pretraining: the mode per batch (UniLM's mix, seeded like the masks), the clm / seq2seq
targets of the collator, and `berts pretrain --objective unilm|clm|seq2seq` end to end (the loss
falls; the saved model is a BertForUnifiedLM with its mode in config.json)."""
import json

import numpy as np
import pytest
import torch

import berts
from berts.model.attention import MODES, UNILM_MIX
from berts.data.collate import PretrainingCollator
from berts.data.dataset import PretrainingDataset
from berts.data.masking import draw_mode
from berts.model.heads import BertForUnifiedLM
from berts.objectives.lm import next_token_targets
from train_utils import cli, make_shards, pretrain_args, write_corpus


def test_unilm_mode_mix_is_seeded_and_has_unilm_proportions():
    draws = [draw_mode("unilm", 0, e, s) for e in range(3) for s in range(2000)]
    share = np.bincount(draws, minlength=4) / len(draws)
    np.testing.assert_allclose(share, UNILM_MIX, atol=0.02)
    assert draws == [draw_mode("unilm", 0, e, s) for e in range(3) for s in range(2000)]  # a pure function
    assert [draw_mode("unilm", 1, 0, s) for s in range(50)] != draws[:50]  # the seed matters
    assert draw_mode("clm", 0, 5, 7) == MODES.index("left-to-right")
    assert draw_mode("seq2seq", 0, 5, 7) == MODES.index("seq2seq")


def test_collator_next_token_targets_match_the_objective_rule():
    col = PretrainingCollator(vocab_size=50, pad_id=0, mask_id=4, special_ids=[0, 1, 2, 3, 4],
                              pad_to_multiple_of=8, lm_objective="seq2seq")
    examples = [dict(input_ids=np.array([2, 10, 11, 3, 12, 13, 3]), b_start=4),
                dict(input_ids=np.array([2, 20, 3, 21, 3]), b_start=3)]
    b = col(examples)
    assert int(b["lm_mode"]) == MODES.index("seq2seq") and "mlm_labels" not in b
    assert "next_sentence_label" not in b
    pos, nxt = next_token_targets(b["input_ids"], b["attention_mask"], b["token_type_ids"], target_only=True)
    assert torch.equal(b["lm_positions"], pos) and torch.equal(b["lm_labels"], nxt)
    assert b["lm_labels"].tolist() == [12, 13, 3, 21, 3]  # B's tokens and its closing [SEP]
    col.lm_objective = "clm"
    b = col(examples)
    assert b["lm_labels"].tolist() == [10, 11, 3, 12, 13, 3, 20, 3, 21, 3]  # every real token but the first


@pytest.fixture(scope="module")
def lm_shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("unilm-data")
    return make_shards(root, write_corpus(root / "corpus.txt", docs=30), objective="nsp")


def test_dataset_mode_is_a_function_of_seed_epoch_step(lm_shards):
    ds = PretrainingDataset(lm_shards, seed=3, lm_objective="unilm")
    idx = np.arange(8)
    modes = [int(ds[(0, s, idx)]["lm_mode"]) for s in range(12)]
    assert modes == [draw_mode("unilm", 3, 0, s) for s in range(12)]
    assert len(set(modes)) > 1
    # a rank's part of the batch (DDP) gets the same mode and the same masks as the whole
    whole, part = ds[(0, 5, idx)], ds[(0, 5, idx[1::2])]
    assert int(whole["lm_mode"]) == int(part["lm_mode"])


@pytest.mark.parametrize("objective", ["unilm", "clm", "seq2seq"])
def test_pretrain_each_lm_objective_end_to_end(objective, lm_shards, tmp_path):
    out = tmp_path / objective
    assert cli(pretrain_args(lm_shards, out, "train.max_steps=40", "optim.lr=3e-3") + ["--objective", objective]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    part = "mlm" if objective == "unilm" else "lm"
    losses = [r[part] for r in rows if r["kind"] == "train" and part in r]
    assert len(losses) >= 3 and losses[-1] < losses[0] - 0.3, losses
    model = berts.load(out / "final")
    assert type(model) is BertForUnifiedLM
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["lm_mode"] == ("seq2seq" if objective == "seq2seq" else "left-to-right")
    assert cfg["lm_readout"] == ("mask" if objective == "unilm" else "next")


def test_unilm_resume_is_bit_identical(lm_shards, tmp_path, capsys):
    """Modes, masks and dropout all come back: a run resumed from its step-8 checkpoint ends
    with the weights of the run that went straight through."""
    import shutil

    from train_utils import weights

    run = ["train.max_steps=16", "train.save_every=8", "train.keep_last=2", "train.grad_accum=2"]
    straight = tmp_path / "straight"
    assert cli(pretrain_args(lm_shards, straight, *run) + ["--objective", "unilm"]) == 0
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "final")
    shutil.rmtree(resumed / "checkpoints" / "step-16")
    for extra in resumed.glob("best"):
        shutil.rmtree(extra)
    capsys.readouterr()
    assert cli(pretrain_args(lm_shards, resumed, *run) + ["--objective", "unilm", "--resume", "auto"]) == 0
    printed = capsys.readouterr()
    assert "at step 8" in printed.out + printed.err  # it did resume, not start again
    a, b = weights(straight / "final"), weights(resumed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.ddp
def test_unilm_two_processes_match_one(lm_shards, tmp_path):
    """The mode of a global micro-batch is drawn from (seed, epoch, step), which every rank shares:
    2 DDP processes equal 1 process with the same global micro-batch (4: 1 process x 4, or 2
    processes x 2), dropout off, within 1e-5; the run drew more than one mode."""
    import subprocess

    from train_utils import PYTHON, ROOT, env, weights

    same = ["train.max_steps=4", "train.batch_size=8", "model.hidden_dropout_prob=0",
            "model.attention_probs_dropout_prob=0", "log.every=1", "train.save_every=4"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert cli(pretrain_args(lm_shards, one, *same, "train.grad_accum=2") + ["--objective", "unilm"]) == 0
    cmd = [PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "berts",
           *map(str, pretrain_args(lm_shards, two, *same, "train.grad_accum=2") + ["--objective", "unilm"])]
    proc = subprocess.run(cmd, env=env(), cwd=str(ROOT), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    a, b = weights(one / "final"), weights(two / "final")
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert len({draw_mode("unilm", 0, 0, s) for s in range(8)}) > 1
