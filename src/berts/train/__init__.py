"""The training engine: one Trainer for pretraining, fine-tuning and distillation.

=============  ===============================================================
config.py      dataclass sections (model, data, optim, schedule, train, impl, log),
               YAML + ``--set section.key=value``, type checks, config.yaml
trainer.py     the Trainer: the loop, precision, accumulation, DDP, resume, budget
tasks.py       what to train: PretrainingTask, ClassificationTask (the Task protocol)
optim.py       AdamW / LAMB with decay groups; linear, constant, one-cycle schedules
checkpoint.py  atomic checkpoint directories, trainer_state.pt, RNG states, keep-last-K
distributed.py torchrun process group (gloo / nccl) and the few collectives used
monitor.py     progress bar, metrics.jsonl, TensorBoard, plots, summary
=============  ===============================================================
"""
from berts.train.config import FinetuneConfig, PretrainConfig, load_config, save_config
from berts.train.tasks import ClassificationTask, PretrainingTask, Task
from berts.train.trainer import Trainer, TrainingDiverged

__all__ = ["Trainer", "TrainingDiverged", "Task", "PretrainingTask", "ClassificationTask",
           "PretrainConfig", "FinetuneConfig", "load_config", "save_config"]
