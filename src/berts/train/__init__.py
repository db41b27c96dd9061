"""The training engine: one Trainer for every task (pretraining, fine-tuning, a task with several
modules such as a student beside a frozen teacher).

=============  ===============================================================
trainer.py     the Trainer: the fit loop (step, log, evaluate, save), resume, the end
engine.py      device, precision + loss scaling, the task's modules (DDP, compile,
               frozen ones), micro-batch weighting, backward, optimizer step
plan.py        the run plan: steps, epochs or budget, warm-up, evaluation, stop reason
tasks.py       what to train: the Task protocol, PretrainingTask, ClassificationTask
recipes.py     the runs of `berts pretrain` / `berts finetune` as library functions
config.py      dataclass sections (model, data, optim, schedule, train, impl, log),
               YAML + ``--set section.key=value``, type checks, config.yaml
optim.py       AdamW / LAMB with decay groups; linear, constant, one-cycle schedules
checkpoint.py  atomic checkpoint directories, trainer_state.pt, RNG states, keep-last-K
distributed.py torchrun process group (gloo / nccl) and the few collectives used
monitor.py     the log window, progress bar, metrics.jsonl, TensorBoard, plots, summary
=============  ===============================================================
"""
from berts.config.schema import FinetuneConfig, PretrainConfig, load_config, save_config
from berts.train.engine import Engine
from berts.train.plan import RunPlan
from berts.runs.finetune import finetuning_run
from berts.runs.pretrain import pretraining_run
from berts.tasks.classification import ClassificationTask
from berts.tasks.base import ModelTask, Task
from berts.tasks.pretraining import PretrainingTask
from berts.train.trainer import Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "Engine", "RunPlan", "Task", "ModelTask", "PretrainingTask",
           "ClassificationTask", "pretraining_run", "finetuning_run", "PretrainConfig", "FinetuneConfig",
           "load_config", "save_config"]
