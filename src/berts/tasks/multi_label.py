"""Multi-label classification (``berts finetune --task multi-label``): topics, tags, moderation.

What it reads: the classification tables (``--text-column``, ``--pair-column``, ``--label-column``)
whose label cell holds several labels joined by ``--label-sep`` (default ``|``: ``grain|corn``), or,
in JSONL / parquet / a `datasets` directory, a list (``["grain", "corn"]``; ``[]``: none of them;
a string is split on the separator as in a table). The labels are those of the training set
(sorted); a dev or evaluation row with another one is a one-line error naming file and line.

Its head: berts' sequence classifier (pooled [CLS] -> dropout -> [H, L]) with ``problem_type:
multi_label_classification`` in config.json, so transformers' AutoModelForSequenceClassification
loads it and computes the same loss: binary cross-entropy with logits, the mean over every (row,
label) (objectives/classification.py).

Its decision rule: label l is on when sigmoid(logit_l) >= threshold, one threshold for every label,
or one per label (``--threshold-per-label``), each chosen on the dev set at every evaluation (the
value among 0.05, 0.10, ..., 0.95 with the best micro F1 (per label: that label's F1), the lowest on
ties) and saved in config.json as ``finetune_data.multi_label: {"thresholds": [...]}``; without a dev set
0.5. transformers does not read it (its pipeline uses 0.5): it is ours, for ``berts predict``.

Its metrics (at those thresholds): micro F1 (the default), macro F1 (the mean of per-label F1s, a
label never true nor predicted counting 0 as sklearn's zero_division=0), subset accuracy (every
label of the row right), and the BCE loss. As the thresholds are chosen on the dev set they are
scored on, dev metrics are optimistic; a test file scored once with ``berts evaluate`` is not.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

from berts.serve.output import write_predictions
from berts.data.classification import ClassificationDataset
from berts.data.tables import RECORD_FORMATS, Example, _format_of
from berts.errors import UserError, where
from berts.tasks.base import ModelTask, predict_logits
from berts.compress.transforms import quantize_int8
from berts.data.labels import LabelMap
from berts.data.tables import _text, _BadRow, read_examples, read_records
from berts.hf import load
from berts.metrics.report import metrics_line, print_report, save_report_png
from berts.metrics.report import multilabel_report
from berts.model.heads import BertForSequenceClassification
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.device import resolve_device
from berts.util.progress import progress_on

NAME = "multi-label"
CONFIG_KEY = "multi_label"  # config.finetune_data["multi_label"]: {"thresholds": [one, or one per label], "label_sep": "|"}
GRID = np.round(np.arange(0.05, 0.951, 0.05), 2)


# ----------------------------------------------------------------------------- the data
def read_multi_label(path, d, sep: str = "|", *, labels: bool = True) -> tuple[list[Example], list]:
    """(Examples whose ``label`` is a tuple of label names, or None without labels; the read report)."""
    from pathlib import Path

    fmt = _format_of(Path(path), d.format)
    if fmt not in RECORD_FORMATS:  # a table: the label cell split on sep
        examples, report = read_examples(path, text_column=d.text_column, text_pair_column=d.pair_column,
                                         label_column=d.label_column if labels else None, format=d.format,
                                         header=d.header, skip_bad_rows=False, task="classification")
        return [Example(e.text, e.text_pair, _split(e.label, sep) if labels else None, e.line, e.path)
                for e in examples], report
    records, report = read_records(path, format=d.format)
    out = []
    for line, rec in records:
        try:
            for field in (d.text_column, d.pair_column, d.label_column if labels else None):
                if field is not None and field not in rec:
                    raise _BadRow("missing field", f"no field '{field}'")
            text = _text(rec[d.text_column], f"'{d.text_column}'")
            pair = None if d.pair_column is None else _text(rec[d.pair_column], f"'{d.pair_column}'")
        except _BadRow as bad:
            raise UserError(f"{where(path, line)}: {bad.message}") from None
        label = None
        if labels:
            raw = rec[d.label_column]
            if isinstance(raw, str):
                label = _split(raw, sep)
            elif isinstance(raw, (list, tuple)) and all(isinstance(x, (str, int)) and not isinstance(x, bool)
                                                        for x in raw):
                label = tuple(dict.fromkeys(str(x).strip() for x in raw))
            else:
                raise UserError(f"{where(path, line)}: field '{d.label_column}' must be a list of labels or a "
                                f"'{sep}'-separated string, got {json.dumps(raw)[:40]}")
        out.append(Example(text, pair, label, line, str(path)))
    return out, report


def _split(cell: str, sep: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x.strip() for x in cell.split(sep) if x.strip()))


def label_matrix(examples: list[Example], names: list[str]) -> np.ndarray:
    """[N, L] float32 0/1; a label not in ``names`` is a one-line error naming file and line."""
    ids = {n: i for i, n in enumerate(names)}
    y = np.zeros((len(examples), len(names)), dtype=np.float32)
    for r, e in enumerate(examples):
        for label in e.label:
            if label not in ids:
                known = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
                raise UserError(f"{where(e.path, e.line)}: unknown label '{label}' (known: {known})")
            y[r, ids[label]] = 1
    return y


class MultiLabelDataset(ClassificationDataset):
    """ClassificationDataset's batches, with ``labels`` [B, L] float 0/1."""

    def __init__(self, examples: list[Example], tokenizer, names: list[str], max_length: int = 128):
        labelled = examples[0].label is not None
        super().__init__([Example(e.text, e.text_pair, None, e.line, e.path) for e in examples], tokenizer,
                         max_length=max_length)
        self.names = list(names)
        self.labels = label_matrix(examples, self.names) if labelled else None

    def collate(self, indices, *, epoch: int = 0, step: int = 0):
        labels, self.labels = self.labels, None  # the parent's collate would index them as class ids
        try:
            batch = super().collate(indices, epoch=epoch, step=step)
        finally:
            self.labels = labels
        if labels is not None:
            batch["labels"] = torch.from_numpy(labels[np.asarray(indices, dtype=np.int64).reshape(-1)])
        return batch


