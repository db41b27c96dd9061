"""ModernBERT's training recipe, switch by switch: the batch-size warm-up (plan and loop), the 30%
masking rate end to end, the modern presets at every size, the recipe config group, and the
context-extension phase (a checkpoint continued at a longer length with a larger RoPE base).
The schedules and StableAdamW are tested by hand in test_train_optim.py."""
import json
import math

import numpy as np
import pytest
import torch
from train_utils import TINY, cli, make_shards, shards, write_corpus  # noqa: F401 (fixture)

from berts.config.schema import ScheduleSection, TrainSection
from berts.errors import UserError
from berts.train.plan import RunPlan

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
QUIET = ["train.save_every=1000", "train.seed=0", "data.num_workers=0", "impl.threads=1", "impl.device=cpu",
         "log.every=1", "log.progress=none", "log.tensorboard=false", "log.plots=false"]


def sets(items):
    return [a for s in items for a in ("--set", s)]


def records(out, kind="train"):
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r.get("kind", "train") == kind]


# ----------------------------------------------------------------------------- batch warm-up
def test_batch_warmup_micro_batches_by_hand():
    # 4 micro-batches at full size, the warm-up over the first 4 of 8 steps (0.5 of the run):
    # k = min(4, max(1, ceil(4 p / 0.5))) at p = step / 8
    plan = RunPlan.from_config(TrainSection(max_steps=8, grad_accum=4, batch_warmup=4), ScheduleSection(),
                               steps_per_epoch=10)
    assert plan.batch_warmup == 0.5
    assert [plan.micro_batches(s / 8) for s in range(8)] == [1, 1, 2, 3, 4, 4, 4, 4]
    # as a fraction, and off
    plan = RunPlan.from_config(TrainSection(max_steps=100, grad_accum=8, batch_warmup=0.2), ScheduleSection(),
                               steps_per_epoch=10)
    assert [plan.micro_batches(p) for p in (0.0, 0.01, 0.05, 0.1, 0.125, 0.19, 0.2, 0.9)] == [1, 1, 2, 4, 5, 8, 8, 8]
    off = RunPlan.from_config(TrainSection(max_steps=8, grad_accum=4), ScheduleSection(), steps_per_epoch=10)
    assert [off.micro_batches(s / 8) for s in range(8)] == [4] * 8
    with pytest.raises(UserError, match="batch_warmup 9 steps"):
        RunPlan.from_config(TrainSection(max_steps=8, grad_accum=4, batch_warmup=9), ScheduleSection(), steps_per_epoch=1)


def test_batch_warmup_in_the_loop(shards, tmp_path):  # noqa: F811
    """6 steps, batch 16 = 4 micro-batches of 4, warm-up over 4 steps: 1, 1, 2, 3, 4, 4 micro-batches,
    so 4 x 15 = 60 examples (not 96); the log's tokens are those trained on."""
    from berts.config.schema import PretrainConfig, load_config
    from berts.runs.pretrain import pretraining_run
    from berts.train.distributed import Dist

    out = tmp_path / "run"
    cfg = load_config(PretrainConfig, None, TINY + [f"data.shards={shards}", f"log.out={out}", "train.max_steps=6",
                                                   "train.batch_size=16", "train.grad_accum=4",
                                                   "train.batch_warmup=4", "log.every=1"])
    trainer = pretraining_run(cfg, None, Dist())
    trainer.fit()
    assert trainer.examples == 60
    rec = records(out)
    assert len(rec) == 6
    tokens = np.diff([0] + [r["tokens"] for r in rec])
    # every micro-batch of these shards holds 4 sequences of (nearly) the same length: tokens per
    # step grow with the micro-batches
    per_micro = tokens / np.array([1, 1, 2, 3, 4, 4])
    assert per_micro.max() / per_micro.min() < 1.6, per_micro
    assert cli(["pretrain", "--data", shards, "--out", tmp_path / "bad",
                *sets(TINY + ["train.max_steps=6", "train.batch_warmup=2"])]) == 2  # grad_accum 1: one line


