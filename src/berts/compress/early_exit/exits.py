"""FastBERT (Liu et al., 2020): a fine-tuned classifier that may stop after any layer.

A student classifier after every layer but the last (FastBERT's design, autoliuweijie/FastBERT's
``MiniClassifier``): a narrow projection H -> w with tanh, a small self-attention (UER's
multi-headed attention: w wide, 2 heads), the first position ([CLS]) pooled, w -> w with tanh,
w -> num_labels. The last layer keeps the model's own pooler + classifier (the "teacher").

* Training (``SelfDistillationTask``, ``berts finetune --early-exit``): the backbone and the
  final classifier are frozen; each student learns the final classifier's distribution by
  KL(teacher || student), FastBERT's ``KLDivLoss(batchmean)`` summed over the students. No label
  is read: unlabelled text is enough.
* Inference (``early_exit``): a row leaves at the first layer whose student is confident enough,
  by one of two rules:

  - ``entropy`` (FastBERT): normalised entropy H(p) / log(C) < ``speed`` (0: never early, the
    final classifier's predictions; 1: every row at layer 1);
  - ``patience`` (PABEE, Zhou et al. 2020): PABEE's counter, +1 when a layer's prediction equals
    the previous layer's, reset to 0 otherwise; a row leaves when it reaches ``patience`` (k
    agreements in a row, i.e. k + 1 classifiers agree).

  **Batched**: the rows that leave are dropped from the batch between layers
  (``EncoderState.select``), and the rest go on through the fast paths (unpadded, packed), so a
  batch costs the layers its rows need. The reference implementation runs one sample at a time
  (its issues #35, #40).

A saved early-exit directory is a Hugging Face directory: ``architectures`` names
``BertForSequenceClassificationWithExits`` (berts loads the students too), ``model_type`` is
still bert/albert, so ``transformers.AutoModelForSequenceClassification`` loads the backbone and
the final classifier (and lists the ``fastbert.*`` weights as unused): the logits of berts at
speed 0.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.errors import UserError
from berts.model.heads import BertForSequenceClassification, register_task_model
from berts.compress.early_exit.flags import RULES, add_exit_arguments  # noqa: F401 (torch-free, for the parsers)
from berts.model.encoder import Dropout, EncoderState, _init_module
from berts.model.flops import encoder_flops, student_flops
from berts.objectives.base import Objective, register
from berts.tasks.base import ENCODER_INPUTS, Task
from berts.metrics import compute_metrics
from berts.model.runner import run

WIDTH, HEADS = 128, 2  # FastBERT's cla_hidden_size, cla_heads_num


class ExitClassifier(nn.Module):
    """One student: [K, S, H] hidden states + [K, S] key mask -> [K, num_labels]."""

    def __init__(self, hidden_size: int, num_labels: int, width: int = WIDTH, heads: int = HEADS,
                 dropout: float = 0.1):
        super().__init__()
        if width % heads:
            raise ValueError(f"early-exit width {width} is not a multiple of its {heads} heads")
        self.heads = heads
        self.down = nn.Linear(hidden_size, width)  # output_layer_0, then tanh
        self.query, self.key, self.value = (nn.Linear(width, width) for _ in range(3))
        self.out = nn.Linear(width, width)  # the attention's final_linear
        self.dense = nn.Linear(width, width)  # output_layer_1, then tanh
        self.classifier = nn.Linear(width, num_labels)  # output_layer_2
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x``: [K, S, w] hidden states *already projected* (``down`` + tanh; see ``project``),
        ``mask``: [K, S] (1 = real token). Only the [CLS] query is computed: pooling takes the
        first position, and no other query reaches it (the same numbers as the full attention)."""
        k, s, w = x.shape
        h, d = self.heads, w // self.heads
        q = self.query(x[:, :1]).view(k, 1, h, d).transpose(1, 2)  # [K, h, 1, d]
        key = self.key(x).view(k, s, h, d).transpose(1, 2)  # [K, h, S, d]
        val = self.value(x).view(k, s, h, d).transpose(1, 2)
        scores = q @ key.transpose(-1, -2) / math.sqrt(d)  # [K, h, 1, S]
        scores = scores + (1.0 - mask[:, None, None, :].to(scores.dtype)) * -10000.0  # UER's additive mask
        probs = self.dropout(scores.softmax(-1))
        ctx = (probs @ val).transpose(1, 2).reshape(k, w)  # [K, w]: the [CLS] row
        pooled = torch.tanh(self.dense(self.out(ctx)))
        return self.classifier(pooled)  # [K, C]

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.down(x))


