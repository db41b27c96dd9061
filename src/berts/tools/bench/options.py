"""What `berts bench` measures: the options, the tasks, the length regimes."""
from __future__ import annotations

from dataclasses import dataclass, field

TASKS = ("pretrain", "finetune", "infer")
EXTRAS = ("prepare", "tokenizer")
REGIMES = ("fixed", "real", "prepared")


@dataclass
class BenchOptions:
    """What one `berts bench` measures; `berts bench --options FILE --set KEY=VALUE` sets any field
    (berts.config.loader.load_settings: typed, file:line, the nearest key), the flags most."""
    preset: str = "mini"
    seq: int = 128
    batch: int = 32
    steps: int = 5
    warmup: int = 2
    threads: int | None = None
    device: str = "cpu"  # cpu or cuda[:N]
    corpus: str | None = None  # real text: a paragraph a line (default: CPython's reference topics)
    only: tuple[str, ...] = TASKS + EXTRAS  # of pretrain, finetune, infer, prepare, tokenizer
    regimes: tuple[str, ...] = REGIMES  # of fixed, real, prepared (--lengths)
    compile: bool = False
    transformers: bool = True  # compare with transformers when it is installed
    # berts' fast paths on/off (a mapping given in a file or --set replaces this one whole)
    fast_path: dict[str, bool] = field(default_factory=lambda: {"unpad": True, "pack": True, "sparse_output": True,
                                                                "fast_dropout": True})
    mask_prob: float = 0.15
    seed: int = 0
