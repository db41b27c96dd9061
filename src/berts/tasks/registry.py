"""The fine-tuning tasks by name: the one list that ``berts finetune --task``, a finetune YAML's
``data.task``, ``train.metric``'s check and the serving commands read.

Torch-free (strings only: the Task class and the run are found by dotted path when a run starts),
so that ``berts finetune --help`` builds its choices from here without importing torch.

A task is one file under tasks/ (its Task class) plus one entry below; docs/extending/task.md walks
through one. An entry without its own ``run`` uses the generic fine-tuning run
(``berts.runs.finetune:plugin_run``): the Task class then builds itself from the run's context
with a ``from_run(run)`` classmethod (the config, the tokenizer, the tables, the model to start from).
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass

from berts.errors import UserError

GENERIC_RUN = "berts.runs.finetune:plugin_run"


@dataclass(frozen=True)
class TaskSpec:
    name: str
    task: str  # "module:Class": the Task class
    metrics: tuple[str, ...]  # train.metric's choices; the first is the default
    help: str  # one line, for --help and errors
    run: str = GENERIC_RUN  # "module:function": (cfg, resume, dist, *, resume_requested, overwrite) -> Trainer
    serve: str | None = "classifier"  # how `berts predict` / `berts evaluate` read its directories (None: not them)
    then: str = "berts predict OUT/best FILE"  # what to do with a trained directory, for the docs and errors


TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add (or replace) a task; a plug-in outside berts calls this before building the parser."""
    TASKS[spec.name] = spec
    return spec


register(TaskSpec("classification", "berts.tasks.classification:ClassificationTask",
                  ("accuracy", "f1", "f1_macro", "mcc", "loss"),
                  "a label per sentence or sentence pair (cross-entropy)",
                  run="berts.runs.finetune:classification_run"))
register(TaskSpec("regression", "berts.tasks.classification:ClassificationTask",
                  ("pearson", "spearman", "mse", "loss"),
                  "a number per sentence or sentence pair (MSE)",
                  run="berts.runs.finetune:classification_run"))
register(TaskSpec("seq2seq", "berts.tasks.seq2seq:Seq2SeqTask", ("rouge_l", "bleu", "token_acc", "loss"),
                  "generate --target-column from --source-column (UniLM's seq2seq mask; evaluation: loss, "
                  "token_acc, bleu, rouge_l)", run="berts.runs.seq2seq:seq2seq_run", serve=None,
                  then="berts generate OUT/best"))


def names() -> tuple[str, ...]:
    return tuple(TASKS)


def get(name: str) -> TaskSpec:
    """The task called ``name``; a one-line UserError naming the choices (and the nearest) otherwise."""
    spec = TASKS.get(name)
    if spec is None:
        near = difflib.get_close_matches(str(name), TASKS, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise UserError(f"data.task {name!r} is not a task{hint}: choose from {', '.join(TASKS)}")
    return spec


def load(path: str):
    """The object a "module:name" path names (a Task class, a run function)."""
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def check_metric(metric: str | None, task: str) -> None:
    """``train.metric`` is one of the task's metrics (None: the task's default)."""
    if metric is None:
        return
    choices = get(task).metrics
    if metric not in choices:
        raise UserError(f"train.metric {metric!r} is not a {task} metric (choose from {', '.join(choices)})")
