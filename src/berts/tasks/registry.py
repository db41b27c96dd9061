"""The fine-tuning tasks by name: the one list that ``berts finetune --task``, a finetune YAML's
``data.task``, ``train.metric``'s check and the serving commands read.

Torch-free (strings only: the Task class and the run are found by dotted path when a run starts),
so that ``berts finetune --help`` builds its choices from here without importing torch.

A task is one file under tasks/ (its Task class) plus one entry below; docs/extending/task.md walks
through one. A task's own switches (``--crf``, ``--doc-stride``, ...) are ``Option``s of its entry:
each is a typed key of the finetune config's ``task:`` section and a ``berts finetune`` flag, so a
new task adds its options here and nowhere else (the config loader, ``--show-config``, the flags and
the check that an option belongs to the chosen task all read them). An entry without its own ``run`` uses the generic fine-tuning run
(``berts.runs.finetune:plugin_run``): the Task class then builds itself from the run's context
with a ``from_run(run)`` classmethod (the config, the tokenizer, the tables, the model to start from).
"""
from __future__ import annotations

import argparse
import difflib
import importlib
from dataclasses import dataclass, field, make_dataclass
from typing import Any, Literal

from berts.errors import UserError
from berts.util import values

GENERIC_RUN = "berts.runs.finetune:plugin_run"


@dataclass(frozen=True)
class Option:
    """One switch of a task: ``task.<name>`` in a finetune YAML, ``--<name with dashes>`` on the
    command line. ``type`` is what the config loader coerces to (bool, int, float, str, a Literal,
    ``X | None``); a bool is a flag without a value."""
    name: str
    type: Any
    default: Any
    help: str
    # the range a number must be in: the name of a berts.util.values type ("count", "natural",
    # "positive", ...), the one validation layer of every numeric flag; checked for YAML values too
    values: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    task: str  # "module:Class": the Task class
    metrics: tuple[str, ...]  # train.metric's choices; the first is the default
    help: str  # one line, for --help and errors
    run: str = GENERIC_RUN  # "module:function": (cfg, resume, dist, *, resume_requested, overwrite) -> Trainer
    # how `berts predict` / `berts evaluate` read its directories: "classifier" (serve.predict.Classifier),
    # a module with evaluate_command(args, data_settings) and predict_command(args, data_settings), or None
    serve: str | None = "classifier"
    then: str = "berts predict OUT/best FILE"  # what to do with a trained directory, for the docs and errors
    options: tuple[Option, ...] = ()  # its own switches (the config's task: section, berts finetune's flags)