@register
class EarlyExits(Objective):
    """The students, as an objective: its ``hf_names`` put them under ``fastbert.`` in
    model.safetensors. Not in the task model's ``objective_names``: ``forward`` of the model is
    the final classifier alone (what transformers computes); the students run in ``early_exit``
    and ``self_distillation``."""

    name = "early_exit"
    parts = ("distill",)
    hf_names = {"": {"bert": "fastbert.", "albert": "fastbert."}}

    def __init__(self, config: BertConfig):
        super().__init__()
        spec = dict(config.early_exit or {})
        width, heads = int(spec.get("width", WIDTH)), int(spec.get("heads", HEADS))
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.students = nn.ModuleList(ExitClassifier(config.hidden_size, config.num_labels, width, heads, p)
                                      for _ in range(config.num_hidden_layers - 1))

    def counts(self, batch):
        return {"distill": int(batch["input_ids"].shape[0])}

    def logits(self, i: int, state: EncoderState) -> torch.Tensor:
        """Student i (after layer i + 1) on the rows of ``state``: [K, C]. The projection runs on
        the unpadded tokens [T, H] -> [T, w] when the state is unpadded, then is padded to [K, S, w]."""
        student = self.students[i]
        x = student.project(state.x)
        if state.unpadded is not None:
            x = state.unpadded.pad(x)
            mask = state.unpadded.real
        else:
            am = state.attention_mask
            mask = (torch.ones(x.shape[:2], device=x.device) if am is None else
                    am if am.dim() == 2 else am.any(-2))  # a full [K, S, S] mask: keys some query attends
        return student(x, mask)


@register_task_model
class BertForSequenceClassificationWithExits(BertForSequenceClassification):
    """BertForSequenceClassification + a student classifier after each layer but the last
    (``exits``). ``forward`` is the final classifier's (as transformers); ``early_exit`` runs
    the layers one by one and lets rows leave."""

    hf_architectures = {"bert": "BertForSequenceClassificationWithExits",
                        "albert": "AlbertForSequenceClassificationWithExits"}

    def __init__(self, config: BertConfig):
        super().__init__(config)
        if config.num_labels < 2 or config.problem_type == "regression":
            raise UserError("early exit is for classification (2 labels or more), not regression")
        self.exits = EarlyExits(config)
        self.exits.apply(lambda m: _init_module(m, config.initializer_range))
        self.frozen_backbone = False

    @classmethod
    def from_classifier(cls, model: BertForSequenceClassification, width: int = WIDTH, heads: int = HEADS):
        """The early-exit model of a fine-tuned classifier: its weights, new students."""
        config = model.config.replace(early_exit={"width": width, "heads": heads})
        new = cls(config)
        missing, unexpected = new.load_state_dict(model.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("exits.") for k in missing), (missing, unexpected)
        return new.to(model.device)

    def freeze_backbone(self) -> "BertForSequenceClassificationWithExits":
        """Self-distillation's setting: encoder and final classifier without gradients and in
        eval mode (dropout off) whatever ``train()`` says; the students train."""
        self.frozen_backbone = True
        self.bert.requires_grad_(False)
        self.classifier.requires_grad_(False)
        return self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen_backbone:
            self.bert.eval()
            self.classifier.eval()
        return self

    @property
    def num_layers(self) -> int:
        return self.config.num_hidden_layers

    def final_logits(self, state: EncoderState) -> torch.Tensor:
        """The model's own classifier on the pooled [CLS] of ``state``'s rows: [K, C]."""
        return self.classifier(_Pooled(self.bert.pool(state)), {}, None).fields["logits"]

    def layer_logits(self, input_ids, attention_mask=None, token_type_ids=None) -> list[torch.Tensor]:
        """Every classifier on every row (no exit): [L] x [B, C], students first, the final one last."""
        state = self.bert.embed(input_ids, attention_mask, token_type_ids)
        out = []
        for i in range(self.num_layers):
            state = self.bert.run_layer(i, state)
            out.append(self.exits.logits(i, state) if i < self.num_layers - 1 else self.final_logits(state))
        return out

    @torch.no_grad()
    def early_exit(self, input_ids, attention_mask=None, token_type_ids=None, *, rule: str = "entropy",
                   speed: float = 0.0, patience: int = 1):
        """(logits [B, C], exit layer [B] in 1..L): each row's logits at the layer it leaves at.
        See the module docstring for the rules. Rows that leave are dropped from the batch."""
        check_rule(rule, speed, patience)
        b, L = input_ids.shape[0], self.num_layers
        state = self.bert.embed(input_ids, attention_mask, token_type_ids)
        logits = layers = None
        prev = count = None  # patience: each remaining row's last prediction and its counter
        for i in range(L):
            state = self.bert.run_layer(i, state)
            last = i == L - 1
            if last:
                z = self.final_logits(state)
                leave = torch.ones(state.batch, dtype=torch.bool, device=z.device)
            elif rule == "entropy":
                if speed <= 0:  # nothing can leave: skip the students
                    continue
                z = self.exits.logits(i, state)
                leave = torch.ones_like(z[:, 0], dtype=torch.bool) if speed >= 1 else normalised_entropy(z) < speed
            else:
                z = self.exits.logits(i, state)
                pred = z.argmax(-1)
                count = torch.zeros_like(pred) if prev is None else torch.where(pred == prev, count + 1, 0)
                prev = pred
                leave = count >= patience
            if logits is None:
                logits = z.new_empty(b, z.shape[-1])
                layers = torch.zeros(b, dtype=torch.long, device=z.device)
            rows = state.batch_rows[leave]
            logits[rows] = z[leave]
            layers[rows] = i + 1
            if last or bool(leave.all()):
                break
            if bool(leave.any()):
                keep = ~leave
                state = state.select(keep)
                if prev is not None:
                    prev, count = prev[keep], count[keep]
        return logits, layers