# ----------------------------------------------------------------------------- the metrics
def f1s(y: np.ndarray, p: np.ndarray) -> tuple[float, np.ndarray]:
    """(micro F1, per-label F1 [L]) of 0/1 matrices [N, L]."""
    y, p = y.astype(bool), p.astype(bool)
    tp, fp, fn = (y & p).sum(0), (~y & p).sum(0), (y & ~p).sum(0)
    denom = 2 * tp + fp + fn
    per = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    total = 2 * tp.sum() + fp.sum() + fn.sum()
    return (float(2 * tp.sum() / total) if total else 0.0), per


def choose_thresholds(probs: np.ndarray, y: np.ndarray, per_label: bool) -> np.ndarray:
    """The grid value with the best micro F1 (one for all), or each label's best F1 (per label)."""
    if not per_label:
        scores = [f1s(y, probs >= t)[0] for t in GRID]
        return np.full(y.shape[1], GRID[int(np.argmax(scores))])  # argmax: the first (lowest) best
    per = np.stack([f1s(y, probs >= t)[1] for t in GRID])  # [T, L]
    return GRID[per.argmax(0)]


def score(logits: np.ndarray, y: np.ndarray, thresholds: np.ndarray, names: list[str]) -> dict:
    """micro_f1, macro_f1, subset_accuracy, loss (and the per-label report) at ``thresholds``."""

    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    p = probs >= thresholds[None, :]
    micro, per = f1s(y, p)
    return {"micro_f1": micro, "macro_f1": float(per.mean()),
            "subset_accuracy": float((p == y.astype(bool)).all(1).mean()),
            "loss": float(F.binary_cross_entropy_with_logits(torch.from_numpy(logits).float(),
                                                             torch.from_numpy(y).float())),
            "report": multilabel_report(y, p, names)}


