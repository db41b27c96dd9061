"""The worked example of README's "Extending berts: a new pretraining task": a data hook (a
batch transform that swaps neighbouring tokens), its target module (an objective that finds
them), its counts and metrics, and a task model, pretrained through PretrainingTask and the
Trainer without touching the engine; plus the hook's contract (per-example generators: the
same batch whatever the composition, exact resume)."""
import json
import shutil

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from train_utils import TINY, make_shards, weights, write_corpus

from berts.data.collate import BatchTransform, register_transform
from berts.data.dataset import PretrainingDataset
from berts.model.heads import BertTaskModel, register_task_model
from berts.model.encoder import BertModel
from berts.objectives import MaskedLM, Objective, Result, register
from berts.objectives.base import accuracy


# --------------------------------------------------- the worked example (README, verbatim)
@register_transform
class NeighbourSwap(BatchTransform):                   # the data hook: runs in the collator, after masking
    name, keys = "neighbour_swap", ("swap_labels",)
    def __init__(self, rate=0.1):
        self.rate = rate
    def __call__(self, rows):                          # rows: a RowBatch (numpy), rows.rng: one generator a row
        labels = np.where(rows.attention & ~rows.special, 0, -100)       # [B, W]: 1 = swapped, -100 = ignore
        for r, g in enumerate(rows.rng):               # the row's own generator: resume and DDP stay exact
            free = np.flatnonzero(rows.free[r, :-1] & rows.free[r, 1:])  # both tokens unmasked, not special
            for i in free[g.random(len(free)) < self.rate]:
                if labels[r, i] == 0 and labels[r, i + 1] == 0 and rows.input_ids[r, i] != rows.input_ids[r, i + 1]:
                    rows.input_ids[r, [i, i + 1]] = rows.input_ids[r, [i + 1, i]]
                    labels[r, [i, i + 1]] = 1
        return {"swap_labels": labels}


@register
class SwapDetection(Objective, nn.Linear):            # the target module: which tokens were swapped?
    name, parts, metric_parts = "swap", ("swap",), {"swap_acc": "swap"}
    batch_keys = ("swap_labels",)
    hf_names = {"": {"bert": "cls.swap_detection.", "albert": "swap_detection."}}
    def __init__(self, config):
        nn.Linear.__init__(self, config.hidden_size, 2)
    def rows(self, batch):
        return None                                    # every position's last hidden state
    def counts(self, batch):
        return {"swap": int((batch["swap_labels"] != -100).sum())} if "swap_labels" in batch else {}
    def forward(self, enc, batch, picked):
        logits = F.linear(enc.last_hidden_state, self.weight, self.bias)  # [B, S, 2]
        if "swap_labels" not in batch:
            return Result()
        keep = batch["swap_labels"] != -100
        y = batch["swap_labels"][keep]
        return Result({}, {"swap": F.cross_entropy(logits[keep].float(), y)}, {"swap_acc": accuracy(logits[keep], y)})


@register_task_model
class BertForMaskedLMAndSwaps(BertTaskModel):
    hf_architectures = {"bert": "BertForMaskedLMAndSwaps", "albert": "AlbertForMaskedLMAndSwaps"}
    objective_names = ("mlm", "swap")
    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config)
        self.mlm = MaskedLM(config, self.bert.embeddings.word_embeddings)
        self.swap = SwapDetection(config)
        self.init_weights()
    def forward(self, input_ids, attention_mask=None, token_type_ids=None, mlm_positions=None, mlm_labels=None,
                swap_labels=None):
        return self.run(input_ids, attention_mask, token_type_ids,
                        targets=dict(mlm_positions=mlm_positions, mlm_labels=mlm_labels, swap_labels=swap_labels))


