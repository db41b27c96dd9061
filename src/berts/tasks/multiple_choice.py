"""Multiple choice (``berts finetune --task multiple-choice``): SWAG / RACE / C3 / MMLU-style rows.

What it reads: JSONL (or parquet, a `datasets` directory, a TSV/CSV with a header) records with
``context`` (or ``question``, or both), ``choices`` (a list, any number >= 1) and ``label`` (the
0-based index of the right choice). Each choice is one sequence ``[CLS] first [SEP] second [SEP]``:
first = the context (the question when there is no context); second = the choice, after the
question when there are both (RACE's layout). ``--text-column`` renames the context field,
``--label-column`` the label field.

Its head: transformers' BertForMultipleChoice, exactly (so the directory is one): the inputs are
[B, C, S]; the encoder runs on the B*C sequences; pooled [CLS] -> dropout -> linear [H, 1] (HF name
``classifier``) -> logits [B, C]; cross-entropy over the choices. Rows of a batch may have
different numbers of choices: the batch is padded to its largest, each padded choice a 2-token
[CLS] [SEP] sequence (an all-padding row would make attention softmax over nothing), and its logit
set to the dtype's minimum by ``choice_mask`` [B, C], so it has probability 0 in the softmax and
in the loss. transformers has no ``choice_mask``: with equal choice counts the two agree.

Its metric: accuracy (and the loss); the report (berts.metrics.report) counts, per choice
position, how often it was right and chosen. Predict: the chosen index and its probability.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from berts.serve.output import write_predictions
from berts.errors import UserError, where
from berts.model.config import BertConfig
from berts.model.encoder import BertModel, Dropout
from berts.model.heads import BertTaskModel, ModelOutput, register_task_model
from berts.model.padding import pad_width
from berts.objectives.base import Objective, Result, accuracy
from berts.tasks.base import ModelTask
from berts.compress.transforms import quantize_int8
from berts.data.tables import read_records
from berts.hf import load
from berts.metrics.report import classification_report
from berts.metrics.report import metrics_line, print_report, save_report_png
from berts.model.runner import rows
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.device import resolve_device
from berts.util.progress import progress_on

NAME = "multiple-choice"


# ----------------------------------------------------------------------------- the head
class MultipleChoiceHead(Objective, nn.Linear):
    """Pooled [CLS] of each choice -> dropout -> [H, 1]; the scores of a row's choices, [B, C]."""

    name = "multiple_choice"
    parts = ("task",)
    metric_parts = {"train_acc": "task"}
    batch_keys = ("labels", "choice_mask")
    hf_names = {"": {"bert": "classifier.", "albert": "classifier."}}

    def __init__(self, config: BertConfig):
        nn.Linear.__init__(self, config.hidden_size, 1)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(p)

    def counts(self, batch):
        return {"task": int(batch["labels"].shape[0])} if batch.get("labels") is not None else {}

    def forward(self, enc, batch, picked):
        logits = F.linear(self.dropout(enc.pooler_output), self.weight, self.bias)  # [B*C, 1]
        logits = logits.view(-1, batch["num_choices"])  # [B, C] (no int(): a traced export keeps C dynamic)
        mask = batch.get("choice_mask")
        if mask is not None:  # padded choices: probability 0
            logits = logits.masked_fill(mask == 0, torch.finfo(logits.dtype).min)
        out = Result(fields={"logits": logits})
        labels = batch.get("labels")
        if labels is not None:
            out.losses["task"] = F.cross_entropy(logits.float(), labels.reshape(-1))
            out.metrics["train_acc"] = accuracy(logits, labels.reshape(-1))
        return out


