"""Task models: an encoder (``self.bert``, model.py) + objectives (objectives/), UER's embedding +
encoder + target split. BertForPreTraining, BertForMaskedLM, BertForSequenceClassification,
BertForUnifiedLM (UniLM: one encoder, the attention mode per batch, MLM and next-token LM).

Calling convention and output field names follow transformers, so code written for transformers
trains berts unchanged; a misspelled keyword raises TypeError, as there. Additions:

* ``out.losses`` {part: mean loss, not detached} and ``out.metrics`` {name: detached 0-d tensor};
  ``out.loss`` is the sum of the parts. ``model.loss_counts(batch)`` says, without a forward, how
  many items each part averages over; ``model.loss_parts`` and ``model.metric_parts`` list them.
* Sparse MLM (see objectives/mlm.py): with targets, ``prediction_logits`` is [N, vocab] for the N
  predicted positions.
* Sparse output (fast path ``sparse_output``, on while training): the objectives ask the encoder
  for the rows they need only (masked positions, [CLS]); ``last_hidden_state`` is then None.

Adding a task model: subclass ``BertTaskModel``, set ``self.bert`` and the objectives as
attributes, list them in ``objective_names``, name its Hugging Face architectures in
``hf_architectures``, write a ``forward`` with explicit keywords that calls ``self.run``, and
decorate it with ``@register_task_model`` (so ``berts.load`` finds it). tests/test_objectives.py
has a worked example.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from berts.model.attention import MODES, mode_mask
from berts.model.config import BertConfig
from berts.model.encoder import BertModel, BertPreTrainedModel
from berts.objectives import registry
from berts.objectives.base import Objective
from berts.objectives.classification import SequenceClassification
from berts.objectives.lm import NextTokenLM
from berts.objectives.mlm import MaskedLM


@dataclass
class ModelOutput:
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    # a sentence-level head's other than NSP/SOP's: reorder [B, 9], distance [B, 3] (objectives/structure.py),
    # a plug-in's (objectives/samedoc.py [B, 2])
    structure_logits: torch.Tensor | None = None
    lm_logits: torch.Tensor | None = None  # next-token logits at lm_positions, [N, vocab]
    last_hidden_state: torch.Tensor | None = None
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
    attention_scores: tuple[torch.Tensor, ...] | None = None
    losses: dict[str, torch.Tensor] | None = None  # {part: mean loss}, not detached
    metrics: dict[str, torch.Tensor] | None = None  # {name: detached 0-d tensor}

    def __getitem__(self, key):
        return getattr(self, key)


TASK_MODELS: dict[str, type] = {}


def register_task_model(cls):
    """Class decorator: ``berts.load`` and berts.hf find the class by its name and its
    ``hf_architectures``."""
    TASK_MODELS[cls.__name__] = cls
    return cls


# task models defined outside this file, which register themselves when imported: loaded before the
# registry is read, so that `from berts.hf import load` finds them without `import berts` having run
# first (berts/__init__.py is lazy, for the command line's speed)
BUILTIN_TASK_MODULES = ("berts.model.electra", "berts.compress.early_exit.exits", "berts.tasks.qa",
                        "berts.tasks.multiple_choice", "berts.tasks.token_classification")


def architectures() -> dict[str, type]:
    """{Hugging Face architecture name: our class}, from every registered class's declaration."""
    import importlib

    for module in BUILTIN_TASK_MODULES:
        importlib.import_module(module)
    return {arch: cls for cls in TASK_MODELS.values() for arch in cls.hf_architectures.values()}


register_task_model(BertModel)


class BertTaskModel(BertPreTrainedModel):
    """An encoder (``self.bert``) and the objectives named in ``objective_names`` (attributes; a
    None one is switched off), run, and their losses summed, in that order."""

    objective_names: tuple[str, ...] = ()

    def objectives(self) -> list[Objective]:
        return [o for o in (getattr(self, n) for n in self.objective_names) if o is not None]

    @property
    def loss_parts(self) -> tuple[str, ...]:
        return tuple(p for o in self.objectives() for p in o.parts)

    @property
    def metric_parts(self) -> dict[str, str]:
        return {m: p for o in self.objectives() for m, p in o.metric_parts.items()}

    def _prepared(self, batch: dict) -> dict:
        batch = {k: v for k, v in batch.items() if v is not None}
        for o in self.objectives():
            batch = o.prepare(batch)
        return batch

    def runs(self, objective: Objective, batch: dict) -> bool:
        """Whether ``objective`` runs on this (prepared) batch; all of them, unless a model says."""
        return True

    def loss_counts(self, batch: dict) -> dict[str, int]:
        """{part: items its mean is over} for this batch, from the batch alone (no forward)."""
        counts = {}
        for o in self.objectives():
            counts.update(o.counts(batch))
        return counts

    def run(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, targets=None,
            output_hidden_states=False, output_attentions=False, output_attention_scores=False) -> ModelOutput:
        """The encoder, then each objective on the rows it asked for; their results in one ModelOutput."""
        batch = self._prepared(dict(targets or {}, input_ids=input_ids, attention_mask=attention_mask,
                                    token_type_ids=token_type_ids))
        objectives = [o for o in self.objectives() if self.runs(o, batch)]
        requests = [o.rows(batch) for o in objectives]
        output_rows = None if not requests or any(r is None for r in requests) else torch.cat(requests)
        enc = self.bert(input_ids, attention_mask, token_type_ids, position_ids,
                        output_hidden_states=output_hidden_states, output_attentions=output_attentions,
                        output_attention_scores=output_attention_scores, output_rows=output_rows)
        x = enc.last_hidden_state
        fields, losses, metrics, offset = {}, {}, {}, 0
        for o, r in zip(objectives, requests):
            picked = None
            if r is not None:
                if enc.rows is not None:  # sparse output: the rows asked for, in request order
                    picked, offset = x[offset:offset + r.numel()], offset + r.numel()
                else:
                    picked = x.reshape(-1, x.shape[-1]).index_select(0, r)
            result = o(enc, batch, picked)
            fields.update(result.fields)
            losses.update(result.losses)
            metrics.update(result.metrics)
        return ModelOutput(
            loss=sum(losses.values()) if losses else None, **fields,
            last_hidden_state=x if enc.rows is None else None, pooler_output=enc.pooler_output,
            hidden_states=enc.hidden_states, attentions=enc.attentions, attention_scores=enc.attention_scores,
            losses=losses or None, metrics=metrics or None,
        )


