"""Sentence embeddings (``berts finetune --task sentence-embedding``): a BERT encoder + Pooling
trained with a contrastive or a scored-pair loss, saved as a sentence-transformers directory.

What it reads (data.train, a TSV/CSV/JSONL table; data's column settings), by ``task.loss``:

* ``mnrl`` (multiple-negatives ranking, the default): --text-column (anchor) and --pair-column
  (its positive), optionally ``task.hard_negative_column`` (one hard negative per row). Every
  other row's positive (and hard negative) is a negative; under DDP the candidates of every rank
  join each rank's softmax (berts.embed.losses.gather_with_grad): 2 processes = 1 process with
  the doubled batch (tests/test_embed_task.py).
* ``simcse`` (unsupervised SimCSE): --text-column only; each text twice through the encoder in
  one forward, dropout as the noise between the two views.
* ``cosent`` / ``cosine``: --text-column, --pair-column and --label-column (a score per pair):
  CoSENT's ranking loss, or the MSE of the cosine against the score.

``task.temperature`` (0.05) is the contrastive losses' temperature (scale = 1 / temperature = 20,
sentence-transformers' default) and CoSENT's.

The batch: every view of a row in one padded tensor, view-major ([V * B, S]: anchors, then
positives, then hard negatives), so the encoder runs ONE forward per step (DDP counts one forward
per backward, and one forward is faster than V).

Evaluation (data.dev), the metrics train.metric chooses from:

* a table with --label-column: STS, ``spearman`` and ``pearson`` of the pairs' cosines against the
  scores;
* a table without one (text + pair): in-table retrieval, each text retrieving its own pair among
  all the dev pairs: ``ndcg@10``, ``recall@1``, ``recall@10``, ``mrr@10``, ``map``;
* a BEIR folder (corpus.jsonl, queries.jsonl, qrels/dev.tsv or qrels/test.tsv): the same retrieval
  metrics over its corpus.

train.metric left out: spearman for STS, ndcg@10 for retrieval.

What is saved: the encoder (a Hugging Face BertModel directory, no pooler: it is unused) plus
the sentence-transformers files (modules.json, 1_Pooling, sentence_bert_config.json,
2_Normalize with task.normalize) in final/, best/ and every checkpoint:
``SentenceTransformer(OUT/best)``, ``berts.Encoder.from_pretrained(OUT/best)`` and `berts embed`
read it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from berts.embed.encoder import Encoder
from berts.embed.losses import CoSENTLoss, CosineSimilarityLoss, MultipleNegativesRankingLoss, SimCSELoss
from berts.embed.pooling import Pooling, pooling_modes
from berts.errors import UserError
from berts.model.padding import pad_width
from berts.tasks.base import Task
from berts.data.tables import _format_of
from berts.data.tables import read_examples
from berts.embed.metrics import evaluate_retrieval
from berts.embed.metrics import read_beir
from berts.embed.metrics import sts_scores
from berts.embed.st_format import is_st_dir, read_st_dir
from berts.embed.st_format import st_files
from berts.model.encoder import BertModel
from berts.util.fileio import open_binary

LOSSES = ("mnrl", "simcse", "cosent", "cosine")
STS_METRICS = ("spearman", "pearson")
RETRIEVAL_METRICS = ("ndcg@10", "recall@1", "recall@10", "mrr@10", "map")
METRICS = (*STS_METRICS, *RETRIEVAL_METRICS)


def has_column(path, column, fmt: str = "auto") -> bool:
    """Whether a table's first row (its header, or a JSONL record) has ``column`` (a name or a
    0-based index): a dev table with the label column is STS, without it retrieval."""
    import csv
    import json

    path = Path(path)
    kind = _format_of(path, fmt)
    with open_binary(path) as f:
        first = next((line.decode("utf-8", "replace") for line in f if line.strip()), "")
    if kind == "jsonl":
        try:
            return str(column) in json.loads(first)
        except (json.JSONDecodeError, TypeError):
            return False
    fields = first.rstrip("\r\n").split("\t") if kind == "tsv" else next(csv.reader([first]), [])
    return int(column) < len(fields) if str(column).isdigit() else str(column) in fields


class SentenceDataset:
    """Rows of V texts (views) and optional scores; ``ds[(epoch, step, indices)]`` is one padded
    batch: input_ids / attention_mask [V * B, W] view-major, ``scores`` [B] when scored."""

    def __init__(self, views: list[list[str]], tokenizer, max_length: int, scores=None, pad_to_multiple_of: int = 8):
        self.views = len(views)
        self.pad_id = int(tokenizer.pad_id)
        self.max_length = int(max_length)
        self.multiple = pad_to_multiple_of
        self.ids = [tokenizer(texts, max_length=max_length, truncation=True)["input_ids"] for texts in views]
        self.lengths = np.array([max(len(v[i]) for v in self.ids) for i in range(len(self.ids[0]))], dtype=np.int64)
        self.scores = None if scores is None else np.asarray(scores, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, item):
        epoch, step, indices = item
        idx = [int(i) for i in np.asarray(indices).reshape(-1)]
        rows = [self.ids[v][i] for v in range(self.views) for i in idx]  # view-major
        width = min(pad_width(max(len(r) for r in rows), self.multiple), self.max_length)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, r in enumerate(rows):
            ids[k, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[k, :len(r)] = 1
        batch = {"input_ids": ids, "attention_mask": mask, "epoch": epoch, "step": step,
                 "index": torch.tensor(idx, dtype=torch.long)}
        if self.scores is not None:
            batch["scores"] = torch.from_numpy(self.scores[idx])
        return batch


class SentenceEmbeddingTask(Task):
    name = "sentence-embedding"

    def __init__(self, model, tokenizer, train_dataset, *, loss: str = "mnrl", temperature: float = 0.05,
                 pooling="mean", normalize: bool = False, max_length: int = 128, dev=None,
                 eval_batch_size: int = 64, chosen_metric: str | None = None):
        if loss not in LOSSES:
            raise UserError(f"task.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if not temperature > 0:
            raise UserError(f"task.temperature must be > 0, got {temperature}")
        self.model = model
        self.train_dataset = train_dataset
        self.loss_name = loss
        self.temperature = float(temperature)
        self.encoder = Encoder(model, tokenizer, Pooling(model.config.hidden_size, pooling, normalize), max_length)
        scale = 1.0 / self.temperature
        self.criterion = {"mnrl": MultipleNegativesRankingLoss(scale, gather=True),
                          "simcse": SimCSELoss(scale, gather=True), "cosent": CoSENTLoss(scale),
                          "cosine": CosineSimilarityLoss()}[loss]
        self.dev = dev  # ("sts", (texts, pairs, scores)) | ("retrieval", (corpus, queries, qrels)) | None
        self.eval_batch_size = eval_batch_size
        self._chosen = chosen_metric
        self._metric = None
        self.loss_parts = (loss,)
        self.metric_parts = {}

    # train.metric: the user's choice, else the dev set's kind decides (plugin_run sets the
    # registry's first metric when none is chosen; STS and retrieval dev sets have different ones)
    @property
    def metric(self):
        return self._metric

    @metric.setter
    def metric(self, value):
        if value is None or self.dev is None:
            self._metric = None
            return
        kind = self.dev[0]
        own = STS_METRICS if kind == "sts" else RETRIEVAL_METRICS
        if self._chosen is None:
            value = own[0]
        elif value not in own:
            raise UserError(f"train.metric {value} is not measured on a {kind} dev set (choose from {', '.join(own)})")
        self._metric = value

    # ------------------------------------------------------------------ training
    def modules(self):
        return {"model": self.model}

    def counts(self, batch):
        return {self.loss_name: int(batch["input_ids"].shape[0]) // self.train_dataset.views}

    def embed(self, input_ids, attention_mask):
        """[N, S] -> [N, D] (the encoder + Pooling, no normalisation: the losses use cosines)."""
        return self.encoder(input_ids, attention_mask, normalize=False)

    def loss(self, modules, batch):
        ids, mask = batch["input_ids"], batch["attention_mask"]
        views = self.train_dataset.views
        b = ids.shape[0] // views
        if self.loss_name == "simcse":  # one view, doubled inside (two dropout masks)
            value = self.criterion(self.embed, ids, mask)
        else:
            emb = self.embed(ids, mask)  # [V * B, D]
            parts = [emb[v * b:(v + 1) * b] for v in range(views)]
            if self.loss_name == "mnrl":
                value = self.criterion(parts[0], parts[1], parts[2] if views > 2 else None)
            else:
                value = self.criterion(parts[0], parts[1], batch["scores"])
        return {self.loss_name: value}, {}

    # ------------------------------------------------------------------ evaluation
    def encode(self, texts, engine=None):
        return self.encoder.encode(texts, batch_size=self.eval_batch_size, normalize=True)

    def evaluate(self, engine):
        if self.dev is None:
            return None
        kind, data = self.dev
        if kind == "sts":

            texts, pairs, scores = data
            out = sts_scores(self.encode(texts), self.encode(pairs), scores)
            return {k: float(out[k]) for k in STS_METRICS}

        corpus, queries, qrels = data
        out = evaluate_retrieval(self.encode, corpus, queries, qrels, k=100, ks=(1, 10, 100))
        return {k: float(out[k]) for k in RETRIEVAL_METRICS}

    def extra_files(self):

        p = self.encoder.pooling
        return st_files(self.model.config.hidden_size, p.modes, p.normalize, self.encoder.max_seq_length)

    def describe(self) -> str:
        dev = f"; dev: {self.dev[0]}" if self.dev else ""
        return (f"loss {self.loss_name} (temperature {self.temperature:g}), pooling {'+'.join(self.encoder.pooling.modes)}"
                f"{', normalized' if self.encoder.pooling.normalize else ''}, {self.train_dataset.views} view(s){dev}")

    # ------------------------------------------------------------------ from the run
    @classmethod
    def from_run(cls, run) -> SentenceEmbeddingTask:

        cfg, d, o = run.cfg, run.cfg.data, run.options
        loss = o["loss"]
        if loss not in LOSSES:
            raise UserError(f"task.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        scored = loss in ("cosent", "cosine")
        if loss != "simcse" and d.pair_column is None:
            raise UserError(f"task.loss {loss} trains on pairs: give --pair-column (data.pair_column)")
        if scored and d.label_column is None:
            raise UserError(f"task.loss {loss} trains on scored pairs: give --label-column (data.label_column)")
        hard = o.get("hard_negative_column")
        if hard is not None and loss != "mnrl":
            raise UserError("task.hard_negative_column is for task.loss mnrl")

        def read(path, pair, label, label_kind="regression"):
            examples, report = read_examples(path, text_column=d.text_column, text_pair_column=pair,
                                             label_column=label, format=d.format, header=d.header,
                                             skip_bad_rows=d.skip_bad_rows,
                                             task=label_kind if label is not None else "classification")
            run.reports.append(report)
            return examples

        if hard is not None:  # the hard negative read in the label's place: a text, kept as is
            rows = read(d.train, d.pair_column, hard, "classification")
            views = [[e.text for e in rows], [e.text_pair for e in rows], [str(e.label) for e in rows]]
        else:
            rows = read(d.train, None if loss == "simcse" else d.pair_column, d.label_column if scored else None)
            views = [[e.text for e in rows]] + ([] if loss == "simcse" else [[e.text_pair for e in rows]])
        scores = [float(e.label) for e in rows] if scored else None
        train = SentenceDataset(views, run.tokenizer, run.max_length, scores)

        dev = None
        if d.dev:
            if Path(d.dev).is_dir():

                split = "dev" if (Path(d.dev) / "qrels" / "dev.tsv").is_file() else "test"
                dev = ("retrieval", read_beir(d.dev, split))
            elif d.pair_column is not None and has_column(d.dev, d.label_column, d.format):
                rows = read(d.dev, d.pair_column, d.label_column)
                dev = ("sts", ([e.text for e in rows], [e.text_pair for e in rows],
                               np.array([float(e.label) for e in rows])))
            else:
                if d.pair_column is None:
                    raise UserError(f"{d.dev}: a dev table needs --pair-column (in-table retrieval; with a "
                                    "--label-column score: STS), or give a BEIR folder")
                rows = read(d.dev, d.pair_column, None)
                corpus = {str(i): {"text": e.text_pair} for i, e in enumerate(rows)}
                queries = {str(i): e.text for i, e in enumerate(rows)}
                dev = ("retrieval", (corpus, queries, {str(i): {str(i): 1} for i in range(len(rows))}))

        # the encoder: model.init_from (a berts / HF / sentence-transformers directory) or new
        st_modes, st_norm = None, False
        if cfg.model.init_from:

            if is_st_dir(cfg.model.init_from):
                st = read_st_dir(cfg.model.init_from)
                st_modes, st_norm = st.modes, st.normalize
        model = run.model(BertModel)
        model.pooler = None  # unused by sentence embeddings (and DDP wants every parameter used)
        try:
            modes = pooling_modes(o["pooling"] or st_modes or "mean")
        except ValueError as exc:
            raise UserError(f"task.pooling: {exc}") from None
        return cls(model, run.tokenizer, train, loss=loss, temperature=o["temperature"], pooling=modes,
                   normalize=bool(o["normalize"] or st_norm), max_length=run.max_length, dev=dev,
                   eval_batch_size=cfg.train.eval_batch_size, chosen_metric=cfg.train.metric)
