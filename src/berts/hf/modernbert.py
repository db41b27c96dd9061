"""transformers' ModernBERT (``model_type`` "modernbert"): berts' modern switches under other names.

ModernBERT is berts' encoder with: pre-LN (``norm_position: pre``) and layer 0 reading the
embedding norm as it is (``first_attn_norm: false``), RoPE with a global and a local base
(``rope_theta`` / ``local_rope_theta``), a sliding window (``local_attention`` = our
``sliding_window``: w // 2 positions each side) on every layer but each
``global_attn_every_n_layers``-th, GeGLU (``ffn: glu``), no token types, one bias switch for the
linears (``attention_bias`` = ``mlp_bias`` = our ``bias``) and one for the norms (``norm_bias``).
Its head (dense, act, norm) is our MLM head's transform (MaskedLM), our pooler with
``pooler_norm`` (sequence classification, on [CLS] or the mean: ``classifier_pooling``), or, on
every token, the token heads' transform (``token_head: transform``: token classification, QA, whose
``classifier`` is our ``qa_outputs``).

A renaming of the BERT layout, with three tensor steps:

* query, key and value are one fused ``Wqkv`` ([q; k; v] rows, as our ``qkv``);
* ``mlp.Wi`` is [input; gate] with act(input) * gate, ours ``[a; gate]`` with act(gate) * a: the
  halves swap;
* biases ModernBERT has none of (``classifier_bias: false`` on the head's dense, ``decoder_bias``,
  the head norm's under ``norm_bias: false``) load as zeros. Saving writes ``classifier_bias:
  true`` and, when our MLM head's norm has a bias the encoder's norms lack, ``norm_bias: true``
  with zero biases for those: the same function either way.

Saved when asked for (``format="modernbert"``) and chosen by itself (``auto``) for a model it can
say; a switch it cannot say (RMSNorm, post-LN, token types, ...) makes saving refuse with one line.
"""
from __future__ import annotations

import torch

from berts.errors import UserError
from berts.hf.formats import Format, class_name, register_format
from berts.hf.roberta_preln import rename

NAME = "modernbert"
PREFIX = "model."  # the encoder's prefix in a task model (ours: "bert.")
ARCHS = {
    "BertModel": "ModernBertModel",
    "BertForMaskedLM": "ModernBertForMaskedLM",
    "BertForSequenceClassification": "ModernBertForSequenceClassification",
    "BertForTokenClassification": "ModernBertForTokenClassification",
    "BertForQuestionAnswering": "ModernBertForQuestionAnswering",
}
TOKEN_HEADS = ("BertForTokenClassification", "BertForQuestionAnswering")
# config.json keys written and read as they are (finetune_data: how a fine-tuned model read its data)
KEPT = ("num_labels", "id2label", "label2id", "problem_type", "finetune_data")
DEFAULT_THETA = {"full_attention": 160000.0, "sliding_attention": 10000.0}  # transformers' defaults
# (BERT-layout name, ModernBERT name), prefixes, first match wins; {b}: the encoder's prefix, {i}: a layer
NAMES = [
    ("{b}embeddings.word_embeddings.", "{b}embeddings.tok_embeddings."),
    ("{b}embeddings.LayerNorm.", "{b}embeddings.norm."),
    ("{b}encoder.layer.{i}.attention.output.dense.", "{b}layers.{i}.attn.Wo."),
    ("{b}encoder.layer.{i}.attention.output.LayerNorm.", "{b}layers.{i}.attn_norm."),
    ("{b}encoder.layer.{i}.intermediate.dense.", "{b}layers.{i}.mlp.Wi."),
    ("{b}encoder.layer.{i}.output.dense.", "{b}layers.{i}.mlp.Wo."),
    ("{b}encoder.layer.{i}.output.LayerNorm.", "{b}layers.{i}.mlp_norm."),
    ("{b}encoder.final_norm.", "{b}final_norm."),
    # the pooler (dense, act, norm on [CLS] or the mean) is ModernBERT's classification head
    ("{b}pooler.dense.", "head.dense."),
    ("{b}pooler.norm.", "head.norm."),
    ("cls.predictions.transform.dense.", "head.dense."),
    ("cls.predictions.transform.LayerNorm.", "head.norm."),
    ("cls.predictions.bias", "decoder.bias"),
    # token classification and QA (token_head transform): the head on every token, then classifier
    ("classifier.transform.dense.", "head.dense."),
    ("classifier.transform.norm.", "head.norm."),
    ("qa_outputs.transform.dense.", "head.dense."),
    ("qa_outputs.transform.norm.", "head.norm."),
    ("classifier.", "classifier."),
    ("qa_outputs.", "classifier."),
]
# ModernBERT's one head.{dense,norm}, by what reads it: ours (dense prefix, norm prefix)
HEADS = {
    "mlm": ("cls.predictions.transform.dense.", "cls.predictions.transform.LayerNorm."),
    "token": ("classifier.transform.dense.", "classifier.transform.norm."),
    "qa": ("qa_outputs.transform.dense.", "qa_outputs.transform.norm."),
    "pooled": ("bert.pooler.dense.", "bert.pooler.norm."),
}
QKV = ("query", "key", "value")


