"""Extractive question answering (``berts finetune --task qa``): SQuAD v1.1 / v2.0 and CMRC-style
Chinese, one file: what it reads, its head, its loss, its metrics and its predict output.

* Reads SQuAD JSON or JSONL ``question`` / ``context`` / ``answers`` (berts.data.qa); long contexts
  become windows of ``max_length`` tokens overlapping by ``doc_stride`` (``qa_features``).
* Head: transformers' BertForQuestionAnswering -- one linear [H, 2] on every token's last hidden
  state -> ``start_logits`` / ``end_logits`` [B, S] (HF name ``qa_outputs``, no dropout, no pooler);
  with ``token_head: transform``, ModernBertForQuestionAnswering's: dense, act, norm, dropout first.
  Loss: the mean of the start and end cross-entropies, positions clamped to [0, S] and S ignored,
  exactly as transformers (a window that misses the answer points at [CLS], position 0).
* Metrics: SQuAD v1.1 EM/F1, v2.0 (HasAns/NoAns, the null threshold chosen on dev: the one of
  ``best_f1``, saved with the model), or CMRC 2018's character EM/F1 for Chinese (``lang``, or
  auto: Chinese when most dev contexts hold CJK characters).
* Predict: :func:`answer` -> answer text, character offsets into the context, score (the sum of
  the two logits), probability over the n-best, for any (question, context) pairs.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from berts.data.qa import QAExample, postprocess, qa_features, read_qa
from berts.model.config import BertConfig
from berts.model.encoder import BertModel, Dropout, HeadTransform
from berts.model.heads import BertTaskModel, ModelOutput, register_task_model
from berts.model.padding import pad_width
from berts.objectives.base import Objective, Result
from berts.tasks.base import ModelTask
from berts.data.tables import check_max_length
from berts.errors import UserError
from berts.metrics import qa as m
from berts.model.runner import run

QA_KEY = "qa"  # config.finetune_data["qa"]: the settings predict needs (doc stride, lengths, version 2, threshold, lang)


# --------------------------------------------------------------------------------------------- the head
class QuestionAnswering(Objective, nn.Linear):
    """Every token's last hidden state -> (start, end) logits; transformers' ``qa_outputs``
    (``token_head: transform``: read through dense, act, norm and dropout first, as ModernBERT)."""

    name = "question_answering"
    parts = ("task",)
    metric_parts = {"train_acc": "task"}
    batch_keys = ("start_positions", "end_positions")
    hf_names = {"": {"bert": "qa_outputs.", "albert": "qa_outputs."}}

    def __init__(self, config: BertConfig):
        nn.Linear.__init__(self, config.hidden_size, 2)
        # token_head transform: ModernBERT's head (dense, act, norm) and dropout on every token first
        self.transform = HeadTransform(config) if config.token_head == "transform" else None
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(p) if self.transform is not None else None

    def read(self, hidden: torch.Tensor) -> torch.Tensor:
        """Last hidden states [B, S, H] -> logits [B, S, 2] (start, end)."""
        if self.transform is not None:
            hidden = self.dropout(self.transform(hidden))
        return F.linear(hidden, self.weight, self.bias)

    def rows(self, batch):
        return None  # every token

    def counts(self, batch):
        return {"task": int(batch["input_ids"].shape[0])} if batch.get("start_positions") is not None else {}

    def forward(self, enc, batch, picked):
        logits = self.read(enc.last_hidden_state)  # [B, S, 2]
        start, end = logits[..., 0], logits[..., 1]  # [B, S] each
        out = Result(fields={"logits": logits})
        s, e = batch.get("start_positions"), batch.get("end_positions")
        if s is not None and e is not None:
            # transformers: a position past the sequence (a window that cut the answer, in some
            # preprocessing) is clamped to S and ignored
            ignored = start.shape[1]
            s, e = s.reshape(-1).clamp(0, ignored), e.reshape(-1).clamp(0, ignored)
            out.losses["task"] = (F.cross_entropy(start.float(), s, ignore_index=ignored)
                                  + F.cross_entropy(end.float(), e, ignore_index=ignored)) / 2
            out.metrics["train_acc"] = ((start.detach().argmax(-1) == s) & (end.detach().argmax(-1) == e)).float().mean()
        return out


@dataclass
class QAOutput(ModelOutput):
    start_logits: torch.Tensor | None = None  # [B, S]
    end_logits: torch.Tensor | None = None  # [B, S]


@register_task_model
class BertForQuestionAnswering(BertTaskModel):
    """Encoder (no pooler, as transformers) + ``qa_outputs``; outputs ``start_logits`` / ``end_logits``."""

    hf_architectures = {"bert": "BertForQuestionAnswering", "albert": "AlbertForQuestionAnswering"}
    objective_names = ("qa_outputs",)
    export_outputs = ("start_logits", "end_logits")  # ONNX outputs (serve/export.py)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.qa_outputs = QuestionAnswering(config)
        self.init_weights()

    def export_head(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last hidden states [B, S, H] -> (start_logits, end_logits) [B, S]: the graph's head."""
        logits = self.qa_outputs.read(hidden)
        return logits[..., 0], logits[..., 1]

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                start_positions=None, end_positions=None, output_hidden_states=False, output_attentions=False,
                output_attention_scores=False) -> QAOutput:
        out = self.run(input_ids, attention_mask, token_type_ids, position_ids,
                       dict(start_positions=start_positions, end_positions=end_positions),
                       output_hidden_states, output_attentions, output_attention_scores)
        # the head gives [B, S, 2] as ``logits`` (ModelOutput's field); transformers' two fields instead
        fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(ModelOutput)}
        fields["logits"] = None
        return QAOutput(**fields, start_logits=out.logits[..., 0], end_logits=out.logits[..., 1])