TASKS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add (or replace) a task; a plug-in outside berts calls this before building the parser. An
    option another task already declares must keep its type (one ``task.<name>`` key, one flag)."""
    for opt in spec.options:
        for other in TASKS.values():
            same = next((o for o in other.options if o.name == opt.name), None)
            if same is not None and same.type != opt.type and other.name != spec.name:
                raise ValueError(f"task option {opt.name}: {spec.name} declares it {opt.type}, "
                                 f"{other.name} {same.type}")
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

register(TaskSpec("qa", "berts.tasks.qa:QATask", ("f1", "exact_match"),
                  "extractive question answering: an answer span of the context (SQuAD JSON or JSONL "
                  "question/context/answers; evaluation: SQuAD EM/F1, v2.0 null answers, CMRC's for Chinese)",
                  serve="berts.serve.qa", then="berts predict OUT/best --question Q --context C",
                  options=(Option("doc_stride", int, 128, "context tokens shared by consecutive windows", "natural"),
                           Option("max_answer_length", int, 30, "the longest answer, in tokens", "count"),
                           Option("n_best", int, 20, "starts and ends tried per window", "count"),
                           Option("version_2", bool | Literal["auto"], "auto",
                                  "SQuAD v2.0 null answers (auto: when the data has unanswerable questions)"),
                           Option("null_threshold", float | None, None,
                                  "answer nothing when the null score beats the best span by more "
                                  "(default: chosen on dev, best f1)"),
                           Option("lang", Literal["auto", "en", "zh"], "auto",
                                  "metrics: en = SQuAD's, zh = CMRC 2018's characters (auto: from the text)"),
                           Option("max_question_tokens", int, 64, "a longer question is cut to this", "count"))))
register(TaskSpec("multiple-choice", "berts.tasks.multiple_choice:MultipleChoiceTask", ("accuracy", "loss"),
                  "pick one of a row's choices (JSONL context/question, choices, label; [B, C, S] as "
                  "transformers' ...ForMultipleChoice)", serve="berts.tasks.multiple_choice",
                  then="berts predict OUT/best FILE.jsonl"))
register(TaskSpec("multi-label", "berts.tasks.multi_label:MultiLabelTask",
                  ("micro_f1", "macro_f1", "subset_accuracy", "loss"),
                  "any number of labels per text (a label cell joined by --label-sep, or a JSONL list; BCE; "
                  "thresholds chosen on dev)", serve="berts.tasks.multi_label",
                  options=(Option("label_sep", str, "|", "the separator of a label cell holding several labels"),
                           Option("threshold_per_label", bool, False,
                                  "choose one threshold per label on dev (default: one for all labels)"))))
register(TaskSpec("sentence-embedding", "berts.tasks.sentence_embedding:SentenceEmbeddingTask",
                  ("spearman", "pearson", "ndcg@10", "recall@1", "recall@10", "mrr@10", "map"),
                  "sentence embeddings: contrastive (MNRL, SimCSE) or scored pairs (CoSENT, cosine); saves a "
                  "sentence-transformers directory", serve=None, then="berts embed OUT/best FILE --out F.npy",
                  options=(Option("loss", str, "mnrl", "mnrl (pairs, in-batch negatives), simcse (one text "
                                  "column), cosent or cosine (scored pairs: --label-column)"),
                           Option("temperature", float, 0.05, "the contrastive losses' temperature (scale 1/t)",
                                  "positive"),
                           Option("hard_negative_column", str | None, None, "mnrl: a column with one hard "
                                  "negative per row"),
                           Option("pooling", str | None, None, "mean, cls, max, mean-sqrt-len, weightedmean, "
                                  "lasttoken (default: model.init_from's, else mean)"),
                           Option("normalize", bool, False, "save with L2 normalisation (2_Normalize)"))))
register(TaskSpec("token-classification", "berts.tasks.token_classification:TokenClassificationTask",
                  ("f1", "precision", "recall", "accuracy", "loss"),
                  "a tag per word: NER, POS, Chinese per-character tagging (CoNLL columns or JSONL tokens/tags; "
                  "evaluation: entity f1 as seqeval, token accuracy)",
                  serve="tagger", then="berts predict OUT/best --text \"...\"",
                  options=(Option("tag_column", int, -1, "the CoNLL column holding the tag (0-based; -1: the last)"),
                           Option("scheme", Literal["auto", "io", "bio", "iob1", "bioes", "bmes"], "auto",
                                  "the tag scheme (auto: detected from the training tags); the CRF's constraints "
                                  "and the invalid-transition counts follow it"),
                           Option("label_all_subtokens", bool, False,
                                  "label every sub-token of a word (B-X's continuations as I-X), not only the first"),
                           Option("crf", bool, False,
                                  "a linear-chain CRF on the emissions (exact NLL, Viterbi; saved as crf.safetensors)"),
                           Option("stride", int, 32,
                                  "sub-tokens shared by consecutive windows of a sentence longer than --max-length",
                                  "natural"))))


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


# ----------------------------------------------------------------------------- task options
def all_options() -> dict[str, tuple[Option, tuple[str, ...]]]:
    """Every option name -> (its Option, as the first task declaring it has it; the tasks that have it)."""
    out: dict[str, tuple[Option, tuple[str, ...]]] = {}
    for spec in TASKS.values():
        for opt in spec.options:
            first, owners = out.get(opt.name, (opt, ()))
            out[opt.name] = (first, owners + (spec.name,))
    return out


def options_class() -> type:
    """A dataclass whose fields are every task's options (types and defaults): the keys the
    finetune config's ``task:`` section may hold (berts.config.schema.TaskSection.extra_keys)."""
    fields = [(name, opt.type, field(default=opt.default)) for name, (opt, _) in all_options().items()]
    return make_dataclass("TaskOptions", fields)


def check_options(task: str, given: dict) -> None:
    """The ``task:`` keys set are options of ``task`` (one line naming whose option it is otherwise),
    and a number is in its option's range (``Option.values``: the flags' own types)."""
    own = {o.name: o for o in get(task).options}
    for key, value in given.items():
        if key not in own:
            owners = all_options().get(key, (None, ()))[1]
            raise UserError(f"task.{key} is an option of {', '.join(owners) or 'no task'}, not of {task}"
                            + (f" (its options: {', '.join(sorted(own))})" if own else " (it has none)"))
        opt = own[key]
        if opt.values and value is not None and not isinstance(value, bool):
            try:
                getattr(values, opt.values)(str(value))
            except argparse.ArgumentTypeError as exc:
                raise UserError(f"task.{key} (--{key.replace('_', '-')}): {exc}") from None


def options_of(task: str, given: dict | None = None) -> dict[str, Any]:
    """The options of ``task``: its defaults, updated by the config's ``task:`` section."""
    given = given or {}
    return {o.name: given.get(o.name, o.default) for o in get(task).options}