class _Pooled:
    """What SequenceClassification.forward reads of an encoder output."""

    def __init__(self, pooled):
        self.pooler_output = pooled


def normalised_entropy(logits: torch.Tensor) -> torch.Tensor:
    """FastBERT's uncertainty: entropy of softmax(logits) / log(C), in [0, 1]. [K, C] -> [K]."""
    logp = logits.float().log_softmax(-1)
    return -(logp.exp() * logp).sum(-1) / math.log(logits.shape[-1])


def check_rule(rule: str, speed: float, patience: int) -> None:
    if rule not in RULES:
        raise UserError(f"exit rule must be one of {', '.join(RULES)}, got {rule!r}")
    if rule == "entropy" and not (0.0 <= float(speed) <= 1.0):
        raise UserError(f"--speed must be between 0 and 1 (normalised entropy), got {speed}")
    if rule == "patience" and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise UserError(f"--patience must be a whole number >= 1, got {patience!r}")


# ------------------------------------------------------------------ self-distillation
def self_distillation(model: BertForSequenceClassificationWithExits, input_ids, attention_mask=None,
                      token_type_ids=None):
    """FastBERT's self-distillation loss on one batch: sum over the students of the batch mean of
    KL(p_final || p_student) (``KLDivLoss(reduction="batchmean")``). The backbone and the final
    classifier run without gradients. Returns (loss, {"agreement": share of student predictions
    equal to the final classifier's, over students and rows})."""
    L = model.num_layers
    with torch.no_grad():
        state = model.bert.embed(input_ids, attention_mask, token_type_ids)
        states = []
        for i in range(L):
            state = model.bert.run_layer(i, state)
            states.append(state)
        teacher = model.final_logits(state).float()
    target = teacher.log_softmax(-1)
    loss, agree = 0.0, []
    for i in range(L - 1):
        z = model.exits.logits(i, states[i]).float()
        loss = loss + F.kl_div(z.log_softmax(-1), target, reduction="batchmean", log_target=True)
        agree.append((z.detach().argmax(-1) == teacher.argmax(-1)).float().mean())
    agreement = torch.stack(agree).mean() if agree else torch.ones(())
    return loss, {"agreement": agreement}