# --------------------------------------------------------------------------------------------- data
class QADataset:
    """The windows of a list of QAExamples; ``ds[(epoch, step, indices)]`` is a padded batch."""

    def __init__(self, examples: Sequence[QAExample], tokenizer, *, max_length: int = 384, doc_stride: int = 128,
                 max_question_tokens: int = 64, pad_to_multiple_of: int = 8):
        self.examples = list(examples)
        self.features = qa_features(tokenizer, self.examples, max_length=max_length, doc_stride=doc_stride,
                                    max_question_tokens=max_question_tokens)
        self.max_length, self.multiple = max_length, pad_to_multiple_of
        self.pad_id = int(getattr(tokenizer, "pad_id", 0))
        self.lengths = np.array([len(f["input_ids"]) for f in self.features], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, item):
        epoch, step, indices = item
        return self.collate(indices, epoch=epoch, step=step)

    def collate(self, indices, *, epoch: int = 0, step: int = 0) -> dict:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        width = pad_width(int(self.lengths[idx].max()), self.multiple, cap=self.max_length)  # [B, W]
        arrays = {k: np.zeros((len(idx), width), dtype=np.int64) for k in ("input_ids", "token_type_ids", "attention_mask")}
        arrays["input_ids"].fill(self.pad_id)
        for row, i in enumerate(idx):
            f = self.features[i]
            n = len(f["input_ids"])
            for k in arrays:
                arrays[k][row, :n] = f[k]
        batch = {k: torch.from_numpy(v) for k, v in arrays.items()}
        for k in ("start_positions", "end_positions"):
            batch[k] = torch.tensor([self.features[i][k] for i in idx], dtype=torch.long)
        batch.update(index=torch.from_numpy(idx.copy()), epoch=int(epoch), step=int(step))
        return batch


def window_logits(model, dataset: QADataset, *, batch_size: int = 64, device=None, autocast=None,
                  progress: str | None = None):
    """(start, end): one float32 array per window, its own length (berts.model.runner's loop;
    ``progress``: a bar's label, or None)."""

    starts: list = [None] * len(dataset)
    ends: list = [None] * len(dataset)
    inputs = ("input_ids", "token_type_ids", "attention_mask")
    for batch, out in run(model, dataset, batch_size=batch_size, device=device, autocast=autocast, inference=True,
                          forward=lambda b: model(**{k: b[k] for k in inputs}), progress=progress):
        s, e = out.start_logits.float().cpu().numpy(), out.end_logits.float().cpu().numpy()
        for row, i in enumerate(batch["index"].tolist()):
            n = int(dataset.lengths[i])
            starts[i], ends[i] = s[row, :n], e[row, :n]
    return starts, ends


# --------------------------------------------------------------------------------------------- metrics
_CJK = re.compile(r"[\u4e00-\u9fff]")


def detect_lang(examples: Sequence[QAExample]) -> str:
    """"zh" when most contexts hold a CJK character (CMRC's metric), else "en" (SQuAD's)."""
    cjk = sum(bool(_CJK.search(e.context)) for e in examples)
    return "zh" if examples and cjk * 2 > len(examples) else "en"