# ------------------------------------------------------------------------- config
def why_not(config, model) -> str | None:
    """What ModernBERT's classes cannot say, or None."""
    checks = (
        (config.norm_position == "pre", f"norm_position {config.norm_position} (ModernBERT is pre-LN)"),
        (not config.first_attn_norm, "first_attn_norm true (ModernBERT's layer 0 reads the embedding norm)"),
        (config.position_embedding_type == "rope", "absolute positions (ModernBERT is RoPE)"),
        (config.ffn == "glu", "ffn standard (ModernBERT is GLU)"),
        (config.norm_type == "layernorm", f"norm_type {config.norm_type}"),
        (config.type_vocab_size == 0, f"type_vocab_size {config.type_vocab_size} (ModernBERT has no token types)"),
        (config.embedding_norm, "embedding_norm false"),
        (config.embedding_size is None, "a factorized embedding (embedding_size)"),
        (config.share_layers == "none", f"share_layers {config.share_layers}"),
        (config.pooler_norm, "pooler_norm false (ModernBERT's head has a norm)"),
    )
    for ok, why in checks:
        if not ok:
            return why
    name = class_name(model)
    if name not in ARCHS:
        return f"{name} has no ModernBERT twin (those with one: {', '.join(ARCHS)})"
    if name in TOKEN_HEADS and config.token_head != "transform":
        return "token_head linear (ModernBERT's token heads read dense, act and norm on every token first)"
    return None


def _layer_types(config) -> list[str]:
    return ["sliding_attention" if config.is_local(i) else "full_attention" for i in range(config.num_hidden_layers)]


def _head_norm_bias(model) -> bool:
    """Whether an MLM head's norm carries a bias the encoder's norms lack (then saved as norm_bias true)."""
    mlm = getattr(model, "mlm", None) if isinstance(model, torch.nn.Module) else None
    return mlm is not None and bool(mlm.norm.bias.detach().abs().max() > 0)


def config_out(d: dict, config, model) -> dict:
    is_mlm = class_name(model) == "BertForMaskedLM"
    window = config.sliding_window or 2 * config.max_position_embeddings  # no window: every layer global
    local_theta = config.local_rope_theta if config.local_rope_theta is not None else config.rope_theta
    out = {
        "model_type": NAME, "architectures": [ARCHS[class_name(model)]],
        "vocab_size": config.vocab_size, "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size, "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads, "hidden_activation": config.hidden_act,
        "max_position_embeddings": config.max_position_embeddings, "initializer_range": config.initializer_range,
        "norm_eps": config.layer_norm_eps, "norm_bias": config.has_norm_bias or _head_norm_bias(model),
        "pad_token_id": config.pad_token_id, "attention_bias": config.bias, "mlp_bias": config.bias,
        "attention_dropout": config.attention_probs_dropout_prob, "embedding_dropout": config.hidden_dropout_prob,
        "mlp_dropout": 0.0, "local_attention": window, "layer_types": _layer_types(config),
        "global_attn_every_n_layers": config.global_attn_every_n_layers if config.sliding_window else 1,
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": config.rope_theta},
                            "sliding_attention": {"rope_type": "default", "rope_theta": local_theta}},
        "global_rope_theta": config.rope_theta, "local_rope_theta": local_theta,
        "classifier_pooling": config.classifier_pooling,
        # ModernBERT's head act: the MLM transform's (our hidden_act) or the pooler's
        "classifier_activation": config.hidden_act if is_mlm else config.pooler_act,
        "classifier_bias": True, "decoder_bias": True, "tie_word_embeddings": True,
        "classifier_dropout": config.classifier_dropout if config.classifier_dropout is not None
        else config.hidden_dropout_prob,
    }
    for key in KEPT:
        if d.get(key) is not None:
            out[key] = d[key]
    if class_name(model) == "BertForQuestionAnswering":
        out["num_labels"] = 2  # start, end: ModernBertForQuestionAnswering sizes its classifier by it
    out.update({k: v for k, v in d.items() if k.startswith("berts_")})
    return out