# ----------------------------------------------------------------------------- 30% masking
def test_mask_rate_30_percent_scales_max_predictions(shards):  # noqa: F811
    from berts.data.dataset import PretrainingDataset

    ds = PretrainingDataset(shards, mask_prob=0.3, max_predictions_per_seq=None, seed=0)
    seq = 32  # the shards' max_seq_length
    assert ds.max_predictions_per_seq == math.ceil(0.3 * seq) == 10
    batch = ds[(0, 0, list(range(min(len(ds), 64))))]
    ids, pos, labels = batch["input_ids"], batch["mlm_positions"], batch["mlm_labels"]  # pos: flat in [B x S]
    real = batch["attention_mask"].sum(1) - 3  # maskable: not [CLS] and the two [SEP] (pair shards), not padding
    chosen = torch.bincount(pos // ids.shape[1], minlength=ids.shape[0])
    want = torch.clamp(torch.floor(real * 0.3 + 0.5), 1, 10)  # round(0.3 n), at most the scaled cap
    assert torch.equal(chosen, want.to(chosen.dtype)), (chosen, want)
    assert chosen.sum() / real.sum() == pytest.approx(0.3, abs=0.02)
    # the 80/10/10 split is kept: ~80% of the chosen tokens are [MASK], and each label is the original token
    at = ids.flatten()[pos]
    share = (at == ds.collator.mask_id).float().mean().item()
    assert 0.7 < share < 0.9, share
    kept = at == labels
    assert 0.03 < kept.float().mean().item() < 0.2


# ----------------------------------------------------------------------------- presets + recipe
@pytest.mark.parametrize("name,layers,hidden", [("tiny-modern", 3, 128), ("mini-modern", 4, 256),
                                                ("small-modern", 4, 512), ("base-modern", 22, 768)])
def test_modern_presets(name, layers, hidden):
    from berts.model.config import preset

    c = preset(name)
    assert (c.num_hidden_layers, c.hidden_size) == (layers, hidden)
    assert (c.position_embedding_type, c.ffn, c.norm_position, c.type_vocab_size, c.bias) == ("rope", "glu", "pre", 0, False)
    assert (c.rope_theta, c.local_rope_theta, c.global_attn_every_n_layers, c.max_position_embeddings) == \
        (160000.0, 10000.0, 3, 8192)
    assert c.sliding_window == (64 if name == "tiny-modern" else 128)


def test_pretrain_with_the_modern_recipe_and_mini_modern(shards, tmp_path, capsys):  # noqa: F811
    """`berts pretrain --preset mini-modern --config configs/recipe/modern.yaml` runs end to end:
    StableAdamW, wsd_sqrt, 30% masking, the batch warm-up (2 micro-batches of 4 at step 0)."""
    out = tmp_path / "run"
    small = ["model.num_hidden_layers=1", "model.hidden_size=64", "model.num_attention_heads=2",
             "model.intermediate_size=96", "model.sliding_window=8", "train.max_steps=4", "train.batch_size=8",
             "train.grad_accum=2", "train.batch_warmup=0.5", "optim.lr=1e-3"]
    assert cli(["pretrain", "--data", shards, "--out", out, "--preset", "mini-modern",
                "--config", ROOT / "configs/recipe/modern.yaml", *sets(QUIET + small)]) == 0
    err = capsys.readouterr().err
    assert "schedule wsd_sqrt: warm-up 0.24 steps (0.06 of the run), stable, then the last 0.2 of the run 1-sqrt " \
        "down to 0 x lr" in err
    assert "batch warm-up: 1 to 2 micro-batches of 4 over the first 0.5 of the run" in err
    cfg = (out / "config.yaml").read_text()
    for line in ("name: stable_adamw", "name: wsd_sqrt", "mask_prob: 0.3", "batch_warmup: 0.5"):
        assert line in cfg
    rec = records(out)
    assert len(rec) == 4 and all(math.isfinite(r["loss"]) for r in rec)
    # wsd_sqrt with warmup 0.06 and decay 0.2 of 4 steps: the lr logged after step s is set at p = (s-1)/4
    assert [r["lr"] for r in rec][1:3] == pytest.approx([1e-3, 1e-3])


# ----------------------------------------------------------------------------- context extension
def test_context_extension_continues_a_checkpoint_longer_with_a_larger_rope_base(shards, tmp_path):  # noqa: F811
    """Phase 1 at 32 tokens (rope_theta 10,000), phase 2 from its final/ at 128 tokens with
    rope_theta 160,000: the weights carry over, the config says the new base, the loss is finite."""
    short = shards  # the session's shards, 32 tokens; the same corpus and tokenizer at 128:
    long = make_shards(shards.parent, shards.parent / "corpus.txt", objective="none", max_seq_length=128)
    model = ["model.num_hidden_layers=2", "model.hidden_size=32", "model.num_attention_heads=2",
             "model.intermediate_size=48", "model.sliding_window=8", "train.batch_size=4", "optim.lr=1e-3",
             "data.objective=none"]
    one = tmp_path / "phase1"
    assert cli(["pretrain", "--data", short, "--out", one, "--preset", "tiny-modern",
                *sets(QUIET + model + ["train.max_steps=3", "model.rope_theta=10000"])]) == 0
    two = tmp_path / "phase2"
    assert cli(["pretrain", "--data", long, "--out", two, "--init-from", one / "final",
                *sets(QUIET + ["train.batch_size=4", "train.max_steps=2", "optim.lr=1e-3",
                               "model.rope_theta=160000", "schedule.name=wsd_sqrt", "schedule.warmup=0",
                               "schedule.decay=1"])]) == 0
    from berts.hf import load

    a, b = load(one / "final"), load(two / "final")
    assert (a.config.rope_theta, b.config.rope_theta) == (10000.0, 160000.0)
    assert b.config.sliding_window == 8 and b.config.num_hidden_layers == 2
    assert json.loads((long / "meta.json").read_text())["max_seq_length"] == 128
    rec = records(two)
    assert rec and all(math.isfinite(r["loss"]) for r in rec)
    # the continued model starts from phase 1's weights: one weight that phase 2 barely moved (lr 1e-3, 2 steps)
    wa = dict(a.named_parameters())["bert.embeddings.word_embeddings.weight"]
    wb = dict(b.named_parameters())["bert.embeddings.word_embeddings.weight"]
    assert (wa - wb).abs().max().item() < 0.01


# ----------------------------------------------------------------------------- long context
def test_long_context_prepare_collate_and_train_at_1024(tmp_path):
    """`berts prepare --max-seq-length 1024` fills instances to the length (long documents), the
    collator pads a batch to its longest instance only (rounded to 8), and a tiny modern model
    trains on it: a windowed, RoPE model at 1,024 tokens, unpadded fast path on."""
    import random

    from berts.data.dataset import PretrainingDataset

    rng = random.Random(0)
    words = "the cat dog bird sat ran flew over under near a big small red blue green house tree".split()
    docs = ["\n".join(" ".join(rng.choice(words) for _ in range(rng.randint(6, 12))).capitalize() + "."
                      for _ in range(rng.randint(150, 400))) for _ in range(6)]
    corpus = tmp_path / "long.txt"
    corpus.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    shards = make_shards(tmp_path, corpus, objective="none", max_seq_length=1024)
    ds = PretrainingDataset(shards, mask_prob=0.3, max_predictions_per_seq=None, seed=0)
    lengths = np.asarray(ds.lengths)
    assert lengths.max() <= 1024 and np.median(lengths) > 1000  # whole sentences up to 1,022 tokens + 2 specials
    batch = ds[(0, 0, list(range(4)))]
    width = batch["input_ids"].shape[1]
    assert width == min(1024, -(-int(lengths[:4].max()) // 8) * 8)  # the batch's longest, not a fixed 8,192
    assert batch["attention_mask"].float().mean().item() > 0.95  # little padding: instances end on a sentence
    assert len(batch["mlm_positions"]) == pytest.approx(0.3 * (batch["attention_mask"].sum().item() - 8), abs=8)
    out = tmp_path / "run"
    model = ["model.num_hidden_layers=2", "model.hidden_size=32", "model.num_attention_heads=2",
             "model.intermediate_size=48", "model.sliding_window=32", "train.batch_size=2", "train.max_steps=2",
             "optim.lr=1e-3", "data.mask_prob=0.3", "data.max_predictions_per_seq=null", "data.objective=none"]
    assert cli(["pretrain", "--data", shards, "--out", out, "--preset", "tiny-modern", *sets(QUIET + model)]) == 0
    rec = records(out)
    assert rec and all(math.isfinite(r["loss"]) for r in rec) and rec[-1]["tokens"] > 2 * 1000