@register_task_model
class BertForMultipleChoice(BertTaskModel):
    """transformers' BertForMultipleChoice: inputs [B, C, S], logits [B, C] (+ ``choice_mask``)."""

    hf_architectures = {"bert": "BertForMultipleChoice", "albert": "AlbertForMultipleChoice"}
    objective_names = ("classifier",)
    choice_inputs = True  # inputs [B, C, S] (serve/export.py exports and checks them so)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.classifier = MultipleChoiceHead(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                choice_mask=None, output_hidden_states=False, output_attentions=False,
                output_attention_scores=False) -> ModelOutput:
        num_choices = input_ids.shape[1]

        def flat(x):  # [B, C, S] -> [B*C, S]
            return None if x is None else x.reshape(-1, x.shape[-1])

        return self.run(flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                        dict(labels=labels, choice_mask=choice_mask, num_choices=num_choices),
                        output_hidden_states, output_attentions, output_attention_scores)


# ----------------------------------------------------------------------------- the data
@dataclass(frozen=True)
class ChoiceExample:
    first: str  # the context (or the question)
    seconds: tuple[str, ...]  # one per choice: the choice (after the question when there is a context)
    choices: tuple[str, ...]  # the choices as given (predict's output)
    label: int | None
    line: int | None = None
    path: str | None = None


def _text(value, field: str, path, line) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where(path, line)}: field '{field}' must be a non-empty string, got {json.dumps(value)[:40]}")
    return value


def read_choices(path, d, *, labels: bool = True) -> tuple[list[ChoiceExample], Any]:
    """The rows of ``path`` (see the module docstring) with the data section ``d``'s format and
    field names; any bad row (no choices, a label that is not an index of its choices) is a
    one-line UserError naming file and line (row number for parquet / datasets)."""

    records, report = read_records(path, format=d.format, skip_bad_rows=False)
    context_field = d.text_column if d.text_column not in (None, "text") else "context"
    label_field = d.label_column or "label"
    out = []
    for line, rec in records:
        context = rec.get(context_field)
        question = rec.get("question")
        if context is None and question is None:
            raise UserError(f"{where(path, line)}: no field '{context_field}' or 'question'")
        choices = rec.get("choices")
        if isinstance(choices, str):  # a TSV/CSV cell: a JSON list
            try:
                choices = json.loads(choices)
            except json.JSONDecodeError:
                raise UserError(f"{where(path, line)}: field 'choices' is not a JSON list") from None
        if not isinstance(choices, (list, tuple)):
            raise UserError(f"{where(path, line)}: field 'choices' must be a list, got {type(choices).__name__}")
        if len(choices) == 0:
            raise UserError(f"{where(path, line)}: 0 choices (a row needs at least one)")
        choices = tuple(_text(c, "choices", path, line) for c in choices)
        if context is not None:
            first = _text(context, context_field, path, line)
            seconds = tuple(f"{_text(question, 'question', path, line)} {c}" if question is not None else c
                            for c in choices)
        else:
            first, seconds = _text(question, "question", path, line), choices
        label = None
        if labels:
            raw = rec.get(label_field)
            if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
                raw = int(raw)
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise UserError(f"{where(path, line)}: field '{label_field}' must be the index of the right choice "
                                f"(0..{len(choices) - 1}), got {json.dumps(raw)[:40]}")
            if not 0 <= raw < len(choices):
                raise UserError(f"{where(path, line)}: label {raw} is not a choice index (0..{len(choices) - 1})")
            label = raw
        out.append(ChoiceExample(first, seconds, choices, label, line, str(path)))
    return out, report


def _example(row: dict) -> ChoiceExample:
    """A ChoiceExample from a dict as the files hold (the API's input)."""
    choices = tuple(row.get("choices") or ())
    if not choices:
        raise UserError("a row needs at least one choice")
    context, question = row.get("context"), row.get("question")
    if context is None and question is None:
        raise UserError("a row needs a context or a question")
    first = context if context is not None else question
    seconds = tuple(f"{question} {c}" if context is not None and question is not None else c for c in choices)
    return ChoiceExample(first, seconds, choices, row.get("label"))