def _every_n(layer_types: list[str]) -> int:
    """ModernBERT's layer_types -> our global_attn_every_n_layers (layer i global iff i % n == 0)."""
    globals_ = [i for i, t in enumerate(layer_types) if t == "full_attention"]
    if len(globals_) == len(layer_types):
        return 1
    n = globals_[1] if len(globals_) > 1 else len(layer_types)
    if [i for i in range(len(layer_types)) if i % n == 0] != globals_:
        raise UserError(f"config.json: modernbert layer_types {layer_types} are not 'global every n-th layer'")
    return n


def config_in(d: dict) -> dict:
    if d.get("attention_bias", False) != d.get("mlp_bias", False):
        raise UserError("config.json: modernbert with attention_bias != mlp_bias is not supported")
    layers = d.get("num_hidden_layers", 22)
    n = d.get("global_attn_every_n_layers", 3)
    types = d.get("layer_types") or ["sliding_attention" if i % n else "full_attention" for i in range(layers)]
    every = _every_n(types)
    rope = d.get("rope_parameters") or {}
    theta = {t: (rope.get(t) or {}).get("rope_theta") for t in DEFAULT_THETA}
    theta["full_attention"] = theta["full_attention"] or d.get("global_rope_theta") or DEFAULT_THETA["full_attention"]
    theta["sliding_attention"] = (theta["sliding_attention"] or d.get("local_rope_theta")
                                  or DEFAULT_THETA["sliding_attention"])
    is_mlm = any(a.endswith("ForMaskedLM") for a in d.get("architectures") or ())
    act = d.get("hidden_activation", "gelu")
    if is_mlm and d.get("classifier_activation", "gelu") != act:
        raise UserError(f"config.json: modernbert MLM head activation {d.get('classifier_activation')!r} differs "
                        f"from the layers' {act!r}: berts' MLM head uses hidden_act for both")
    bias = bool(d.get("attention_bias", False))
    out = {
        "model_type": "bert", "vocab_size": d.get("vocab_size", 50368), "hidden_size": d.get("hidden_size", 768),
        "intermediate_size": d.get("intermediate_size", 1152), "num_hidden_layers": layers,
        "num_attention_heads": d.get("num_attention_heads", 12), "hidden_act": act,
        "max_position_embeddings": d.get("max_position_embeddings", 8192),
        "initializer_range": d.get("initializer_range", 0.02), "layer_norm_eps": d.get("norm_eps", 1e-5),
        "pad_token_id": d.get("pad_token_id", 50283), "bias": bias,
        "norm_bias": None if bool(d.get("norm_bias", False)) == bias else bool(d.get("norm_bias", False)),
        "hidden_dropout_prob": float(d.get("embedding_dropout", 0.0)),
        "attention_probs_dropout_prob": float(d.get("attention_dropout", 0.0)),
        "classifier_dropout": float(d.get("classifier_dropout", 0.0)),
        "type_vocab_size": 0, "norm_position": "pre", "ffn": "glu", "first_attn_norm": False,
        "position_embedding_type": "rope", "rope_theta": float(theta["full_attention"]),
        "local_rope_theta": float(theta["sliding_attention"]),
        "sliding_window": int(d.get("local_attention", 128)) if every > 1 else None,
        "global_attn_every_n_layers": every,
        "classifier_pooling": d.get("classifier_pooling", "cls"),
        "pooler_act": d.get("classifier_activation", "gelu"), "pooler_norm": True, "token_head": "transform",
    }
    for key in KEPT:
        if key in d:
            out[key] = d[key]
    out.update({k: v for k, v in d.items() if k.startswith("berts_")})
    return out


# ------------------------------------------------------------------------ tensors
def _swap_halves(v):
    """GLU's up matrix [a; gate] <-> [gate; a] (a tensor, or a shape: unchanged)."""
    if not isinstance(v, torch.Tensor):
        return v
    a, b = v.chunk(2, dim=0)
    return torch.cat([b, a], dim=0)