def head_specs(config: BertConfig, kinds: tuple[str, ...], default_sentence: str | None = None,
               legacy_sbo: bool = True) -> list[registry.ObjectiveSpec]:
    """The specs of the heads a pretraining model builds from ``config.objectives`` (registry names;
    None: MLM alone): those of ``kinds``, the token-level ones first (in registry order: mlm, then
    the heads that share its decoder), then the sentence-level one (``default_sentence``'s head when
    the list has none). ``legacy_sbo``: ``config.span_boundary_objective`` alone also adds sbo."""
    names = list(config.objectives) if config.objectives is not None else ["mlm"]
    if legacy_sbo and config.span_boundary_objective and "sbo" not in names:
        names.append("sbo")
    if "mlm" not in names:
        names.insert(0, "mlm")
    specs = [registry.get(n) for n in names]
    if default_sentence and not any(s.kind == "sentence" for s in specs):
        specs.append(registry.get(default_sentence))
    order = list(registry.registry())
    return [s for kind in ("token", "sentence") if kind in kinds
            for s in sorted(specs, key=lambda s: order.index(s.name)) if s.kind == kind]


class ObjectiveHeads(BertTaskModel):
    """A task model whose objectives are the registry's heads that ``config.objectives`` names
    (head_specs), each built by its class's ``build(model, config)`` and held under its spec's
    ``attr``. ``forward`` takes the targets the registry's objectives declare (their specs'
    ``batch_keys``; those of a head it does not hold are ignored, as before the registry); any other
    keyword is a TypeError, as transformers'."""

    head_kinds: tuple[str, ...] = ("token",)
    default_sentence: str | None = None
    legacy_sbo = True

    def build_heads(self, config: BertConfig) -> None:
        self.specs = head_specs(config, self.head_kinds, self.default_sentence, self.legacy_sbo)
        for spec in registry.registry().values():  # the heads this model could hold: None when off
            if spec.attr and spec.kind in self.head_kinds:
                setattr(self, spec.attr, None)
        names = []
        for spec in self.specs:
            if spec.attr not in names:  # nsp and sop: one head
                setattr(self, spec.attr, spec.load("head").build(self, config))
                names.append(spec.attr)
        self.objective_names = tuple(names)

    def check_targets(self, targets: dict) -> dict:
        unknown = sorted(k for k in targets if k not in registry.batch_keys())
        if unknown:
            raise TypeError(f"{type(self).__name__}.forward() got an unexpected keyword argument {unknown[0]!r}")
        return targets


@register_task_model
class BertForPreTraining(ObjectiveHeads):
    """Encoder + MLM + one sentence-level head on the pooled [CLS] + the token-level heads that
    ``config.objectives`` names (registry names, e.g. ["mlm", "sop", "sbo", "wso"]): NSP/SOP's
    head (transformers' ``seq_relationship``) unless the list names another sentence-level
    objective (ERNIE 2.0's reorder / distance, a plug-in); SpanBERT's SBO also when
    ``config.span_boundary_objective``; StructBERT's wso on the MLM head."""

    hf_architectures = {"bert": "BertForPreTraining", "albert": "AlbertForPreTraining"}
    head_kinds = ("token", "sentence")
    default_sentence = "nsp"

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.build_heads(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, next_sentence_label=None, sentence_order_label=None,
                mlm_positions=None, mlm_labels=None, output_hidden_states=False, output_attentions=False,
                output_attention_scores=False, **targets) -> ModelOutput:
        """``targets``: the other objectives' (sbo_left/right/rel, sentence_reorder_label, wso_positions,
        a plug-in's label, ...): the ``batch_keys`` of the built objectives' specs."""
        targets = dict(self.check_targets(targets), labels=labels, next_sentence_label=next_sentence_label,
                       sentence_order_label=sentence_order_label, mlm_positions=mlm_positions, mlm_labels=mlm_labels)
        return self.run(input_ids, attention_mask, token_type_ids, position_ids, targets,
                        output_hidden_states, output_attentions, output_attention_scores)


