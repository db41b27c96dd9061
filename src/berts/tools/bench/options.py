"""What `berts bench` measures: the options, the tasks, the length regimes."""
from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("pretrain", "finetune", "infer")
EXTRAS = ("prepare", "tokenizer")
REGIMES = ("fixed", "real", "prepared")


@dataclass
class BenchOptions:
    preset: str = "mini"
    seq: int = 128
    batch: int = 32
    steps: int = 5
    warmup: int = 2
    threads: int | None = None
    device: str = "cpu"
    corpus: str | None = None
    only: tuple[str, ...] = TASKS + EXTRAS
    regimes: tuple[str, ...] = REGIMES
    compile: bool = False
    transformers: bool = True  # compare with transformers when it is installed
    fast_path: dict = field(default_factory=lambda: {"unpad": True, "pack": True, "sparse_output": True,
                                                     "fast_dropout": True})
    mask_prob: float = 0.15
    seed: int = 0
