"""ELECTRA (Clark et al. 2020, google-research/electra): replaced-token detection.

Two task models, each the twin of a transformers ELECTRA class (the same parameters, names,
config.json and outputs; tested both ways in tests/test_electra.py):

* ``ElectraForPreTraining``, the discriminator (what pretraining keeps): the encoder, no pooler,
  and the RTD head, dense H -> H, ``hidden_act``, dense H -> 1: ``logits`` [B, S], one per token,
  > 0 = "replaced". With ``labels`` [B, S] (1 = replaced) the loss is the BCE over real tokens.
* ``ElectraForMaskedLM``, the generator: a smaller encoder + the MLM head (dense H_g -> E, gelu,
  LayerNorm E, the decoder tied to the word embeddings), sparse like BertForMaskedLM.

The ELECTRA format is the BERT encoder with two differences of names (berts.hf): the prefix
``electra.``, and E != H is ``electra.embeddings_project`` (our ``embeddings.projection``), not
ALBERT's layer groups. So a discriminator with E != H is still an ELECTRA directory.

Pretraining (``data.objective: electra``; berts.tasks.electra.ElectraPretrainingTask, the one engine):
the batch is the MLM collator's (masked ``input_ids``, ``mlm_positions``/``mlm_labels``). Per
step (``replaced_token_step``, as the reference's ``_get_masked_lm_output`` /
``_get_fake_data`` / ``_get_discriminator_output``):

1. the generator's MLM loss at the masked positions (part ``mlm``, a mean over masked tokens);
2. a token sampled from the generator's softmax (temperature 1) at each masked position, with no
   gradient through the sampling;
3. the discriminator reads the *original* tokens with the masked positions replaced by the
   samples; label = sample != original (a sample equal to the original counts as original, as
   in the paper), at every real token (0 wherever nothing was masked);
4. loss = generator MLM + ``rtd_weight`` (lambda, 50) x the discriminator's mean BCE over real
   tokens. The engine weights each part by its own count (masked tokens, real tokens), so the
   part ``rtd`` carries lambda inside it (the plain BCE is the metric ``rtd_loss``).

The token embeddings (the whole embedding block: words, positions, types, LayerNorm) are one set
of modules shared by the two (``tie_embeddings``), as the reference does when the widths agree:
the generator is built with ``embedding_size`` = the discriminator's E and projects it to its
own width. The shared embeddings get gradients from both losses; the rest of the generator only
from its MLM loss. The generator's size is ``generator_config(config, fraction)``: hidden,
heads and intermediate sizes times the fraction (1/4 by default, the paper's best 1/4 to 1/2
range), the same number of layers (the reference's ``generator_layers: 1.0``).

Sampling is seeded by the data, not by a global RNG: ``SamplingNoise`` adds to each batch one
uniform per masked token, drawn from a generator seeded with (seed, epoch, example index), and
the sample is the inverse CDF of the softmax at it. A token's sample is thus a function of its
example and its logits only: resume is bit-exact and DDP ranks draw what one process draws.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from berts.model.config import BertConfig
from berts.errors import UserError
from berts.model.heads import BertTaskModel, ModelOutput, register_task_model
from berts.model.encoder import BertModel, activation
from berts.objectives import MaskedLM, Objective, Result, register
from berts.hf import from_pretrained

__all__ = ["ElectraForPreTraining", "ElectraForMaskedLM", "ReplacedTokenDetection", "GeneratorMLM",
           "generator_config", "make_generator", "tie_embeddings", "sample_tokens", "corrupt", "replaced_token_step",
           "SamplingNoise", "check_electra_config"]

SHARED_EMBEDDINGS = ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm")
NOISE_KEY = "rtd_uniform"  # the batch's per-masked-token uniforms (SamplingNoise)


def check_electra_config(config: BertConfig) -> None:
    """ELECTRA's format is post-LN, standard FFN, with biases, no sharing: a directory must never
    load as another function, so anything else is refused (one line)."""
    want = {"norm_position": "post", "ffn": "standard", "bias": True, "share_layers": "none"}
    odd = {k: getattr(config, k) for k, v in want.items() if getattr(config, k, v) != v}
    if odd:
        raise UserError("ELECTRA's directory format has no " + ", ".join(f"{k}: {v}" for k, v in odd.items())
                        + " (transformers' ElectraModel is post-LN BERT without sharing): train ELECTRA with "
                        + ", ".join(f"{k}: {want[k]}" for k in odd))


# ----------------------------------------------------------------------------- objectives
@register
class ReplacedTokenDetection(Objective):
    """ELECTRA's discriminator head: dense H -> H, activation, dense H -> 1, on every token."""

    name = "rtd"
    parts = ("rtd",)
    metric_parts = {"rtd_acc": "rtd"}
    batch_keys = ("labels",)
    hf_names = {
        "dense.": {"electra": "discriminator_predictions.dense."},
        "dense_prediction.": {"electra": "discriminator_predictions.dense_prediction."},
    }

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.dense_prediction = nn.Linear(config.hidden_size, 1)

    def rows(self, batch):
        return None  # every token

    @staticmethod
    def real(batch) -> torch.Tensor:
        """bool [B, S]: the tokens the loss is over (transformers': attention_mask == 1)."""
        mask = batch.get("attention_mask")
        return torch.ones_like(batch["input_ids"], dtype=torch.bool) if mask is None else mask == 1

    def counts(self, batch):
        if batch.get("labels") is None:
            return {}
        mask = batch.get("attention_mask")
        return {"rtd": int(batch["input_ids"].numel() if mask is None else (mask == 1).sum())}

    def forward(self, enc, batch, picked):
        x = enc.last_hidden_state  # [B, S, H]
        logits = self.dense_prediction(self.act(self.dense(x))).squeeze(-1)  # [B, S]
        labels = batch.get("labels")
        if labels is None:
            return Result(fields={"logits": logits})
        real = self.real(batch)
        z, y = logits[real].float(), labels[real].float()
        loss = F.binary_cross_entropy_with_logits(z, y)
        # detached, tensor ops only (no host sync): accuracy, and recall of each class
        hit, rep = ((z > 0).float() == y).float(), y
        metrics = {"rtd_acc": hit.mean().detach(),
                   "rtd_replaced_acc": ((hit * rep).sum() / rep.sum().clamp_min(1)).detach(),
                   "rtd_original_acc": ((hit * (1 - rep)).sum() / (1 - rep).sum().clamp_min(1)).detach()}
        return Result({"logits": logits}, {"rtd": loss}, metrics)


