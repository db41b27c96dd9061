"""The two sides of every measurement: berts and transformers, each a model, an optimizer and a
step, on the same config and weights (transformers loads the directory berts saved)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from berts.tools.bench.options import BenchOptions
from berts.model.config import BertConfig
from berts.model.encoder import compile_model
from berts.model.heads import BertForPreTraining, BertForSequenceClassification


def _to(batch: dict, device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


class Side:
    """One implementation of one task: a model, its optimizer and a step function."""

    def __init__(self, name: str, model, task: str, device: torch.device):
        self.name, self.model, self.task, self.device = name, model.to(device), task, device
        training = task in ("pretrain", "finetune")
        self.model.train(training)
        self.optimizer = None
        if training:
            kwargs = {"fused": True} if device.type == "cuda" else {}
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.01, **kwargs)

    def autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def step(self, batch: dict) -> None:
        if self.optimizer is None:
            with torch.inference_mode(), self.autocast():
                self.model(**batch)
            return
        with self.autocast():
            loss = self.model(**batch).loss
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def _transformers():
    try:
        import transformers
    except ImportError:
        return None
    return transformers


def build_sides(opts: BenchOptions, config: BertConfig, task: str, device: torch.device, workdir: Path) -> list[Side]:

    torch.manual_seed(opts.seed)
    cls = BertForPreTraining if task == "pretrain" else BertForSequenceClassification
    ours = cls(config)
    ours.set_fast_path(**opts.fast_path)
    sides = []
    tf = _transformers() if opts.transformers else None
    if tf is not None:
        directory = workdir / f"model-{task}"
        ours.save_pretrained(directory)
        arch = json.loads((directory / "config.json").read_text())["architectures"][0]
        tf.utils.logging.disable_progress_bar()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(tf, arch).from_pretrained(directory, attn_implementation="sdpa")
        sides.append(Side("transformers", theirs, task, device))
    if opts.compile:
        ours = compile_model(ours)
    sides.insert(0, Side("berts", ours, task, device))
    return sides