class MultipleChoiceDataset:
    """Tokenized once; ``ds[(epoch, step, indices)]`` is a batch [B, C, W], C the batch's most
    choices, W = pad_width of its longest sequence (<= max_length)."""

    def __init__(self, examples: list[ChoiceExample], tokenizer, max_length: int = 128):
        self.examples = list(examples)
        if not self.examples:
            raise UserError("no examples to build a dataset from")
        self.max_length, self.pad_id = max_length, int(tokenizer.pad_id)
        firsts = [e.first for e in self.examples for _ in e.seconds]
        seconds = [s for e in self.examples for s in e.seconds]
        enc = tokenizer(firsts, seconds, max_length=max_length, truncation=True)
        self.ids, self.types, k = [], [], 0
        for e in self.examples:  # per example: a list of choices' token lists
            c = len(e.seconds)
            self.ids.append(enc["input_ids"][k:k + c])
            self.types.append(enc["token_type_ids"][k:k + c])
            k += c
        self.filler = [tokenizer.cls_id, tokenizer.sep_id]  # a padded choice's sequence
        has = [e.label is not None for e in self.examples]
        self.labels = np.array([e.label for e in self.examples], dtype=np.int64) if all(has) else None
        self.num_choices = np.array([len(e.seconds) for e in self.examples], dtype=np.int64)
        # per example: its longest choice's tokens (`berts compare`'s FLOPs count each choice as a sequence)
        self.lengths = np.array([max(len(x) for x in ids) for ids in self.ids], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, item):
        epoch, step, indices = item
        return self.collate(indices, epoch=epoch, step=step)

    def collate(self, indices, *, epoch: int = 0, step: int = 0) -> dict:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        c = int(self.num_choices[idx].max())
        width = pad_width(max(len(x) for i in idx for x in self.ids[i]), 8, cap=self.max_length)
        b = len(idx)
        input_ids = torch.full((b, c, width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros(b, c, width, dtype=torch.long)
        token_type_ids = torch.zeros(b, c, width, dtype=torch.long)
        choice_mask = torch.zeros(b, c, dtype=torch.long)
        for r, i in enumerate(idx):
            for j in range(c):
                real = j < len(self.ids[i])
                ids = self.ids[i][j] if real else self.filler
                input_ids[r, j, :len(ids)] = torch.tensor(ids)
                attention_mask[r, j, :len(ids)] = 1
                if real:
                    token_type_ids[r, j, :len(ids)] = torch.tensor(self.types[i][j])
                    choice_mask[r, j] = 1
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "choice_mask": choice_mask, "index": torch.from_numpy(idx.copy()), "epoch": int(epoch),
                 "step": int(step)}
        if self.labels is not None:
            batch["labels"] = torch.from_numpy(self.labels[idx])
        return batch


def choice_logits(model, dataset: MultipleChoiceDataset, batch_size: int = 64, device=None, autocast=None,
                  progress: str | None = None):
    """Logits [N, Cmax] of every example in order (a row's missing choices: -inf). ``progress``: a
    bar's label (berts.util.progress), or None."""

    # the most choices of any row (a view of the dataset for timing, compare's _Subset: its rows')
    n = dataset.num_choices if hasattr(dataset, "num_choices") else dataset.ds.num_choices[dataset.idx]
    cmax = int(n.max())

    def forward(b):
        logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                       token_type_ids=b["token_type_ids"], choice_mask=b["choice_mask"]).logits.float()
        logits = logits.masked_fill(b["choice_mask"] == 0, float("-inf"))
        return F.pad(logits, (0, cmax - logits.shape[1]), value=float("-inf"))  # [B, Cmax]

    return rows(model, dataset, batch_size=batch_size, device=device, autocast=autocast, forward=forward,
                progress=progress)


def score(logits: np.ndarray, labels: np.ndarray) -> dict:
    """accuracy, loss and the per-position report of choice logits [N, C] against labels [N]."""

    t = torch.from_numpy(logits)
    predicted = t.argmax(-1).numpy()
    n_choices = logits.shape[1]
    out = {"accuracy": float((predicted == labels).mean()),
           "loss": float(F.cross_entropy(t, torch.from_numpy(labels)))}
    out["report"] = classification_report(labels, predicted, [str(i) for i in range(n_choices)])
    return out