def build(shards, out, *extra, resume=None):
    """The run, in Python: the data with the hook, the model, PretrainingTask, the Trainer."""
    from berts.model.config import BertConfig
    from berts.train.checkpoint import seed_all
    from berts.config.schema import PretrainConfig, load_config
    from berts.tasks.pretraining import PretrainingTask
    from berts.train.trainer import Trainer

    cfg = load_config(PretrainConfig, None, TINY + [f"log.out={out}", *extra])
    data = PretrainingDataset(shards, seed=cfg.train.seed, transforms=[NeighbourSwap(0.1)])
    seed_all(cfg.train.seed)
    config = BertConfig(vocab_size=data.meta["vocab_size"], hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    task = PretrainingTask(BertForMaskedLMAndSwaps(config), data, objective="none")
    return Trainer(task, cfg, resume=resume)
# -------------------------------------------------------------------- end of the example


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("custom")
    return make_shards(root, write_corpus(root / "corpus.txt", docs=80), objective="none")


def test_the_hook_swaps_free_neighbours_per_example(shards):
    data = PretrainingDataset(shards, seed=0, transforms=[NeighbourSwap(0.1)])
    plain = PretrainingDataset(shards, seed=0)
    idx = np.arange(32)
    batch, ref = data.batch(idx, epoch=1), plain.batch(idx, epoch=1)
    # the masking is untouched (the hook runs after it, on the same generators)
    assert torch.equal(batch["mlm_positions"], ref["mlm_positions"])
    assert torch.equal(batch["mlm_labels"], ref["mlm_labels"])
    y, shown, before = batch["swap_labels"], batch["input_ids"], ref["input_ids"]
    assert torch.equal(shown != before, (y == 1) & (shown != before))  # only swapped tokens changed
    swapped = (y == 1).nonzero().tolist()
    assert swapped and len(swapped) % 2 == 0
    flat_mlm = set(batch["mlm_positions"].tolist())
    S = shown.shape[1]
    for r, i in swapped:
        assert r * S + i not in flat_mlm
    share = float((y == 1).sum()) / float((y != -100).sum())
    assert 0.05 < share < 0.25, share  # about 2 x 0.1 of the free pairs, minus overlaps
    # per example: row 5 batched alone gets the same swaps
    alone = data.batch(idx[5:6], epoch=1)
    n = int(alone["attention_mask"].sum())
    assert torch.equal(alone["swap_labels"][0, :n], y[5, :n]) and torch.equal(alone["input_ids"][0, :n], shown[5, :n])


def test_loss_by_hand_and_round_trip(shards, tmp_path):
    import berts

    trainer = build(shards, tmp_path / "x")
    model = trainer.task.model.eval()
    batch = trainer.task.train_dataset.batch(np.arange(8))
    inputs = trainer.task.inputs(batch)
    out = model(**inputs)
    keep = inputs["swap_labels"] != -100
    logits = F.linear(out.last_hidden_state, model.swap.weight, model.swap.bias)[keep]
    torch.testing.assert_close(out.losses["swap"], F.cross_entropy(logits, inputs["swap_labels"][keep]))
    assert model.loss_counts(inputs) == {"mlm": inputs["mlm_labels"].numel(), "swap": int(keep.sum())}
    model.save_pretrained(tmp_path / "m")
    again = berts.load(tmp_path / "m").eval()
    assert type(again).__name__ == "BertForMaskedLMAndSwaps"
    torch.testing.assert_close(again(**inputs).losses["swap"], out.losses["swap"], rtol=0, atol=0)


def test_pretrains_through_the_engine_and_resumes_exactly(shards, tmp_path):
    out = tmp_path / "run"
    run = ["train.max_steps=60", "train.save_every=30", "train.keep_last=2", "log.every=10", "optim.lr=3e-3"]
    build(shards, out, *run).fit()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("kind") == "train"]
    assert rows[-1]["swap"] < rows[0]["swap"] - 0.1, (rows[0]["swap"], rows[-1]["swap"])
    assert "swap_acc" in rows[-1] and rows[-1]["mlm"] < rows[0]["mlm"]
    # exact resume: continue from step 30 in a copy
    resumed = tmp_path / "resumed"
    shutil.copytree(out, resumed)
    shutil.rmtree(resumed / "final")
    shutil.rmtree(resumed / "checkpoints" / "step-60")
    build(shards, resumed, *run, resume=resumed / "checkpoints" / "step-30").fit()
    a, b = weights(out / "final"), weights(resumed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
