"""transformers' RoBERTa-PreLayerNorm (``model_type`` "roberta-prelayernorm"): how a pre-LN model
(``norm_position: pre``) is saved when nothing else in it is beyond transformers
(RobertaPreLayerNormModel / ForMaskedLM / ForSequenceClassification: the same function, tested both
ways). A renaming of the BERT layout: the table below, and RoBERTa's position offset.

(issue 11) A saved directory must never load silently as a different function: a pre-LN model
this format cannot say (ALBERT's factorized embedding, NSP/SOP/SBO heads, an MLM head whose
activation is not gelu) is the berts format (berts_format.py).
"""
from __future__ import annotations

import re

import torch

from berts.errors import UserError
from berts.hf.formats import Format, class_name, modern_why_not, register_format

NAME = "roberta-prelayernorm"
# our task class -> transformers' architecture with the same function
ARCHS = {
    "BertModel": "RobertaPreLayerNormModel",
    "BertForMaskedLM": "RobertaPreLayerNormForMaskedLM",
    "BertForSequenceClassification": "RobertaPreLayerNormForSequenceClassification",
}
# (BERT-layout HF name, RoBERTa name), prefixes; first match wins, either way. {b}: the encoder's
# prefix ("bert." <-> "roberta_prelayernorm." in a task model, nothing in a bare encoder), {i}: a
# layer. Pre-LN's norms sit before their sublayer: transformers names the attention's
# attention.LayerNorm and the FFN's intermediate.LayerNorm; the final one is the model's LayerNorm.
PRE_LN_NAMES = [
    ("{b}encoder.layer.{i}.attention.output.LayerNorm.", "{b}encoder.layer.{i}.attention.LayerNorm."),
    ("{b}encoder.layer.{i}.output.LayerNorm.", "{b}encoder.layer.{i}.intermediate.LayerNorm."),
    ("{b}encoder.final_norm.", "{b}LayerNorm."),
]
# the rest is RoBERTa's, pre-LN or not (roberta.py reads it too)
ROBERTA_NAMES = [
    ("{b}encoder.", "{b}encoder."),
    ("{b}embeddings.", "{b}embeddings."),
    # BertForSequenceClassification: pooler (dense, tanh on [CLS]) + dropout + linear is
    # RobertaClassificationHead (dropout, dense, tanh, dropout, out_proj on <s>): equal in eval
    ("bert.pooler.dense.", "classifier.dense."),
    ("classifier.", "classifier.out_proj."),
    ("{b}pooler.", "{b}pooler."),
    # the MLM head: transform dense, gelu, LayerNorm, decoder tied to the word embeddings
    ("cls.predictions.transform.dense.", "lm_head.dense."),
    ("cls.predictions.transform.LayerNorm.", "lm_head.layer_norm."),
    ("cls.predictions.bias", "lm_head.bias"),
]
# RoBERTa's positions start at pad_token_id + 1 (create_position_ids_from_input_ids): its table has
# pad_token_id + 1 more rows, the first ones never read by a real token (written as zeros).
def positions(prefix: str) -> re.Pattern:
    return re.compile(rf"^(bert\.|{re.escape(prefix)})?embeddings\.position_embeddings\.weight$")


def rename(name: str, table, prefix: str, to_roberta: bool) -> str | None:
    """One parameter name, BERT layout <-> RoBERTa's (encoder prefix ``prefix``); None: no rule."""
    ours, theirs = ("bert.", prefix) if to_roberta else (prefix, "bert.")
    for bert, rob in table:
        src, dst = (bert, rob) if to_roberta else (rob, bert)
        pattern = "^" + re.escape(src).replace(r"\{b\}", f"(?P<b>{re.escape(ours)})?").replace(
            r"\{i\}", r"(?P<i>\d+)")
        m = re.match(pattern, name)
        if m:
            groups = m.groupdict()
            out = dst.replace("{b}", theirs if groups.get("b") else "").replace("{i}", groups.get("i") or "")
            return out + name[m.end():]
    return None


def to_roberta(sd: dict, config, table=PRE_LN_NAMES + ROBERTA_NAMES, prefix="roberta_prelayernorm.") -> dict:
    """A BERT-layout HF state dict -> RoBERTa's names and position table."""
    out, position_table = {}, positions(prefix)
    for k, v in sd.items():
        if position_table.match(k):
            v = torch.cat([v.new_zeros(config.pad_token_id + 1, v.shape[1]), v])
        out[rename(k, table, prefix, True) or k] = v
    return out


def from_roberta(sd: dict, pad_token_id: int, table=PRE_LN_NAMES + ROBERTA_NAMES,
                 prefix="roberta_prelayernorm.") -> dict:
    """RoBERTa's tensors (or shapes) -> the BERT layout; its tied decoder is dropped."""
    out, position_table = {}, positions(prefix)
    for k, v in sd.items():
        if k.startswith("lm_head.decoder."):
            continue  # the tied copy of the word embeddings (and of lm_head.bias)
        k = rename(k, table, prefix, False) or k
        if position_table.match(k):
            v = v[pad_token_id + 1:] if isinstance(v, torch.Tensor) else (v[0] - pad_token_id - 1, *v[1:])
        out[k] = v
    return out


def roberta_why_not(config, model, archs=ARCHS) -> str | None:
    """What RoBERTa's classes cannot say besides the norm position, or None."""
    modern = modern_why_not(config)
    if modern:
        return modern
    if config.ffn != "standard" or not config.bias:
        return "ffn glu or bias false"
    if config.embedding_size is not None:
        return "a factorized embedding (embedding_size)"
    name = class_name(model)
    if name not in archs:
        return f"{name} has no RoBERTa twin (those with one: {', '.join(archs)})"
    if name == "BertForMaskedLM" and config.hidden_act != "gelu":
        return f"RoBERTa's lm_head is gelu, the model's is {config.hidden_act}"
    return None


def why_not(config, model) -> str | None:
    if config.norm_position != "pre":
        return f"norm_position {config.norm_position} (this format is pre-LN)"
    return roberta_why_not(config, model)


def roberta_config_out(d: dict, config, model, name=NAME, archs=ARCHS) -> dict:
    d["model_type"] = name
    d["architectures"] = [archs[class_name(model)]]
    d["max_position_embeddings"] = config.max_position_embeddings + config.pad_token_id + 1
    d["position_embedding_type"] = "absolute"
    return d


def roberta_config_in(d: dict, name=NAME, **switches) -> dict:
    if d.get("position_embedding_type", "absolute") != "absolute" or d.get("is_decoder"):
        raise UserError(f"config.json: {name} with relative positions or as a decoder is not supported")
    pad = d.get("pad_token_id", 1)
    return dict(d, model_type="bert", pad_token_id=pad, **switches,
                max_position_embeddings=d.get("max_position_embeddings", 514) - pad - 1)


ROBERTA_PRELN = register_format(Format(
    name=NAME, renames="bert", architectures=ARCHS, auto=True, why_not=why_not,
    config_out=roberta_config_out,
    config_in=lambda d: roberta_config_in(d, norm_position="pre"),
    to_hf=lambda sd, config: to_roberta(sd, config),
    from_hf=lambda sd, saved: from_roberta(sd, saved.get("pad_token_id", 1)),
))