class GeneratorMLM(MaskedLM):
    """ELECTRA's generator head: MaskedLM with transformers' names for ElectraForMaskedLM, and its
    activation fixed to gelu as there (``ElectraGeneratorPredictions``). Not registered: it is
    the objective "mlm" under other names."""

    hf_names = {
        "dense.": {"electra": "generator_predictions.dense."},
        "norm.": {"electra": "generator_predictions.LayerNorm."},
        "bias": {"electra": "generator_lm_head.bias"},
    }

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__(config, word_embeddings)
        self.act = activation("gelu")


# ----------------------------------------------------------------------------- task models
@register_task_model
class ElectraForPreTraining(BertTaskModel):
    """The ELECTRA discriminator (transformers' ElectraForPreTraining): ``logits`` [B, S]; with
    ``labels`` [B, S] (1 = replaced, 0 = original) ``loss`` is the BCE over the real tokens.
    Fine-tuning reads its encoder (``berts finetune --model DIR``: see heads.BertForSequenceClassification)."""

    hf_model_type = "electra"
    hf_architectures = {"electra": "ElectraForPreTraining"}
    objective_names = ("rtd",)

    def __init__(self, config: BertConfig):
        check_electra_config(config)
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.rtd = ReplacedTokenDetection(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None, labels=None,
                output_hidden_states=False, output_attentions=False, output_attention_scores=False) -> ModelOutput:
        return self.run(input_ids, attention_mask, token_type_ids, position_ids, dict(labels=labels),
                        output_hidden_states, output_attentions, output_attention_scores)


@register_task_model
class ElectraForMaskedLM(BertTaskModel):
    """The ELECTRA generator (transformers' ElectraForMaskedLM): encoder (no pooler) + MLM, sparse
    logits at the targets as BertForMaskedLM (``logits`` = ``prediction_logits``)."""

    hf_model_type = "electra"
    hf_architectures = {"electra": "ElectraForMaskedLM"}
    objective_names = ("mlm",)

    def __init__(self, config: BertConfig):
        check_electra_config(config)
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm = GeneratorMLM(config, self.bert.embeddings.word_embeddings)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, position_ids=None,
                labels=None, mlm_positions=None, mlm_labels=None,
                output_hidden_states=False, output_attentions=False, output_attention_scores=False) -> ModelOutput:
        out = self.run(input_ids, attention_mask, token_type_ids, position_ids,
                       dict(labels=labels, mlm_positions=mlm_positions, mlm_labels=mlm_labels),
                       output_hidden_states, output_attentions, output_attention_scores)
        out.logits = out.prediction_logits
        return out


# ----------------------------------------------------------------------------- the pair
def generator_config(config: BertConfig, fraction: float = 0.25) -> BertConfig:
    """The generator's config: hidden, heads and intermediate sizes x ``fraction`` (heads rounded,
    at least 1, dividing the hidden size), the same layers, and embedding_size = the
    discriminator's embedding width E (its tables are the discriminator's; E -> H_g projection)."""
    if not 0 < fraction <= 1:
        raise UserError(f"electra.generator_size must be in (0, 1], got {fraction!r}")
    hidden = max(1, round(config.hidden_size * fraction))
    heads = max(1, round(config.num_attention_heads * fraction))
    while hidden % heads:
        heads -= 1
    e = config.emb_size
    return config.replace(hidden_size=hidden, num_attention_heads=heads,
                          intermediate_size=max(1, round(config.intermediate_size * fraction)),
                          embedding_size=None if e == hidden else e, span_boundary_objective=False,
                          id2label=None, label2id=None, problem_type=None, extra=dict(config.extra))


