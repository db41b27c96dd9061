"""Generation from a BERT trained as a left-to-right or seq2seq LM (heads.BertForUnifiedLM).

The hidden state at the last position goes through the MLM head (objectives/lm.py: next-token
prediction), a token is picked, appended, and the encoder runs again: on the new position only
with the key/value cache (model.BertModel.decode; exact, since under these masks no earlier
position sees a later one), or on the whole sequence without it (``use_cache=False``, the
reference the tests compare with: same ids).

Two layouts, after the mode:

* ``left-to-right``: ``[CLS] prompt`` (segment A), continued token by token;
* ``seq2seq``: ``[CLS] source [SEP]`` (segment A, seen whole) then the target (segment B), from
  nothing; the model was trained to predict B's tokens and its closing [SEP].

Two readouts, after the objective the model was trained with (``config.lm_readout``):
``next`` (clm, seq2seq: the last position predicts the next token) and ``mask`` (UniLM's masked
objective: a [MASK] is appended, predicted, and replaced by the token; with the cache, the
[MASK]'s keys and values are dropped again after each read).

Choice of the next token: greedy (default); sampling with ``temperature``, ``top_k``, ``top_p``
(nucleus), seeded by ``seed`` (one torch.Generator: the same seed gives the same text); or beam
search (``num_beams`` > 1) with a length penalty (the score is the summed log-probability over
length ** length_penalty, transformers' convention). Generation stops at [SEP]
(``eos_token_id``; not part of the output) or after ``max_new_tokens``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from berts.errors import UserError
from berts.model.attention import mode_mask
from berts.hf.kinds import require_kind
from berts.model.heads import BertForUnifiedLM
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.device import resolve_device


@dataclass
class GenerationConfig:
    max_new_tokens: int = 32
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    num_beams: int = 1
    length_penalty: float = 1.0
    seed: int | None = 0
    use_cache: bool = True

    def validate(self):

        if self.max_new_tokens < 1:
            raise UserError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        import math

        if not (math.isfinite(self.temperature) and self.temperature > 0):  # nan compares False to all
            raise UserError(f"temperature must be a finite number > 0, got {self.temperature}")
        if not math.isfinite(self.length_penalty):
            raise UserError(f"length_penalty must be a finite number, got {self.length_penalty}")
        if self.top_k < 0:
            raise UserError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:  # (False for nan)
            raise UserError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.num_beams < 1:
            raise UserError(f"num_beams must be at least 1, got {self.num_beams}")
        if self.num_beams > 1 and self.do_sample:
            raise UserError("beam search does not sample: use num_beams 1 with do_sample")
        return self


def filter_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0):
    """[.., V] logits -> scaled by 1 / temperature, everything outside the top k and outside the
    smallest set whose probability reaches top_p set to -inf (the most likely token always stays)."""
    logits = logits.float() / temperature
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(-1, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= top_p  # tokens after the mass reached top_p
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


class _Stepper:
    """Next-token logits for rows of one growing sequence layout, with or without the cache."""

    def __init__(self, model, ids: torch.Tensor, types: torch.Tensor, mode: str, use_cache: bool,
                 mask_id: int | None = None, segment: int = 0):
        self.model, self.mode, self.use_cache = model, mode, use_cache
        self.mask_id, self.segment = mask_id, segment  # mask_id: the "mask" readout
        self.ids, self.types = ids, types  # [R, L]
        self.cache = model.bert.new_cache() if use_cache else None
        self.pending = ids  # positions not yet run through the cache

    def logits(self) -> torch.Tensor:
        """[R, V] for the token after the last position."""
        bert = self.model.bert
        ids, types = self.pending if self.use_cache else self.ids, self.types
        if self.mask_id is not None:  # a [MASK] slot after the sequence, in the target's segment
            ids = torch.cat([ids, torch.full_like(ids[:, :1], self.mask_id)], 1)
            types = torch.cat([types, torch.full_like(types[:, :1], self.segment)], 1)
        n = ids.shape[1]
        if self.use_cache:
            p = self.cache.length
            if p == 0:  # the prompt (and the [MASK] slot): the mode's mask
                mask = mode_mask(self.mode, torch.ones_like(ids), types)
            else:  # the new positions see every cached one, and each other left to right
                mask = torch.ones(ids.shape[0], n, p + n, dtype=torch.bool, device=ids.device)
                mask[:, :, p:] = torch.ones(n, n, dtype=torch.bool, device=ids.device).tril()
            h = bert.decode(ids, self.cache, types[:, -n:], mask)[:, -1]
            if self.mask_id is not None:
                self.cache.truncate(self.cache.length - 1)  # the [MASK] slot is read, then dropped
        else:
            h = bert(ids, mode_mask(self.mode, torch.ones_like(ids), types), types).last_hidden_state[:, -1]
        return self.model.mlm.predict(h)

    def append(self, rows: torch.Tensor, tokens: torch.Tensor, segment: int):
        """Keep rows ``rows`` (beam origins) and append one token to each."""
        self.ids = torch.cat([self.ids.index_select(0, rows), tokens[:, None]], 1)
        self.types = torch.cat([self.types.index_select(0, rows),
                                torch.full_like(tokens[:, None], segment)], 1)
        if self.cache is not None:
            self.cache.reorder(rows)
        self.pending = tokens[:, None]


@torch.no_grad()
def generate_ids(model, prompt_ids, *, mode: str = "left-to-right", eos_token_id: int | None = None,
                 mask_token_id: int | None = None, config: GenerationConfig | None = None,
                 max_length: int | None = None, **options) -> list[int]:
    """The generated ids (without the prompt and without the closing [SEP]).

    ``prompt_ids``: the ids the model sees first, special tokens included: ``[CLS] prompt`` for
    left-to-right, ``[CLS] source [SEP]`` for seq2seq. ``max_length``: the model's positions
    (default ``config.max_position_embeddings``); generation stops there. ``options``: the
    fields of GenerationConfig. ``mask_token_id``: the "mask" readout (a model trained with
    UniLM's masked objective); None: next-token.
    """
    cfg = GenerationConfig(**{**(config.__dict__ if config else {}), **options}).validate()
    if mode not in ("left-to-right", "seq2seq"):
        raise ValueError(f"generation runs left-to-right or seq2seq, not {mode!r}")
    was_training = model.training
    model.eval()
    try:
        device = model.bert.device
        ids = torch.as_tensor(list(prompt_ids), dtype=torch.long, device=device)[None]
        limit = max_length or model.config.max_position_embeddings
        steps = min(cfg.max_new_tokens, limit - ids.shape[1] - (mask_token_id is not None))
        if steps <= 0:
            return []
        segment = 1 if mode == "seq2seq" else 0
        stepper = _Stepper(model, ids, torch.zeros_like(ids), mode, cfg.use_cache, mask_token_id, segment)
        if cfg.num_beams > 1:
            return _beam_search(stepper, steps, cfg, eos_token_id, segment, ids.shape[1])
        gen = torch.Generator(device=device)
        if cfg.seed is not None:
            gen.manual_seed(int(cfg.seed))
        out = []
        for _ in range(steps):
            logits = stepper.logits()[0]
            if cfg.do_sample:
                probs = filter_logits(logits, cfg.temperature, cfg.top_k, cfg.top_p).softmax(-1)
                token = int(torch.multinomial(probs, 1, generator=gen))
            else:
                token = int(logits.argmax())
            if token == eos_token_id:
                break
            out.append(token)
            stepper.append(torch.zeros(1, dtype=torch.long, device=device),
                           torch.tensor([token], device=device), segment)
        return out
    finally:
        model.train(was_training)


def _beam_search(stepper: _Stepper, steps: int, cfg: GenerationConfig, eos, segment: int, start: int) -> list[int]:
    """Beam search, transformers' rules: keep the ``num_beams`` best open sequences by summed
    log-probability; a candidate ending in [SEP] among the best ``num_beams`` of a step is
    finished with the score sum / length ** length_penalty (length: its tokens, [SEP] counted);
    stop when ``num_beams`` are finished and the best open beam, scored at its present length,
    cannot beat the best of them (or when the steps run out: the open beams then count as
    finished); the best finished one wins."""
    k, device = cfg.num_beams, stepper.ids.device
    scores = torch.zeros(1, device=device)  # [R] summed log-probabilities of the open beams
    finished: list[tuple[float, list[int]]] = []

    def final(total, n):
        return total / max(n, 1) ** cfg.length_penalty

    for t in range(steps):
        logp = stepper.logits().float().log_softmax(-1)  # [R, V]
        cand = (scores[:, None] + logp).reshape(-1)
        top = cand.topk(min(2 * k, cand.numel()))
        rows, toks, keep_scores = [], [], []
        v = logp.shape[1]
        for rank, (value, flat) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
            r, tok = divmod(flat, v)
            if tok == eos:
                if rank < k:
                    finished.append((final(value, t + 1), stepper.ids[r, start:].tolist()))
                continue
            rows.append(r), toks.append(tok), keep_scores.append(value)
            if len(rows) == k:
                break
        stepper.append(torch.tensor(rows, device=device), torch.tensor(toks, device=device), segment)
        scores = torch.tensor(keep_scores, device=device)
        if len(finished) >= k and max(f[0] for f in finished) >= final(float(scores.max()), t + 1):
            break
    else:
        for r in range(stepper.ids.shape[0]):  # out of steps: the open beams count as finished
            finished.append((final(float(scores[r]), steps), stepper.ids[r, start:].tolist()))
    return max(finished, key=lambda f: f[0])[1]


class TextGenerator:
    """Text in, text out: a BertForUnifiedLM and its tokenizer (``TextGenerator.load(dir)``).

    ``mode``: left-to-right (a prompt continued) or seq2seq (a source, a target generated); by
    default the model's own (``config.lm_mode``, set by pretrain / finetune),
    else left-to-right.
    """

    def __init__(self, model, tokenizer, mode: str | None = None, readout: str | None = None):

        self.model, self.tokenizer = model, tokenizer
        self.mode = mode or model.config.lm_mode or "left-to-right"
        self.readout = readout or model.config.lm_readout or "next"
        if self.mode not in ("left-to-right", "seq2seq"):
            raise UserError(f"generation runs left-to-right or seq2seq, not {self.mode!r}")
        if self.readout not in ("next", "mask"):
            raise UserError(f"readout must be next or mask, not {self.readout!r}")

    @classmethod
    def load(cls, directory, mode: str | None = None, readout: str | None = None, device: str = "cpu"):
        """A model directory (any BERT with an MLM head; made for it: pretrain --objective clm /
        seq2seq / unilm, finetune --task seq2seq) and the tokenizer files in it."""
        import warnings

        require_kind(directory, "generation", "berts generate")  # from config.json, before the weights
        resolve_device(device)  # --device cuda without CUDA: one line, before the weights load
        with warnings.catch_warnings():  # a pooler left out is not news here
            warnings.simplefilter("ignore")
            model = BertForUnifiedLM.from_pretrained(directory).to(resolve_device(device)).eval()
        return cls(model, load_tokenizer(directory), mode, readout)

    def prompt_ids(self, text: str) -> list[int]:
        tok = self.tokenizer
        ids = tok.encode_ids_batch([text])[0]
        if self.mode == "seq2seq":
            return [tok.cls_id, *ids, tok.sep_id]
        return [tok.cls_id, *ids]

    def fit(self, ids: list[int], max_new_tokens: int) -> list[int]:
        """A prompt longer than the model's positions allow (with room for the tokens to generate,
        at least half the window) cut to fit, with one warning: left-to-right keeps its end (what
        is continued), seq2seq its start and the closing [SEP]. It printed an empty line before."""
        limit = self.model.config.max_position_embeddings - (self.readout == "mask")
        room = max(limit - max_new_tokens, limit // 2)
        if len(ids) <= room:
            return ids
        import warnings

        warnings.warn(f"a prompt of {len(ids)} tokens is longer than the {room} the model's {limit} positions "
                      f"leave beside {max_new_tokens} new tokens: cut to {room}", stacklevel=3)
        if self.mode == "seq2seq":
            return ids[:room - 1] + ids[-1:]
        return ids[:1] + ids[len(ids) - room + 1:]

    def __call__(self, text: str, **options) -> str:
        if not isinstance(text, str) or not text.strip():
            raise UserError(f"an empty prompt ({text!r}): nothing to {'answer' if self.mode == 'seq2seq' else 'continue'}")
        from dataclasses import fields

        names = {f.name for f in fields(GenerationConfig)}  # (options may carry generate_ids' max_length too)
        cfg = GenerationConfig(**{**(options["config"].__dict__ if options.get("config") else {}),
                                  **{k: v for k, v in options.items() if k in names}})
        ids = generate_ids(self.model, self.fit(self.prompt_ids(text), cfg.max_new_tokens), mode=self.mode,
                           eos_token_id=self.tokenizer.sep_id,
                           mask_token_id=self.tokenizer.mask_id if self.readout == "mask" else None, **options)
        return self.tokenizer.decode(ids)