def to_hf(sd: dict, config) -> dict:
    """BERT-layout names -> ModernBERT's (Wqkv fused, Wi halves swapped, zero norm biases where
    config_out says norm_bias true and ours have none)."""
    out, fused = {}, {}
    for k, v in sd.items():
        for j, part in enumerate(QKV):
            tag = f".attention.self.{part}."
            if tag in k:  # collect q, k, v of a layer, fused below
                head, kind = k.split(tag)
                fused.setdefault((head, kind), [None] * 3)[j] = v
                break
        else:
            name = rename(k, NAMES, PREFIX, True) or k
            out[name] = _swap_halves(v) if ".mlp.Wi." in name else v
    for (head, kind), parts in fused.items():
        name = rename(f"{head}.attention.output.dense.{kind}", NAMES, PREFIX, True).replace(".attn.Wo.", ".attn.Wqkv.")
        out[name] = torch.cat(parts, dim=0)
    # ModernBERT's norm_bias is one switch. Without norm biases of ours, only the MLM head's norm
    # has one: nonzero, every norm gets a zero bias (config_out writes norm_bias true); zero, it goes.
    if not config.has_norm_bias and "head.norm.bias" in out:
        if bool(out["head.norm.bias"].abs().max() > 0):
            for n in [k[:-len(".weight")] for k in out if k.endswith("norm.weight")]:
                out.setdefault(f"{n}.bias", torch.zeros_like(out[f"{n}.weight"]))
        else:
            del out["head.norm.bias"]
    return out


def _reader(sd: dict, saved: dict) -> str:
    """Which of our heads reads ModernBERT's ``head.*`` in this directory (a key of HEADS)."""
    archs = saved.get("architectures") or ()
    for suffix, kind in (("ForMaskedLM", "mlm"), ("ForTokenClassification", "token"),
                         ("ForQuestionAnswering", "qa")):
        if any(a.endswith(suffix) for a in archs):
            return kind
    return "mlm" if "decoder.bias" in sd else "pooled"


def from_hf(sd: dict, saved: dict) -> dict:
    """ModernBERT's tensors (or shapes) -> BERT-layout names; the biases it lacks as zeros."""
    out = {}
    hidden = saved.get("hidden_size", 768)
    kind = _reader(sd, saved)
    dense, norm = HEADS[kind]
    if kind == "pooled" and not any(k.startswith(PREFIX) for k in sd):  # a bare encoder's own pooler
        dense, norm = dense[len("bert."):], norm[len("bert."):]
    for k, v in sd.items():
        if k == "decoder.weight":
            continue  # the tied copy of the word embeddings
        if ".attn.Wqkv." in k:
            head, part_kind = k.split(".attn.Wqkv.")
            base = rename(f"{head}.attn.Wo.{part_kind}", NAMES, PREFIX, False)
            base = base[:base.index(".attention.output.dense.")]
            parts = v.chunk(3, dim=0) if isinstance(v, torch.Tensor) else [(v[0] // 3, *v[1:])] * 3
            for part, t in zip(QKV, parts):
                out[f"{base}.attention.self.{part}.{part_kind}"] = t
            continue
        if k.startswith(("head.dense.", "head.norm.")):  # the pooler, the MLM transform or a token head
            name = (dense if k.startswith("head.dense.") else norm) + k.split(".", 2)[2]
        elif kind == "qa" and k.startswith("classifier."):
            name = "qa_outputs." + k[len("classifier."):]
        else:
            name = rename(k, NAMES, PREFIX, False) or k
        out[name] = _swap_halves(v) if ".mlp.Wi." in k else v
    tensors = any(isinstance(v, torch.Tensor) for v in out.values())
    zeros = (lambda n: torch.zeros(n)) if tensors else (lambda n: (n,))
    # classifier_bias false: the head's dense keeps a zero bias (and norm_bias false: the MLM transform's norm)
    if dense + "weight" in out:
        out.setdefault(dense + "bias", zeros(hidden))
    if kind == "mlm":
        out.setdefault(norm + "bias", zeros(hidden))
        out.setdefault("cls.predictions.bias", zeros(saved.get("vocab_size", 50368)))  # decoder_bias false
    return out


MODERNBERT = register_format(Format(
    name=NAME, renames="bert", architectures=ARCHS, auto=True, why_not=why_not,
    config_out=config_out, config_in=config_in, to_hf=to_hf, from_hf=from_hf,
    ignore=r"^decoder\.weight$",
))