def make_generator(discriminator, fraction: float = 0.25, init_from=None) -> "ElectraForMaskedLM":
    """The generator for ``discriminator``: ``ElectraForMaskedLM(generator_config(...))``, or the one
    saved beside ``init_from`` (an ELECTRA run's final/ has it in generator/), whatever ``fraction``."""
    from pathlib import Path

    saved = Path(init_from) / "generator" if init_from else None
    if saved is not None and (saved / "config.json").is_file():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return from_pretrained(ElectraForMaskedLM, saved)
    return ElectraForMaskedLM(generator_config(discriminator.config, fraction))


def tie_embeddings(discriminator: nn.Module, generator: nn.Module) -> None:
    """Make the generator's embedding block (words, positions, types, LayerNorm) the
    discriminator's own modules, and its tied decoder read the shared word embeddings."""
    src, dst = discriminator.bert.embeddings, generator.bert.embeddings
    if src.word_embeddings.weight.shape != dst.word_embeddings.weight.shape:
        raise UserError(f"the generator's embeddings {tuple(dst.word_embeddings.weight.shape)} do not fit the "
                        f"discriminator's {tuple(src.word_embeddings.weight.shape)}")
    for name in SHARED_EMBEDDINGS:
        setattr(dst, name, getattr(src, name))
    generator.mlm.word_embeddings = [src.word_embeddings]


def sample_tokens(logits: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """[N] ids drawn from softmax(logits [N, V]) (temperature 1) by the inverse CDF at ``uniforms``
    [N] in [0, 1): id j where cdf[j-1] <= u < cdf[j]; no gradient."""
    probs = torch.softmax(logits.detach().float(), -1)
    cdf = probs.cumsum(-1)
    u = uniforms.to(cdf.dtype).unsqueeze(-1) * cdf[:, -1:]  # the last cdf is 1 up to rounding
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_max(logits.shape[-1] - 1)


def corrupt(input_ids, positions, originals, sampled):
    """(discriminator input [B, S], labels [B, S]): the original ids (``originals`` put back at the
    masked ``positions``, flat into B*S) with the samples there; label 1 where the sample differs."""
    flat = input_ids.reshape(-1).clone()
    flat[positions] = originals
    original = flat.clone()
    flat[positions] = sampled
    return flat.view_as(input_ids), (flat != original).long().view_as(input_ids)


def replaced_token_step(discriminator, generator, batch: dict, rtd_weight: float = 50.0):
    """One ELECTRA forward on an MLM batch. Returns (losses {"mlm", "rtd"}, metrics, extras) with
    ``rtd`` = ``rtd_weight`` x the discriminator's BCE; extras: the generator's and the
    discriminator's outputs, the samples, the discriminator input and its labels."""
    ids, mask, types = batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids")
    positions, originals = batch["mlm_positions"], batch["mlm_labels"]
    gen = generator(ids, mask, types, mlm_positions=positions, mlm_labels=originals)
    noise = batch.get(NOISE_KEY)
    if noise is None:  # a batch without SamplingNoise: the global RNG (exact resume still; not DDP)
        noise = torch.rand(positions.shape, device=ids.device)
    sampled = sample_tokens(gen.prediction_logits, noise)
    fake, labels = corrupt(ids, positions, originals, sampled)
    disc = discriminator(fake, mask, types, labels=labels)
    losses = {"mlm": gen.losses["mlm"], "rtd": rtd_weight * disc.losses["rtd"]}
    metrics = {**(gen.metrics or {}), **(disc.metrics or {}), "rtd_loss": disc.losses["rtd"].detach()}
    extras = {"generator": gen, "discriminator": disc, "sampled": sampled, "input_ids": fake, "labels": labels}
    return losses, metrics, extras


# ----------------------------------------------------------------------------- data
class SamplingNoise:
    """A pretraining dataset whose batches also carry ``rtd_uniform`` [N] (float32): one uniform per
    masked token (the order of ``mlm_positions``), from a generator per example seeded with
    (seed, epoch, index): the same numbers for an example whatever the batch, rank or resume."""

    TAG = 0xE1EC  # keeps these generators apart from the masking ones (seed, epoch, index)

    def __init__(self, dataset, seed: int | None = None):
        self.dataset = dataset
        self.seed = int(getattr(dataset, "seed", 0) if seed is None else seed)

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):  # lengths, meta, collator, ... are the dataset's
        if name in ("dataset", "seed") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, item):
        batch = self.dataset[item]
        if isinstance(item, (int, np.integer)):
            return batch
        epoch, _, indices = item
        width = batch["input_ids"].shape[1]
        rows = (batch["mlm_positions"] // width).numpy()
        per_row = np.bincount(rows, minlength=len(indices))
        u = [np.random.default_rng([self.seed, int(epoch), int(i), self.TAG]).random(int(k))
             for i, k in zip(np.asarray(indices).tolist(), per_row.tolist())]
        batch[NOISE_KEY] = torch.from_numpy(np.concatenate(u).astype(np.float32) if u else np.zeros(0, np.float32))
        return batch