@register_task_model
class BertForMaskedLM(ObjectiveHeads):
    """Encoder (no pooler, as transformers) + MLM (+ the token-level heads ``config.objectives``
    names: StructBERT's wso, SpanBERT's sbo). Sparse logits when labels are given."""

    hf_architectures = {"bert": "BertForMaskedLM", "albert": "AlbertForMaskedLM"}
    legacy_sbo = False  # span_boundary_objective alone is BertForPreTraining's switch, as it was

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.build_heads(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, mlm_positions=None, mlm_labels=None,
                output_hidden_states=False, output_attentions=False, output_attention_scores=False,
                **targets) -> ModelOutput:
        targets = dict(self.check_targets(targets), labels=labels, mlm_positions=mlm_positions, mlm_labels=mlm_labels)
        out = self.run(input_ids, attention_mask, token_type_ids, position_ids, targets,
                       output_hidden_states, output_attentions, output_attention_scores)
        out.logits = out.prediction_logits  # transformers' field for this class
        return out


@register_task_model
class BertForSequenceClassification(BertTaskModel):
    """Pooled [CLS] -> dropout -> linear. One sentence or a pair; classification or regression."""

    hf_architectures = {"bert": "BertForSequenceClassification", "albert": "AlbertForSequenceClassification"}
    objective_names = ("classifier",)

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config)
        self.classifier = SequenceClassification(config)
        self.init_weights()

    @property
    def is_regression(self) -> bool:
        return self.classifier.regression

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False, output_attention_scores=False) -> ModelOutput:
        return self.run(input_ids, attention_mask, token_type_ids, position_ids, dict(labels=labels),
                        output_hidden_states, output_attentions, output_attention_scores)


@register_task_model
class BertForUnifiedLM(BertTaskModel):
    """UniLM: the BERT encoder (no pooler) + the MLM head, trained under one of the attention
    modes of berts.model.attention.MODES per batch (``lm_mode``: a name or its index, also a 0-d
    tensor, as batches carry it), with two objectives on that one head:

    * ``mlm`` (unified MLM): masked tokens predicted under the batch's mode;
    * ``lm`` (objectives/lm.py): next-token prediction at ``lm_positions`` (causal LM, seq2seq LM).

    ``attention_mask`` is the padding mask [B, S]; with ``lm_mode`` the model builds the mode's
    full mask from it and ``token_type_ids`` (a full [B, S, S] mask given is used as it is).
    Without ``lm_mode`` it is BERT (bidirectional). Its parameters are exactly BertForMaskedLM's,
    so transformers loads the directory as BertForMaskedLM (same outputs for bidirectional
    input); the mode is an input, and which mode generation uses is ``config.lm_mode``
    (transformers has no way to say either).
    """

    hf_architectures = {"bert": "BertForUnifiedLM", "albert": "AlbertForUnifiedLM"}
    objective_names = ("mlm", "lm")

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm = MaskedLM(config, self.bert.embeddings.word_embeddings)
        self.lm = NextTokenLM(self.mlm)
        self.init_weights()

    def runs(self, objective, batch):
        # a next-token batch without MLM targets: no dense MLM logits at every position
        return not (objective is self.mlm and batch.get("lm_labels") is not None
                    and batch.get("mlm_labels") is None)

    @staticmethod
    def full_mask(lm_mode, input_ids, attention_mask=None, token_type_ids=None):
        """The mode's [B, S, S] mask (or the given mask when no mode / already full)."""
        if lm_mode is None or (attention_mask is not None and attention_mask.dim() > 2):
            return attention_mask
        if isinstance(lm_mode, torch.Tensor):
            lm_mode = int(lm_mode.reshape(-1)[0])
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if lm_mode in (0, MODES[0]):
            return attention_mask  # bidirectional: the padding mask, BERT's own path
        return mode_mask(lm_mode, attention_mask, token_type_ids)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, lm_mode=None,
                labels=None, mlm_positions=None, mlm_labels=None, lm_positions=None, lm_labels=None,
                output_hidden_states=False, output_attentions=False, output_attention_scores=False) -> ModelOutput:
        mask = self.full_mask(lm_mode, input_ids, attention_mask, token_type_ids)
        out = self.run(input_ids, mask, token_type_ids, position_ids,
                       dict(labels=labels, mlm_positions=mlm_positions, mlm_labels=mlm_labels,
                            lm_positions=lm_positions, lm_labels=lm_labels),
                       output_hidden_states, output_attentions, output_attention_scores)
        out.logits = out.prediction_logits if out.prediction_logits is not None else out.lm_logits
        return out