def choose_threshold(spans: dict, diffs: dict, answers: dict) -> float:
    """The null threshold with the best F1: evaluate-v2.0.py's find_best_thresh on the null score
    diffs (answer "" when the diff is above the threshold), except that its start, answering
    nothing, is threshold -inf here (diffs are not probabilities in [0, 1]); stored as -1e9."""

    def f1_of(pred, golds):
        return max(m.f1(pred, g) for g in m._golds(golds))

    total = best = sum(f1_of("", answers[q]) for q in spans)  # every question answered ""
    threshold = -1e9
    for q in sorted(spans, key=lambda k: diffs[k]):
        total += f1_of(spans[q], answers[q]) - f1_of("", answers[q])
        if total > best:
            best, threshold = total, diffs[q]
    return float(threshold)


def score(examples: Sequence[QAExample], results: Sequence[dict], *, lang: str = "en", version_2: bool = False,
          null_threshold: float | None = None) -> dict:
    """EM / F1 (percent) of postprocessed ``results`` (run with version_2 and no threshold, so each
    holds its best span and ``null_score_diff``). v2: answer "" where the diff is above
    ``null_threshold``; None chooses it (the ``best_f1`` threshold of evaluate-v2.0.py) and reports
    it as ``null_threshold``. Chinese (``lang="zh"``): CMRC 2018's EM / F1 on the same answers."""

    answers = {e.id: [a for a, _ in e.answers] for e in examples}
    out: dict = {}
    if version_2:
        diffs = {r["id"]: float(r.get("null_score_diff", float("-inf"))) for r in results}
        spans = {r["id"]: r["text"] for r in results}
        if null_threshold is None:
            null_threshold = choose_threshold(spans, diffs, answers)
        preds = {q: ("" if diffs[q] > null_threshold else t) for q, t in spans.items()}
        v2 = m.squad_v2_scores(preds, answers, na_probs=diffs)
        out.update(exact_match=v2["exact"], f1=v2["f1"], total=v2["total"])
        for k in ("HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_exact", "best_f1", "best_f1_thresh"):
            if k in v2:
                out[k] = v2[k]
        out["null_threshold"] = float(null_threshold)
    else:
        preds = {r["id"]: r["text"] for r in results}
        out.update(m.squad_scores(preds, answers))
    if lang == "zh":  # CMRC's character EM/F1 on the same answers; "" for a no-answer question scores 1
        em = f = 0.0
        for q, golds in answers.items():
            p = preds.get(q, "")
            if not golds:
                em += float(p == "")
                f += float(p == "")
            else:
                em += m.cmrc_em(p, golds)
                f += m.cmrc_f1(p, golds)
        n = max(len(answers), 1)
        out.update(exact_match=100.0 * em / n, f1=100.0 * f / n)
    return out


# --------------------------------------------------------------------------------------------- predict
def settings_of(model) -> dict:
    """The QA settings saved with a model (defaults for a directory transformers wrote)."""
    s = {"doc_stride": 128, "max_answer_length": 30, "n_best": 20, "version_2": False, "null_threshold": 0.0,
         "lang": "auto", "max_question_tokens": 64, "max_length": 384}
    s.update((model.config.finetune_data or {}).get(QA_KEY) or {})
    s["max_length"] = min(int(s["max_length"]), int(model.config.max_position_embeddings))
    return s


def answer(model, tokenizer, examples: Sequence[QAExample], *, batch_size: int = 32, device=None,
           settings: dict | None = None, progress: str | None = None, **changes) -> list[dict]:
    """One answer per example: ``{"id", "text", "start", "end", "score", "probability"}`` (+
    ``null_score_diff`` for v2; text "" and start = end = -1 when no answer wins). ``progress``: a
    bar's label (one tick per batch of windows), or None."""
    s = {**settings_of(model), **(settings or {}), **changes}
    ds = QADataset(examples, tokenizer, max_length=s["max_length"], doc_stride=s["doc_stride"],
                   max_question_tokens=s["max_question_tokens"])
    starts, ends = window_logits(model, ds, batch_size=batch_size, device=device, progress=progress)
    return postprocess(ds.examples, ds.features, starts, ends, n_best=s["n_best"],
                       max_answer_length=s["max_answer_length"], version_2=bool(s["version_2"]),
                       null_threshold=float(s["null_threshold"]))


