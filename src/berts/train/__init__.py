"""The training engine: one Trainer for every task (pretraining, fine-tuning, a task with several
modules such as a student beside a frozen teacher). What to train lives in berts.tasks, the runs
that put a task, its data and a config together in berts.runs, the run config in berts.config.

=============  ===============================================================
trainer.py     the Trainer: the fit loop (step, log, evaluate, save), resume, the end
engine.py      device, precision + loss scaling, the task's modules (DDP, compile,
               frozen ones), micro-batch weighting, backward, optimizer step
plan.py        the run plan: steps, epochs or budget, warm-up, evaluation, stop reason
optim.py       AdamW / LAMB with decay groups; linear, constant, one-cycle schedules
checkpoint.py  atomic checkpoint directories, trainer_state.pt, RNG states, keep-last-K
distributed.py torchrun process group (gloo / nccl) and the few collectives used
monitor.py     the log window, progress bar, metrics.jsonl, TensorBoard, plots, summary
=============  ===============================================================
"""
import importlib

from berts.train.engine import Engine
from berts.train.plan import RunPlan
from berts.train.trainer import Trainer, TrainingDiverged

# Names this package exported before tasks, runs and the run config moved out of it. They resolve
# on first use (PEP 562), so `from berts.train import Task` keeps working while the engine itself
# imports nothing above it (tests/test_layering.py: train/ does not import runs/ or tasks/).
_MOVED = {
    "Task": "berts.tasks.base", "ModelTask": "berts.tasks.base", "PretrainingTask": "berts.tasks.pretraining",
    "ClassificationTask": "berts.tasks.classification", "pretraining_run": "berts.runs.pretrain",
    "finetuning_run": "berts.runs.finetune", "PretrainConfig": "berts.config.schema",
    "FinetuneConfig": "berts.config.schema", "load_config": "berts.config.loader", "save_config": "berts.config.loader",
}

__all__ = ["Trainer", "TrainingDiverged", "Engine", "RunPlan", *_MOVED]


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'berts.train' has no attribute {name!r}")
