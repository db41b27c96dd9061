"""The berts format (``model_type`` "berts"): a model transformers cannot compute (``ffn: glu``,
``bias: false``, or pre-LN where roberta-prelayernorm cannot say it).

config.json with model_type "berts" (transformers' Auto classes refuse it) and the weights in
berts.safetensors (transformers' BertModel finds no weights file and raises; it would otherwise
zero-initialise the missing biases silently). The names inside are the model's layout's (bert,
albert or electra: ``berts_layout``); berts.load reads it back exactly.
"""
from __future__ import annotations

from berts.hf.formats import FALLBACK, Format, own_layout, register_format

BERTS_WEIGHTS_NAME = "berts.safetensors"


def config_out(d: dict, config, model) -> dict:
    d["model_type"] = FALLBACK
    d["berts_layout"] = own_layout(config, model)  # the names inside
    return d


def config_in(d: dict) -> dict:
    return dict(d, model_type=d.get("berts_layout", "bert"))


BERTS = register_format(Format(
    name=FALLBACK, renames="any", weights_name=BERTS_WEIGHTS_NAME,
    config_out=config_out, config_in=config_in,
))