# --------------------------------------------------------------------------------------------- the task
class QATask(ModelTask):
    """Fine-tuning for extractive QA on QADataset windows; evaluation: EM / F1 on dev's questions."""

    name = "qa"

    def __init__(self, model, train_dataset, dev_dataset=None, *, eval_batch_size: int = 64,
                 n_best: int = 20, max_answer_length: int = 30, version_2: bool = False,
                 null_threshold: float | None = None, lang: str = "en"):
        self.model, self.train_dataset, self.dev_dataset = model, train_dataset, dev_dataset
        self.eval_batch_size = eval_batch_size
        self.n_best, self.max_answer_length = n_best, max_answer_length
        self.version_2, self.null_threshold, self.lang = version_2, null_threshold, lang

    @classmethod
    def from_run(cls, run):

        o = run.options
        d = run.cfg.data
        train = read_qa(d.train)
        dev = read_qa(d.dev) if d.dev else None
        if not train:
            raise UserError(f"{d.train}: no questions")
        version_2 = o["version_2"]
        if version_2 == "auto":  # unanswerable questions in the data: SQuAD v2.0
            version_2 = any(e.is_impossible for e in train + (dev or []))
        lang = o["lang"] if o["lang"] != "auto" else detect_lang(dev or train)
        if o["doc_stride"] >= run.max_length // 2:  # the data reader would say "context room"; name the flags
            raise UserError(f"--doc-stride {o['doc_stride']} (task.doc_stride) must be well below --max-length "
                            f"{run.max_length} (data.max_length): the question and the stride share a window")
        kw = dict(max_length=run.max_length, doc_stride=o["doc_stride"], max_question_tokens=o["max_question_tokens"])
        model = run.model(BertForQuestionAnswering, num_labels=2)
        model.config.finetune_data = {**(model.config.finetune_data or {}), QA_KEY: {
            "doc_stride": o["doc_stride"], "max_answer_length": o["max_answer_length"], "n_best": o["n_best"],
            "version_2": bool(version_2), "null_threshold": float(o["null_threshold"] or 0.0), "lang": lang,
            "max_question_tokens": o["max_question_tokens"], "max_length": run.max_length}}
        return cls(model, QADataset(train, run.tokenizer, **kw),
                   QADataset(dev, run.tokenizer, **kw) if dev else None,
                   eval_batch_size=run.cfg.train.eval_batch_size, n_best=o["n_best"],
                   max_answer_length=o["max_answer_length"], version_2=bool(version_2),
                   null_threshold=o["null_threshold"], lang=lang)

    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None
        ds = self.dev_dataset
        starts, ends = window_logits(self.model, ds, batch_size=self.eval_batch_size, device=engine.device,
                                     autocast=engine.autocast)
        results = postprocess(ds.examples, ds.features, starts, ends, n_best=self.n_best,
                              max_answer_length=self.max_answer_length, version_2=self.version_2,
                              null_threshold=float("inf"))
        metrics = score(ds.examples, results, lang=self.lang, version_2=self.version_2,
                        null_threshold=self.null_threshold)
        if self.version_2:  # the threshold chosen on dev goes with the weights (best/ saves it)
            self.model.config.finetune_data[QA_KEY]["null_threshold"] = metrics["null_threshold"]
        return metrics

    def describe(self) -> str:
        v = "SQuAD v2.0 (null answers)" if self.version_2 else "SQuAD v1.1"
        return f"{v}; metric language {self.lang}; n-best {self.n_best}; max answer {self.max_answer_length} tokens"


def distill_data(cfg, teacher, tokenizer):
    """(train, dev, evaluator) of ``berts distill --method qa-logits``: the QA files of data.train /
    data.dev in windows made with the teacher's settings; the evaluator scores the student on dev."""

    s = settings_of(teacher)
    d = cfg.data
    max_length = check_max_length(d.max_length or s["max_length"], teacher.config.max_position_embeddings)
    kw = dict(max_length=max_length, doc_stride=s["doc_stride"], max_question_tokens=s["max_question_tokens"])
    train = QADataset(read_qa(d.train), tokenizer, **kw)
    dev = QADataset(read_qa(d.dev), tokenizer, **kw) if d.dev else None
    evaluator = None
    if dev is not None:
        lang = s["lang"] if s["lang"] != "auto" else detect_lang(dev.examples)
        evaluator = QATask(teacher, None, dev, eval_batch_size=cfg.train.eval_batch_size, n_best=s["n_best"],
                           max_answer_length=s["max_answer_length"], version_2=bool(s["version_2"]), lang=lang)
    return train, dev, evaluator