class SelfDistillationTask(Task):
    """``berts finetune --early-exit``: the students of ``model`` learn its final classifier.
    The model is the one trainable module (so checkpoints, ``final/`` and ``best/`` are whole
    early-exit directories), with the backbone and final classifier frozen inside it (no
    gradient, so no optimizer state). ``dev_dataset`` (labels optional): each student's
    agreement with the final classifier, the loss, and, with labels, accuracy at speed 0.5."""

    name = "self-distillation"
    loss_parts = ("distill",)
    metric_parts = {"agreement": "distill"}
    metric = "agreement"

    def __init__(self, model: BertForSequenceClassificationWithExits, train_dataset, dev_dataset=None,
                 eval_batch_size: int = 64):
        self.model = model.freeze_backbone()
        self.train_dataset, self.dev_dataset, self.eval_batch_size = train_dataset, dev_dataset, eval_batch_size

    def modules(self):
        return {"model": self.model}

    def counts(self, batch):
        return {"distill": int(batch["input_ids"].shape[0])}

    def loss(self, modules, batch):
        x = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if batch.get(k) is not None}
        loss, metrics = self_distillation(modules.model, **x)
        return {"distill": loss}, metrics

    @torch.no_grad()
    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None

        model, ds = self.model, self.dev_dataset

        def forward(batch):  # the students' loss, every layer's logits, and (with labels) an exit at speed 0.5
            x = {k: batch[k] for k in ENCODER_INPUTS if batch.get(k) is not None}
            loss, _ = self_distillation(model, **x)
            exited = model.early_exit(**x, speed=0.5)[0] if ds.labels is not None else None
            return loss, model.layer_logits(**x), exited  # layer_logits: [L] x [k, C]

        agree, loss_sum, correct, n = 0.0, 0.0, 0.0, 0
        for batch, (loss, per, z) in run(model, ds, forward=forward, batch_size=self.eval_batch_size,
                                         device=engine.device, autocast=engine.autocast):
            k = int(batch["input_ids"].shape[0])
            final = per[-1].argmax(-1)
            agree = agree + torch.stack([(z_l.argmax(-1) == final).float().sum() for z_l in per[:-1]])
            loss_sum += float(loss) * k
            n += k
            if z is not None:
                correct += float((z.argmax(-1) == batch["labels"].reshape(-1)).sum())
        per_layer = (agree / n).tolist()
        out = {"agreement": float(np.mean(per_layer)), "loss": loss_sum / n}
        out.update({f"agreement_l{i + 1}": v for i, v in enumerate(per_layer)})
        if ds.labels is not None:
            out["accuracy_s0.5"] = correct / n
        return out

    def describe(self) -> str:
        spec = self.model.config.early_exit or {}
        return (f"self-distillation: {self.model.num_layers - 1} students (width {spec.get('width', WIDTH)}, "
                f"{spec.get('heads', HEADS)} heads); backbone and final classifier frozen; labels not used")


# ------------------------------------------------------------------ commands and sweep
def apply_exit_arguments(clf, args) -> bool:
    """Switch early exit on for ``clf`` from the flags; False when none was given."""
    rule = args.exit or ("patience" if args.patience is not None else "entropy" if args.speed is not None else None)
    if rule is None:
        return False
    if rule == "entropy" and args.patience is not None:
        raise UserError("--patience goes with --exit patience; --exit entropy takes --speed")
    if rule == "patience" and args.speed is not None:
        raise UserError("--speed goes with --exit entropy; --exit patience takes --patience")
    if rule == "patience" and args.patience is None:
        raise UserError("--exit patience needs --patience K")
    clf.early_exit(rule, speed=0.0 if args.speed is None else args.speed,
                   patience=1 if args.patience is None else args.patience)
    return True


def exit_summary(layers: np.ndarray, num_layers: int) -> dict:
    """Average layers run and how many examples left at each layer."""
    counts = np.bincount(np.asarray(layers, dtype=np.int64), minlength=num_layers + 1)[1:]
    return {"avg_layers": float(np.mean(layers)), "num_layers": num_layers,
            "speedup_layers": num_layers / float(np.mean(layers)),
            "exit_counts": {str(i + 1): int(c) for i, c in enumerate(counts)}}


