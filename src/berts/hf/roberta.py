"""transformers' RoBERTa (``model_type`` "roberta"): post-LN BERT under other names, positions
offset by pad_token_id + 1. The worked example of docs/extending/hf-format.md.

A renaming of the BERT layout: the table and the position offset are roberta-prelayernorm's without
its pre-LN rows (roberta_preln.py), so this module is the spec alone. Never chosen by itself (a
post-LN model saves as "bert"): ``save_pretrained(model, dir, format="roberta")`` asks for it, and
a RoBERTa directory (transformers' or ours) loads by its model_type.
"""
from __future__ import annotations

from berts.hf.formats import Format, register_format
from berts.hf.roberta_preln import (ROBERTA_NAMES, from_roberta, roberta_config_in, roberta_config_out,
                                    roberta_why_not, to_roberta)

NAME = "roberta"
PREFIX = "roberta."  # the encoder's prefix in a task model (ours: "bert.")
# our task class -> transformers' class with the same function (in eval mode)
ARCHS = {
    "BertModel": "RobertaModel",
    "BertForMaskedLM": "RobertaForMaskedLM",
    "BertForSequenceClassification": "RobertaForSequenceClassification",
}


def why_not(config, model) -> str | None:
    if config.norm_position != "post":
        return f"norm_position {config.norm_position} (RoBERTa is post-LN; roberta-prelayernorm is pre-LN)"
    return roberta_why_not(config, model, ARCHS)


ROBERTA = register_format(Format(
    name=NAME, renames="bert", architectures=ARCHS, why_not=why_not,  # auto=False: only when asked for
    config_out=lambda d, config, model: roberta_config_out(d, config, model, NAME, ARCHS),
    config_in=lambda d: roberta_config_in(d, NAME, norm_position="post"),
    to_hf=lambda sd, config: to_roberta(sd, config, ROBERTA_NAMES, PREFIX),
    from_hf=lambda sd, saved: from_roberta(sd, saved.get("pad_token_id", 1), ROBERTA_NAMES, PREFIX),
))