# ----------------------------------------------------------------------------- the task
class MultipleChoiceTask(ModelTask):
    name = NAME

    def __init__(self, model, train_dataset, dev_dataset=None, eval_batch_size: int = 64):
        self.model, self.train_dataset, self.dev_dataset = model, train_dataset, dev_dataset
        self.eval_batch_size = eval_batch_size

    @classmethod
    def from_run(cls, run):
        d = run.cfg.data
        train = MultipleChoiceDataset(read_choices(d.train, d)[0], run.tokenizer, run.max_length)
        dev = MultipleChoiceDataset(read_choices(d.dev, d)[0], run.tokenizer, run.max_length) if d.dev else None
        model = run.model(BertForMultipleChoice, num_labels=1, id2label=None, label2id=None, problem_type=None)
        return cls(model, train, dev, run.cfg.train.eval_batch_size)

    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None
        logits = choice_logits(self.model, self.dev_dataset, self.eval_batch_size, engine.device, engine.autocast)
        metrics = score(logits, self.dev_dataset.labels)
        metrics.pop("report")
        return metrics

    def describe(self) -> str:
        n = self.train_dataset.num_choices
        return f"choices per row: {int(n.min())}..{int(n.max())}"


# ----------------------------------------------------------------------------- serving
class ChoicePredictor:
    """A fine-tuned multiple-choice directory, ready to serve (``berts predict`` / ``evaluate``)."""

    exit = None  # no early exit (berts compare asks)

    def __init__(self, model, tokenizer, settings: dict):
        self.model, self.tokenizer, self.settings = model, tokenizer, settings

    @classmethod
    def from_pretrained(cls, directory, device: str = "auto", int8: bool = False) -> "ChoicePredictor":

        model = load(directory)
        if not isinstance(model, BertForMultipleChoice):
            raise UserError(f"{directory}: a {type(model).__name__}, not a multiple-choice model")
        model.to(resolve_device(device)).eval()
        if int8:  # torch's dynamic int8 Linears (CPU), as berts.Classifier's

            if model.device.type != "cpu":
                raise UserError(f"int8 runs on the CPU (torch's dynamic int8 kernels); got device {model.device}")
            model = quantize_int8(model, int8)
        return cls(model, load_tokenizer(directory), dict(model.config.finetune_data or {}))

    def compare_score(self, logits, ds) -> tuple[str, float]:
        return "accuracy", float((logits.argmax(-1) == ds.labels).mean())

    def compare_agreement(self, fp32, other) -> dict:
        """int8 against fp32: the share of equal choices, the largest probability difference."""
        pa, pb = (torch.from_numpy(x).softmax(-1).numpy() for x in (fp32, other))
        return {"agreement": float((pa.argmax(-1) == pb.argmax(-1)).mean()),
                "max_prob_diff": float(np.nan_to_num(np.abs(pa - pb)).max())}

    def dataset(self, examples, max_length: int | None = None) -> MultipleChoiceDataset:
        return MultipleChoiceDataset(examples, self.tokenizer,
                                     max_length or self.settings.get("max_length") or 128)

    def logits(self, dataset, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """``progress``: a bar on stderr, one tick per batch (off by default in the API; the commands
        follow berts.util.progress's rule: a terminal, not --quiet)."""
        return choice_logits(self.model, dataset, batch_size, progress="predict" if progress else None)

    def predict(self, examples, batch_size: int = 64, max_length: int | None = None,
                progress: bool = False) -> list[dict]:
        """Per example (a ChoiceExample, or a dict with ``context`` and/or ``question`` and
        ``choices``): ``choice`` (index), ``text`` (the choice), ``probability`` and every choice's
        ``probabilities``::

            ChoicePredictor.from_pretrained("runs/mc/best").predict(
                [{"question": "2 + 2 =", "choices": ["3", "4", "5"]}])  # [{"choice": 1, "text": "4", ...}]
        """
        examples = [e if isinstance(e, ChoiceExample) else _example(e) for e in examples]
        logits = self.logits(self.dataset(examples, max_length), batch_size, progress)
        probs = torch.from_numpy(logits).softmax(-1).numpy()
        out = []
        for e, p in zip(examples, probs):
            k = int(p.argmax())
            out.append({"choice": k, "text": e.choices[k], "probability": round(float(p[k]), 6),
                        "probabilities": [round(float(x), 6) for x in p[:len(e.choices)]]})
        return out


def evaluate_command(args, data_settings) -> int:
    """``berts evaluate DIR FILE`` for a multiple-choice directory: accuracy, loss, the report
    (``data_settings(args, settings, labels=)``: the command's data flags over the model's)."""

    pred = ChoicePredictor.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    d = data_settings(args, pred.settings, labels=True)
    examples, _ = read_choices(args.file, d)
    ds = pred.dataset(examples, d.max_length)
    bar = progress_on(getattr(args, "quiet", False))
    fp32 = pred.logits(ds, args.batch_size, bar)
    metrics = score(fp32, ds.labels)
    if args.int8:  # reported against fp32, never alone

        quantize_int8(pred.model, args.int8)
        int8 = pred.logits(ds, args.batch_size, bar)
        fp32_metrics = {k: v for k, v in metrics.items() if k != "report"}
        metrics = dict(score(int8, ds.labels), fp32=fp32_metrics, int8_vs_fp32=pred.compare_agreement(fp32, int8))
    metrics["examples"] = len(ds)
    report = metrics.pop("report")
    if getattr(args, "report_png", None):
        save_report_png(report, args.report_png, title=f"{args.model} on {args.file}")
    if args.json:
        print(json.dumps(dict(metrics, report=report)))
    else:
        print(metrics_line(args.file, metrics))
        print_report(report)
    return 0


def predict_command(args, data_settings) -> int:
    """``berts predict DIR FILE`` for a multiple-choice directory: one JSON object per row."""
    if args.file == "-":
        raise UserError("multiple choice: give a file (JSONL rows with context/question and choices), not stdin")
    pred = ChoicePredictor.from_pretrained(args.model, device="cpu" if args.int8 else args.device, int8=args.int8)
    d = data_settings(args, pred.settings, labels=False)
    examples, _ = read_choices(args.file, d, labels=False)  # all read and checked before anything is written
    if args.int8:  # int8 is never reported alone: against fp32 on the first examples
        check = examples[:512]
        reference = ChoicePredictor.from_pretrained(args.model, device="cpu")
        versus = pred.compare_agreement(reference.logits(reference.dataset(check, d.max_length), args.batch_size),
                                        pred.logits(pred.dataset(check, d.max_length), args.batch_size))
        print(f"predict --int8: against fp32 on the first {len(check)} examples: "
              + "  ".join(f"{k} {v:.4f}" for k, v in versus.items()), file=sys.stderr)
    results = pred.predict(examples, args.batch_size, d.max_length, progress=progress_on(getattr(args, "quiet", False)))
    write_predictions([{"line": e.line, **r} for e, r in zip(examples, results)], args.out)
    return 0


def compare_entries(directory, eval_file, data_settings, data_args, *, int8: bool = False, device: str = "cpu"):
    """`berts compare`'s rows of a multiple-choice directory: [(predictor, dataset, precision)];
    ``data_settings(settings, data_args)``: compare's data flags over the model's settings."""
    pred = ChoicePredictor.from_pretrained(directory, device=device)
    d = data_settings(pred.settings, data_args)
    ds = pred.dataset(read_choices(eval_file, d)[0], d.max_length)
    out = [(pred, ds, "fp32")]
    if int8:
        out.append((ChoicePredictor.from_pretrained(directory, device=device, int8=int8), ds, "int8"))
    return out