def exit_flops(config, lengths: np.ndarray, layers: np.ndarray, rule: str, speed: float) -> float:
    """FLOPs per example of early exit (berts.model.flops): the layers each example ran on its
    real tokens, the students it was tested at, and the final pooler + classifier if it got there."""
    spec = config.early_exit or {}
    width = int(spec.get("width", WIDTH))
    L = config.num_hidden_layers
    total = 0.0
    for n, k in zip(np.asarray(lengths).tolist(), np.asarray(layers).tolist()):
        total += encoder_flops(config, n, layers=k, head=(k == L))
        tested = 0 if (rule == "entropy" and speed <= 0) else min(k, L - 1)
        total += tested * student_flops(config, width, n)
    return total / max(len(lengths), 1)


def sweep(clf, dataset, speeds=(0.0, 0.1, 0.2, 0.3, 0.5, 0.8), patiences=(1, 2, 3), *, latency_examples: int = 64,
          repeats: int = 3) -> list[dict]:
    """Accuracy, average layers, FLOPs per example and measured latency (batch 1: ms per example
    over ``latency_examples``; batch 32: ms per batch over the same examples in batches of 32), for
    each speed (entropy rule) and patience (PABEE), plus the model run to the end ("full").
    Latency: each setting timed ``repeats`` times, settings alternated, medians; ``latency_examples``
    0: no timing (a choice made on accuracy and layers alone: the rows carry no latency)."""
    import time

    L = clf.model.config.num_hidden_layers
    settings = [("full", None)] + [("entropy", s) for s in speeds] + [("patience", k) for k in patiences]
    rows = []
    labels = dataset.labels
    for rule, value in settings:
        _set(clf, rule, value)
        logits = clf.logits(dataset, 64)
        layers = clf.exit_layers if clf.exit is not None else np.full(len(dataset), L)
        row = {"rule": rule, "value": value}
        if labels is not None:
            row["accuracy"] = compute_metrics("classification", logits, labels, logits.shape[1])["accuracy"]
        row["avg_layers"] = float(np.mean(layers))
        row["flops_per_example"] = exit_flops(clf.model.config, dataset.lengths, layers,
                                              "entropy" if rule == "full" else rule,
                                              0.0 if rule == "full" else (value if rule == "entropy" else 1.0))
        rows.append(row)
    # latency: the same examples, every setting in turn, `repeats` rounds, medians
    n = min(latency_examples, len(dataset))
    if n <= 0:
        clf.early_exit(None)
        return rows
    subset = _Subset(dataset, np.arange(n))
    times = {i: {1: [], 32: []} for i in range(len(settings))}
    for _ in range(repeats):
        for i, (rule, value) in enumerate(settings):
            _set(clf, rule, value)
            for bs in (1, 32):
                t0 = time.perf_counter()
                clf.logits(subset, bs)
                times[i][bs].append(time.perf_counter() - t0)
    for i, row in enumerate(rows):
        row["latency_b1_ms"] = 1000 * float(np.median(times[i][1])) / n
        row["latency_b32_ms"] = 1000 * float(np.median(times[i][32])) / math.ceil(n / 32)
    clf.early_exit(None)
    return rows


def _set(clf, rule, value):
    if rule == "full":
        clf.early_exit(None)
    elif rule == "entropy":
        clf.early_exit("entropy", speed=value)
    else:
        clf.early_exit("patience", patience=value)


class _Subset:
    """The first examples of a ClassificationDataset, for timing (lengths + collate, as Classifier reads)."""

    def __init__(self, ds, idx):
        self.ds, self.idx = ds, np.asarray(idx)
        self.lengths = ds.lengths[self.idx]
        self.labels = None if ds.labels is None else ds.labels[self.idx]

    def __len__(self):
        return len(self.idx)

    def collate(self, indices):
        return self.ds.collate(self.idx[np.asarray(indices)])


def sweep_table(rows: list[dict]) -> str:
    """The sweep as a markdown table."""
    head = "| rule | S / k | accuracy | avg layers | MFLOPs / example | batch 1 ms / example | batch 32 ms / batch |"
    out = [head, "|" + "---|" * 7]
    for r in rows:
        acc = f"{r['accuracy']:.4f}" if "accuracy" in r else "-"
        value = "-" if r["value"] is None else f"{r['value']:g}"
        b1, b32 = (f"{r[k]:.2f}" if k in r else "-" for k in ("latency_b1_ms", "latency_b32_ms"))
        out.append(f"| {r['rule']} | {value} | {acc} | {r['avg_layers']:.2f} | {r['flops_per_example'] / 1e6:.2f} | "
                   f"{b1} | {b32} |")
    return "\n".join(out)