# ----------------------------------------------------------------------------- the task
class MultiLabelTask(ModelTask):
    name = NAME

    def __init__(self, model, train_dataset, dev_dataset=None, *, per_label: bool = False, label_sep: str = "|",
                 eval_batch_size: int = 64):
        self.model, self.train_dataset, self.dev_dataset = model, train_dataset, dev_dataset
        self.per_label, self.label_sep, self.eval_batch_size = per_label, label_sep, eval_batch_size
        self.names = train_dataset.names
        self.set_thresholds(np.full(len(self.names), 0.5))

    def set_thresholds(self, thresholds: np.ndarray) -> None:
        """Kept in the model's config: saved with it (best/, final/)."""
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        values = [float(t) for t in self.thresholds] if self.per_label else [float(self.thresholds[0])]
        self.model.config.finetune_data = {**(self.model.config.finetune_data or {}),
                                           CONFIG_KEY: {"thresholds": values, "label_sep": self.label_sep}}

    @classmethod
    def from_run(cls, run):
        d, opts = run.cfg.data, run.options
        sep = opts["label_sep"]
        train_examples, report = read_multi_label(d.train, d, sep)
        run.reports.append(report)
        names = sorted({label for e in train_examples for label in e.label})
        if len(names) < 2:
            raise UserError(f"{d.train}: multi-label needs at least 2 labels, found {names}")
        train = MultiLabelDataset(train_examples, run.tokenizer, names, run.max_length)
        dev = None
        if d.dev:
            dev_examples, dev_report = read_multi_label(d.dev, d, sep)
            run.reports.append(dev_report)
            dev = MultiLabelDataset(dev_examples, run.tokenizer, names, run.max_length)  # unknown label: an error
        model = run.model(_model_class(), num_labels=len(names), problem_type="multi_label_classification",
                          id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
        return cls(model, train, dev, per_label=opts["threshold_per_label"], label_sep=sep,
                   eval_batch_size=run.cfg.train.eval_batch_size)

    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None
        logits = predict_logits(self.model, self.dev_dataset, self.eval_batch_size, engine.device, engine.autocast)
        probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
        self.set_thresholds(choose_thresholds(probs, self.dev_dataset.labels, self.per_label))
        metrics = score(logits, self.dev_dataset.labels, self.thresholds, self.names)
        metrics.pop("report")
        if not self.per_label:
            metrics["threshold"] = float(self.thresholds[0])
        return metrics

    def describe(self) -> str:
        return (f"{len(self.names)} labels: {', '.join(self.names[:10])}; thresholds "
                f"{'per label' if self.per_label else 'one for all'}, chosen on dev")


def _model_class():

    return BertForSequenceClassification


# ----------------------------------------------------------------------------- serving
class MultiLabelPredictor:
    """A fine-tuned multi-label directory, ready to serve: the labels at or above their thresholds."""

    exit = None  # no early exit (berts compare asks)

    def __init__(self, model, tokenizer, settings: dict):

        self.model, self.tokenizer, self.settings = model, tokenizer, settings
        self.names = LabelMap.from_config(model.config).names
        saved = (model.config.finetune_data or {}).get(CONFIG_KEY) or {}
        t = saved.get("thresholds") or [0.5]
        self.thresholds = np.asarray(t if len(t) == len(self.names) else t[:1] * len(self.names), dtype=np.float64)
        self.label_sep = saved.get("label_sep", "|")

    @classmethod
    def from_pretrained(cls, directory, device: str = "auto", int8: bool = False) -> "MultiLabelPredictor":

        model = load(directory)
        if getattr(model.config, "problem_type", None) != "multi_label_classification":
            raise UserError(f"{directory}: not a multi-label classifier (config.json's problem_type is "
                            f"{getattr(model.config, 'problem_type', None)!r})")
        model.to(resolve_device(device)).eval()
        if int8:  # torch's dynamic int8 Linears (CPU), as berts.Classifier's

            if model.device.type != "cpu":
                raise UserError(f"int8 runs on the CPU (torch's dynamic int8 kernels); got device {model.device}")
            model = quantize_int8(model, int8)
        return cls(model, load_tokenizer(directory), dict(model.config.finetune_data or {}))

    def decisions(self, logits: np.ndarray) -> np.ndarray:
        """[N, L] bool: each label on or off at its threshold."""
        return 1 / (1 + np.exp(-logits.astype(np.float64))) >= self.thresholds[None, :]

    def compare_score(self, logits, ds) -> tuple[str, float]:
        return "micro_f1", f1s(ds.labels, self.decisions(logits))[0]

    def compare_agreement(self, fp32, other) -> dict:
        """int8 against fp32: the share of equal (row, label) decisions, the largest probability difference."""
        pa, pb = (1 / (1 + np.exp(-x.astype(np.float64))) for x in (fp32, other))
        return {"agreement": float((self.decisions(fp32) == self.decisions(other)).mean()),
                "max_prob_diff": float(np.abs(pa - pb).max())}

    def dataset(self, examples, max_length: int | None = None) -> MultiLabelDataset:
        return MultiLabelDataset(examples, self.tokenizer, self.names,
                                 max_length or self.settings.get("max_length") or 128)

    def logits(self, dataset, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """``progress``: a bar on stderr, one tick per batch (off by default in the API; the commands
        follow berts.util.progress's rule: a terminal, not --quiet)."""
        return predict_logits(self.model, dataset, batch_size, progress="predict" if progress else None)

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64,
                progress: bool = False) -> list[dict]:
        """``decode`` of the texts (and pairs)::

            MultiLabelPredictor.from_pretrained("runs/topics/best").predict(["wheat and corn prices rose"])
            # [{"labels": ["grain", "corn"], "probabilities": {"corn": 0.81, "grain": 0.97}}]
        """
        examples = [Example(t, None if pairs is None else pairs[i], None, i + 1, "<text>") for i, t in enumerate(texts)]
        return self.decode(self.logits(self.dataset(examples), batch_size, progress))

    def decode(self, logits: np.ndarray) -> list[dict]:
        """Per row: ``labels`` (on, by probability) and every label's ``probabilities``."""
        probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
        out = []
        for p in probs:
            on = sorted((i for i in range(len(p)) if p[i] >= self.thresholds[i]), key=lambda i: -p[i])
            out.append({"labels": [self.names[i] for i in on],
                        "probabilities": {n: round(float(x), 6) for n, x in zip(self.names, p)}})
        return out


def evaluate_command(args, data_settings) -> int:
    """``berts evaluate DIR FILE`` for a multi-label directory: the metrics at the saved thresholds."""

    pred = MultiLabelPredictor.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    d = data_settings(args, pred.settings, labels=True)
    examples, _ = read_multi_label(args.file, d, pred.label_sep)
    ds = pred.dataset(examples, d.max_length)  # an unknown label: an error naming file and line
    bar = progress_on(getattr(args, "quiet", False))
    fp32 = pred.logits(ds, args.batch_size, bar)
    metrics = score(fp32, ds.labels, pred.thresholds, pred.names)
    if args.int8:  # reported against fp32, never alone

        quantize_int8(pred.model, args.int8)
        int8 = pred.logits(ds, args.batch_size, bar)
        fp32_metrics = {k: v for k, v in metrics.items() if k != "report"}
        metrics = dict(score(int8, ds.labels, pred.thresholds, pred.names), fp32=fp32_metrics,
                       int8_vs_fp32=pred.compare_agreement(fp32, int8))
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
    """``berts predict DIR FILE`` for a multi-label directory: one JSON object per row."""
    if args.file == "-":
        raise UserError("multi-label: give a file, not stdin")
    pred = MultiLabelPredictor.from_pretrained(args.model, device="cpu" if args.int8 else args.device, int8=args.int8)
    d = data_settings(args, pred.settings, labels=False)
    examples, _ = read_multi_label(args.file, d, pred.label_sep, labels=False)
    if args.int8:  # int8 is never reported alone: against fp32 on the first examples
        check = examples[:512]
        reference = MultiLabelPredictor.from_pretrained(args.model, device="cpu")
        versus = pred.compare_agreement(reference.logits(reference.dataset(check, d.max_length), args.batch_size),
                                        pred.logits(pred.dataset(check, d.max_length), args.batch_size))
        print(f"predict --int8: against fp32 on the first {len(check)} examples: "
              + "  ".join(f"{k} {v:.4f}" for k, v in versus.items()), file=sys.stderr)
    rows = pred.decode(pred.logits(pred.dataset(examples, d.max_length), args.batch_size,
                                   progress_on(getattr(args, "quiet", False))))
    out = []
    for e, r in zip(examples, rows):
        row = {"line": e.line, "text": e.text}
        if e.text_pair is not None:
            row["pair"] = e.text_pair
        out.append({**row, **r})
    write_predictions(out, args.out)
    return 0


def compare_entries(directory, eval_file, data_settings, data_args, *, int8: bool = False, device: str = "cpu"):
    """`berts compare`'s rows of a multi-label directory: [(predictor, dataset, precision)];
    ``data_settings(settings, data_args)``: compare's data flags over the model's settings."""
    pred = MultiLabelPredictor.from_pretrained(directory, device=device)
    d = data_settings(pred.settings, data_args)
    ds = pred.dataset(read_multi_label(eval_file, d, pred.label_sep)[0], d.max_length)
    out = [(pred, ds, "fp32")]
    if int8:
        out.append((MultiLabelPredictor.from_pretrained(directory, device=device, int8=int8), ds, "int8"))
    return out
