"""A small made-up task with two trainable modules and a frozen one, for the engine's tests
(tests/test_train_multimodule.py), and a runnable entry point (also under torchrun)::

    python tests/multimodule_task.py SHARDS OUT [--resume auto] [--sleep S] [section.key=value ...]

A tiny BERT encoder (``model``) and a projection (``proj``, no Hugging Face directory of its own)
learn to match a frozen, randomly initialised tiny "teacher" encoder (``teacher``), distillation
style, with two loss parts that average over different items:

* ``hidden``: the squared error of proj(student hidden state) against the teacher's, per real
  (not padding) token, averaged over the tokens;
* ``pooled``: the same on the pooled [CLS] vectors, averaged over the sequences.
"""
from __future__ import annotations

import sys
import time

import torch
from torch import nn

from berts.tasks.base import Task, model_inputs


def tiny_encoder(vocab_size: int, hidden: int, dropout: float):
    from berts import BertConfig
    from berts.model.encoder import BertModel

    return BertModel(BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=64,
                                hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout))


class MatchTeacherTask(Task):
    name = "match-teacher"
    loss_parts = ("hidden", "pooled")
    metric_parts = {"hidden_cos": "hidden"}  # averaged over tokens, like the hidden part

    def __init__(self, student, proj, teacher, train_dataset):
        self.student, self.proj, self.teacher = student, proj, teacher
        self.train_dataset = train_dataset

    def modules(self):
        return {"model": self.student, "proj": self.proj}

    def frozen_modules(self):
        return {"teacher": self.teacher}

    def counts(self, batch):
        return {"hidden": int(batch["attention_mask"].sum()), "pooled": int(batch["input_ids"].shape[0])}

    def loss(self, modules, batch):
        x = {k: v for k, v in model_inputs(batch).items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        student = modules.model(**x)
        with torch.no_grad():
            teacher = self.teacher(**x)
        real = x["attention_mask"].bool()
        hs = modules.proj(student.last_hidden_state[real])  # [T, Ht]: the real tokens only
        ht = teacher.last_hidden_state[real]
        losses = {"hidden": (hs - ht).pow(2).sum(-1).mean(),
                  "pooled": (modules.proj(student.pooler_output) - teacher.pooler_output).pow(2).sum(-1).mean()}
        metrics = {"hidden_cos": torch.cosine_similarity(hs.detach(), ht, dim=-1).mean()}
        return losses, metrics


def build(cfg, shards, dist=None, resume=None):
    from berts.data.dataset import PretrainingDataset
    from berts.train.checkpoint import seed_all
    from berts.train.trainer import Trainer

    data = PretrainingDataset(shards, seed=cfg.train.seed, pad_to_multiple_of=cfg.data.pad_to_multiple_of)
    vocab = int(data.meta["vocab_size"])
    dropout = float(cfg.model.overrides.get("hidden_dropout_prob", 0.1))
    seed_all(cfg.train.seed)  # the same modules on every rank (the teacher is not in DDP: no broadcast)
    student = tiny_encoder(vocab, 32, dropout)
    proj = nn.Linear(32, 48)
    teacher = tiny_encoder(vocab, 48, 0.1)
    task = MatchTeacherTask(student, proj, teacher, data)
    return Trainer(task, cfg, resume=resume, dist=dist, title="match")


def main(argv: list[str]) -> int:
    from berts.train import checkpoint, distributed
    from berts.config.schema import PretrainConfig, load_config

    shards, out, *rest = argv
    resume = sleep = None
    sets = []
    while rest:
        item = rest.pop(0)
        if item == "--resume":
            resume = rest.pop(0)
        elif item == "--sleep":
            sleep = float(rest.pop(0))
        else:
            sets.append(item)
    cfg = load_config(PretrainConfig, None, [
        "train.batch_size=8", "train.seed=0", "optim.lr=1e-3", "schedule.warmup=0.1", "data.num_workers=0",
        "impl.threads=1", "impl.device=cpu", "log.progress=none", "log.tensorboard=false", "log.plots=false",
        f"log.out={out}", *sets])
    if sleep:  # slow steps, so that a test can kill the run between checkpoints
        from berts.train.trainer import Trainer

        step = Trainer._train_step

        def slow(self, batches):
            step(self, batches)
            time.sleep(sleep)

        Trainer._train_step = slow
    where = checkpoint.resolve_resume(resume, out) if resume else None
    dist = distributed.setup("cpu")
    try:
        trainer = build(cfg, shards, dist, where)
        trainer.fit()
        del trainer
    finally:
        distributed.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
