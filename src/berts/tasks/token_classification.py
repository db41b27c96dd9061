"""Token classification (NER, POS, Chinese per-character tagging): ``berts finetune --task token-classification``.

Everything the task is, in one file (the building blocks are berts.data.tagging, berts.model.crf
and berts.metrics.tagging):

* what it reads: CoNLL columns (token first, tag last or ``--tag-column``), JSONL, parquet or a
  `datasets` save_to_disk directory with ``tokens``/``tags`` lists (other names: ``--text-column`` /
  ``--label-column``),
  Chinese per-character CoNLL files (data/tagging.py's readers); dev tags training never saw are
  a one-line error naming file:line;
* its head: ``BertForTokenClassification`` = the encoder (no pooler) -> dropout -> linear on every
  token, as transformers' class of that name (HF names ``classifier.weight/bias``, ``id2label``);
  the loss is cross-entropy over the labelled tokens (-100 ignored: a word's later sub-tokens,
  [CLS], [SEP], padding), the mean over them;
* ``--crf``: a linear-chain CRF (model/crf.py) on those logits (the emissions). Its loss is the
  exact negative log-likelihood of the gold path over the labelled positions (mask = labels !=
  -100), the mean over sentences (windows); predictions are its Viterbi path, constrained by the
  scheme (no ``O -> I-PER`` in BIO). The emission model is still an ordinary
  ``...ForTokenClassification`` directory; the CRF lives beside it as ``crf.safetensors`` +
  ``crf.json`` (``hf_skip`` keeps its tensors out of model.safetensors; ``write_companions`` /
  ``read_companions`` write and read them with the directory);
* windows: a sentence longer than the model's window is split into overlapping windows of whole
  words (``--stride`` sub-tokens shared); every word is predicted once, from the window where it
  is most central (data/tagging.py's word_windows / merge_windows). A window that starts after
  its sentence's first word carries ``free_start``: the CRF neither scores nor constrains its
  first tag as a sentence start (it may begin inside an entity, with ``I-X``), in training and
  in decoding; a window that ends before its sentence's last word carries ``free_end``, its twin:
  no end score or end constraint on its last tag (it may end inside an entity);
* metrics: entity precision / recall / F1 as seqeval computes them (default mode; strict with
  ``berts evaluate --strict``), micro and per type, token accuracy, and the invalid transitions
  of the predictions under the scheme; ``best/`` by f1;
* predict output: per word tags and scores (:func:`tag_sentences`), turned into entities with
  character offsets by berts.serve.tagger.Tagger.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from berts.data.tagging import (
    IGNORE_INDEX,
    allowed_transitions,
    b_to_i_map,
    check_labels,
    detect_scheme,
    label_list,
    merge_windows,
    pad_batch,
    read_tagged,
    scheme_name,
    tag_fields,
    tagging_features_batch,
)
from berts.errors import UserError
from berts.model.config import BertConfig
from berts.model.encoder import BertModel, Dropout, HeadTransform
from berts.model.heads import BertTaskModel, register_task_model
from berts.model.padding import pad_width
from berts.objectives.base import Objective, Result, accuracy, register
from berts.tasks.base import ModelTask, model_inputs
from berts.data.tagging import TaggedSentence
from berts.metrics.tagging import tagging_report
from berts.model.crf import CRF
from berts.model.crf import CRF_CONFIG, load_crf
from berts.model.crf import save_crf
from berts.model.runner import run

TAGGING_KEY = "tagging"  # config.finetune_data["tagging"]: how the tags were read and windowed (scheme, stride, ...)


# ----------------------------------------------------------------------------- the head
@register
class TokenClassification(Objective, nn.Linear):
    """Dropout + H -> num_labels on every token's last hidden state (``token_head: transform``: read
    through dense, act, norm first, as ModernBERT); cross-entropy over the tokens whose label is not
    -100 (loss part "task", the mean over those tokens, as transformers')."""

    name = "token_classification"
    parts = ("task",)
    metric_parts = {"train_acc": "task"}
    batch_keys = ("labels",)
    hf_names = {"": {"bert": "classifier.", "albert": "classifier."}}

    def __init__(self, config: BertConfig):
        nn.Linear.__init__(self, config.hidden_size, config.num_labels)
        p = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = Dropout(p)
        # token_head transform: ModernBERT's head (dense, act, norm) on every token before the dropout
        self.transform = HeadTransform(config) if config.token_head == "transform" else None

    def rows(self, batch):
        return None  # every position

    def counts(self, batch):
        labels = batch.get("labels")
        return {} if labels is None else {"task": int((labels != IGNORE_INDEX).sum())}

    def forward(self, enc, batch, picked):
        x = enc.last_hidden_state  # [B, S, H]
        x = self.transform(x) if self.transform is not None else x
        logits = F.linear(self.dropout(x), self.weight, self.bias)  # [B, S, T]
        out = Result(fields={"logits": logits})
        labels = batch.get("labels")
        if labels is not None:
            y = labels.reshape(-1)
            flat = logits.reshape(-1, logits.shape[-1]).float()
            keep = y != IGNORE_INDEX
            # a micro-batch without a labelled token (all -100) adds 0, not NaN; the engine weights it by 0
            out.losses["task"] = F.cross_entropy(flat, y) if bool(keep.any()) else flat.sum() * 0.0
            out.metrics["train_acc"] = accuracy(flat[keep], y[keep]) if bool(keep.any()) else flat.new_zeros(())
        return out


@register_task_model
class BertForTokenClassification(BertTaskModel):
    """The encoder (no pooler) + a tag per token (transformers' ``BertForTokenClassification``:
    ``logits`` [B, S, num_labels]); optionally a CRF on those logits (``set_crf``, see the module
    docstring): ``loss`` is then the CRF's NLL and :meth:`decode` its Viterbi path."""

    hf_architectures = {"bert": "BertForTokenClassification", "albert": "AlbertForTokenClassification"}
    objective_names = ("classifier",)
    hf_skip = ("crf.",)  # saved beside the directory (crf.safetensors / crf.json), not in it
    per_token = True  # logits [B, S, C]: distillation compares them per real token (compress/logit_mse)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = TokenClassification(config)
        self.crf = None
        self.crf_scheme: str | None = None
        self.init_weights()

    def set_crf(self, crf, scheme: str | None = None) -> None:
        """Put a CRF (berts.model.crf.CRF over num_labels tags) on the emissions; None: off."""
        if crf is not None and crf.num_tags != self.config.num_labels:
            raise ValueError(f"a CRF of {crf.num_tags} tags on a model of {self.config.num_labels} labels")
        self.crf = None if crf is None else crf.to(self.bert.embeddings.word_embeddings.weight.device)
        self.crf_scheme = scheme

    @property
    def labels(self) -> list[str]:
        id2label = self.config.id2label or {i: f"LABEL_{i}" for i in range(self.config.num_labels)}
        return [id2label[i] for i in range(self.config.num_labels)]

    # ---- the CRF beside the directory (hf/io.py calls these when it writes and reads a directory)
    def write_companions(self, directory) -> None:
        if self.crf is not None:

            save_crf(directory, self.crf, self.labels, self.crf_scheme)

    def read_companions(self, directory) -> None:

        if not (Path(directory) / CRF_CONFIG).is_file():
            return
        crf, _ = load_crf(directory, self.labels)
        scheme = json.loads((Path(directory) / CRF_CONFIG).read_text(encoding="utf-8")).get("scheme")
        if self.crf is not None and self.crf.num_tags == crf.num_tags:  # in place: an optimizer may hold it
            with torch.no_grad():
                for name, t in crf.state_dict().items():
                    self.crf.state_dict()[name].copy_(t)
            self.crf_scheme = scheme
        else:
            self.set_crf(crf, scheme)

    @classmethod
    def from_pretrained(cls, directory, **config_overrides):
        model = super().from_pretrained(directory, **config_overrides)
        model.read_companions(directory)
        return model

    # ---- training
    def loss_counts(self, batch):
        if self.crf is None or batch.get("labels") is None:
            return super().loss_counts(batch)
        return {"task": int((batch["labels"] != IGNORE_INDEX).any(1).sum())}  # sentences (windows) with a tag

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False, output_attention_scores=False,
                free_start=None, free_end=None):
        """``free_start`` (bool [B], optional): rows that are windows starting inside their sentence
        (TaggingDataset's batches carry it): the CRF gives their first tag no start score and no
        start constraint (berts.model.crf). ``free_end``: rows that are windows ending inside their
        sentence: no end score and no end constraint on their last tag. Without a CRF neither is used."""
        if self.crf is None:
            return self.run(input_ids, attention_mask, token_type_ids, position_ids, dict(labels=labels),
                            output_hidden_states, output_attentions, output_attention_scores)
        out = self.run(input_ids, attention_mask, token_type_ids, position_ids, {},
                       output_hidden_states, output_attentions, output_attention_scores)
        if labels is not None:
            mask = labels != IGNORE_INDEX  # [B, S]: the positions that carry a tag
            rows = mask.any(1)
            nll = self.crf(out.logits.float(), labels, mask, reduction="none", free_start=free_start,
                           free_end=free_end)  # [B]
            loss = nll[rows].mean() if bool(rows.any()) else nll.sum() * 0.0
            keep = labels.reshape(-1) != IGNORE_INDEX
            flat = out.logits.reshape(-1, out.logits.shape[-1])
            out.loss, out.losses = loss, {"task": loss}
            out.metrics = {"train_acc": accuracy(flat[keep], labels.reshape(-1)[keep]) if bool(keep.any())
                           else flat.new_zeros(())}
        return out

    @torch.no_grad()
    def decode(self, logits: torch.Tensor, mask: torch.Tensor,
               free_start: torch.Tensor | None = None,
               free_end: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tags [B, S] and their scores [B, S] at ``mask``'s positions: the argmax and its
        probability, or with the CRF its Viterbi path (scores: each tag's softmax probability;
        ``free_start``, ``free_end``: as in :meth:`forward`)."""
        probs = logits.float().softmax(-1)  # [B, S, T]
        if self.crf is None:
            score, tags = probs.max(-1)
        else:
            tags, _ = self.crf.viterbi(logits.float(), mask, free_start, free_end)
            tags = tags.clamp_min(0)
            score = probs.gather(2, tags.unsqueeze(-1)).squeeze(-1)
        return tags, score


# ----------------------------------------------------------------------------- data
class TaggingDataset:
    """Windows of tagged (or untagged) sentences as model inputs. ``self[(epoch, step, indices)]``
    is a padded batch (labels padded with -100), as every berts dataset, with ``free_start`` (bool
    [B]: the window starts after its sentence's first word, so the CRF must not score its first tag
    as a sentence start) and ``free_end`` (bool [B]: the window ends before its sentence's last
    word, so the CRF must not score its last tag as a sentence end); ``sentence_of[i]`` is window i's sentence, ``features[i]`` its
    ``word_ids`` and ``window``."""

    def __init__(self, sentences: Sequence[Sequence[str]], tokenizer, labels: Sequence[str] | None = None,
                 tags: Sequence[Sequence[str]] | None = None, *, max_length: int = 128, stride: int = 32,
                 label_all_subtokens: bool = False, pad_to_multiple_of: int = 8, pieces=None):
        self.sentences = [list(s) for s in sentences]
        self.tags = None if tags is None else [list(t) for t in tags]
        ids = None
        if tags is not None:
            index = {name: i for i, name in enumerate(labels)}
            ids = [[index[t] for t in seq] for seq in tags]
        b_to_i = b_to_i_map(labels) if (label_all_subtokens and labels is not None) else None
        # pieces: the words' sub-token ids when the caller tokenized already (serving raw text)
        per_sentence = tagging_features_batch(tokenizer, self.sentences, ids, pieces, max_length=max_length,
                                              stride=stride, label_all_subtokens=label_all_subtokens, b_to_i=b_to_i)
        self.features = [f for windows in per_sentence for f in windows]
        self.sentence_of = np.array([k for k, windows in enumerate(per_sentence) for _ in windows], dtype=np.int64)
        self.lengths = np.array([len(f["input_ids"]) for f in self.features], dtype=np.int64)
        self.pad_id = tokenizer.pad_id
        self.multiple = pad_to_multiple_of
        self.label_all_subtokens = label_all_subtokens

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, item):
        epoch, step, indices = item
        feats = [self.features[int(i)] for i in indices]
        width = pad_width(max(len(f["input_ids"]) for f in feats), self.multiple)
        batch = pad_batch(feats, self.pad_id)
        for k, v in batch.items():  # pad_batch pads to the longest; round up as every berts dataset
            if v.shape[1] < width:
                fill = IGNORE_INDEX if k == "labels" else (self.pad_id if k == "input_ids" else 0)
                batch[k] = torch.cat([v, v.new_full((v.shape[0], width - v.shape[1]), fill)], 1)
        batch["free_start"] = torch.tensor([f["window"][0] > 0 for f in feats], dtype=torch.bool)
        batch["free_end"] = torch.tensor([f["window"][1] < len(self.sentences[self.sentence_of[int(i)]])
                                          for f, i in zip(feats, indices)], dtype=torch.bool)
        batch.update(index=torch.as_tensor(np.asarray(indices, dtype=np.int64)), epoch=int(epoch), step=int(step))
        return batch

    def tag_mask(self, indices, width: int) -> torch.Tensor:
        """[B, W] bool: the positions a prediction is read at (each word's first sub-token; all its
        sub-tokens with label_all_subtokens, as the CRF was trained)."""
        mask = np.zeros((len(indices), width), dtype=bool)
        for r, i in enumerate(indices):
            f = self.features[int(i)]
            if self.label_all_subtokens:
                mask[r, 1:len(f["input_ids"]) - 1] = True  # every word's sub-tokens: all but [CLS] and [SEP]
            else:
                mask[r, f["first"]] = True
        return torch.from_numpy(mask)


def tag_sentences(model, dataset: TaggingDataset, batch_size: int = 64, device=None, autocast=None,
                  order=None, progress: str | None = None) -> tuple[list[list[int]], list[list[float]], float | None]:
    """Run ``model`` over every window -> (tag ids per word, their scores per word, the mean loss
    over the labelled tokens (CRF: sentences) when the dataset has tags, else None), sentences in
    the dataset's order; each word from the window where it is most central."""

    n_sent = len(dataset.sentences)
    per_window: list = [None] * len(dataset)
    loss_sum = loss_n = 0.0
    for batch, out in run(model, dataset, batch_size=batch_size, device=device, autocast=autocast, order=order,
                          inference=dataset.tags is None, progress=progress,
                          forward=lambda b: model(**{k: v for k, v in model_inputs(b).items()})):
        idx = batch["index"].tolist()
        logits = out.logits
        mask = dataset.tag_mask(idx, logits.shape[1]).to(logits.device)
        free_start, free_end = (None if batch.get(k) is None else batch[k].to(logits.device)
                                for k in ("free_start", "free_end"))
        tags, score = model.decode(logits, mask, free_start, free_end)
        tags, score = tags.cpu().numpy(), score.float().cpu().numpy()
        for r, i in enumerate(idx):  # each window word's prediction, read at its first sub-token
            first = dataset.features[i]["first"]
            per_window[i] = list(zip(tags[r, first].tolist(), score[r, first].tolist()))
        if out.loss is not None:  # a mean over n items (tokens, or windows with a CRF): weighted back by n
            n = model.loss_counts(batch)["task"]
            loss_sum += float(out.loss) * n
            loss_n += n
    windows: list[list] = [[] for _ in range(n_sent)]
    preds: list[list] = [[] for _ in range(n_sent)]
    for i, k in enumerate(dataset.sentence_of):
        windows[k].append(dataset.features[i]["window"])
        preds[k].append(per_window[i])
    tag_ids, scores = [], []
    for k, words in enumerate(dataset.sentences):
        # one window (a sentence that fits, the usual case): its predictions are the sentence's
        merged = preds[k][0] if len(preds[k]) == 1 else merge_windows(windows[k], preds[k], len(words))
        tag_ids.append([int(t) for t, _ in merged])
        scores.append([float(s) for _, s in merged])
    return tag_ids, scores, (loss_sum / loss_n if loss_n else None)


def confusion(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Word-level tag confusion: ``{"labels": [tags, gold's and predicted's, sorted], "matrix":
    [[count]]}`` with rows the gold tag and columns the predicted one."""
    labels = label_list_of([*gold, *predicted])
    index = {t: i for i, t in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted, strict=True):
        for a, b in zip(g, p, strict=True):
            matrix[index[a], index[b]] += 1
    return {"labels": labels, "matrix": matrix.tolist()}


def label_list_of(sequences) -> list[str]:

    return label_list(TaggedSentence([], list(s)) for s in sequences)


def evaluation(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], scheme: str | None,
               mode: str = "default") -> dict:
    """The metrics of predicted word tags: flat numbers for the log (f1, precision, recall,
    accuracy, invalid = predicted invalid transitions), and the full report (per type, macro,
    invalid transitions by kind) under ``report``."""

    report = tagging_report(gold, predicted, scheme=scheme, mode=mode)
    report["confusion"] = confusion(gold, predicted)
    out = {k: float(report[k]) for k in ("f1", "precision", "recall", "accuracy")}
    if "invalid_transitions" in report:
        out["invalid"] = float(report["invalid_transitions"]["predicted"])
    out["report"] = report
    return out


# ----------------------------------------------------------------------------- the task
class TokenClassificationTask(ModelTask):
    """Fine-tune BertForTokenClassification (and its CRF) on tagged sentences; dev: entity F1."""

    name = "token-classification"

    def __init__(self, model, train_dataset, dev_dataset=None, *, scheme: str | None = None,
                 eval_batch_size: int = 64):
        self.model, self.train_dataset, self.dev_dataset = model, train_dataset, dev_dataset
        self.scheme, self.eval_batch_size = scheme, eval_batch_size

    def modules(self):
        return {"model": self.model}

    @classmethod
    def from_run(cls, run):

        d, opts = run.cfg.data, run.options
        tokens_field, tags_field = tag_fields(d.text_column, d.label_column)  # parquet / datasets / JSONL fields

        def read(path):
            return read_tagged(path, tag_column=opts["tag_column"], format=d.format, tokens_field=tokens_field,
                               tags_field=tags_field)

        train = read(d.train)
        if not train:
            raise UserError(f"{d.train}: no tagged sentences")
        dev = read(d.dev) if d.dev else None
        labels = label_list(train)
        if dev:
            check_labels(dev, labels)
        scheme = (detect_scheme(s.tags for s in train) if opts["scheme"] == "auto" else scheme_name(opts["scheme"]))
        model = run.model(BertForTokenClassification, id2label=dict(enumerate(labels)),
                          label2id={n: i for i, n in enumerate(labels)}, problem_type=None)
        model.set_crf(CRF(len(labels), allowed_transitions(labels, scheme)) if opts["crf"] else None, scheme)
        model.config.finetune_data = {**(model.config.finetune_data or {}), TAGGING_KEY: {
            "scheme": scheme, "stride": opts["stride"], "tag_column": opts["tag_column"],
            "tokens_field": tokens_field, "tags_field": tags_field,
            "label_all_subtokens": opts["label_all_subtokens"], "crf": opts["crf"]}}

        def dataset(sentences):
            return TaggingDataset([s.tokens for s in sentences], run.tokenizer, labels, [s.tags for s in sentences],
                                  max_length=run.max_length, stride=opts["stride"],
                                  label_all_subtokens=opts["label_all_subtokens"])

        task = cls(model, dataset(train), dataset(dev) if dev else None, scheme=scheme,
                   eval_batch_size=run.cfg.train.eval_batch_size)
        task.labels = labels
        return task

    def evaluate(self, engine):
        if self.dev_dataset is None:
            return None
        ids, _, loss = tag_sentences(self.model, self.dev_dataset, self.eval_batch_size, engine.device, engine.autocast)
        names = self.model.labels
        metrics = evaluation(self.dev_dataset.tags, [[names[i] for i in s] for s in ids], self.scheme)
        report = metrics.pop("report")
        for typ, row in report["per_type"].items():
            metrics[f"f1_{typ}"] = float(row["f1"])
        if loss is not None:
            metrics["loss"] = loss
        return metrics

    def describe(self) -> str:
        return (f"{len(self.model.labels)} tags, scheme {self.scheme}; "
                + ("CRF on the emissions" if self.model.crf is not None else "softmax per token"))
