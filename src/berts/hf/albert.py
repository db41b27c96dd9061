"""transformers' ALBERT (``model_type`` "albert"): the layout of a factorized embedding
(``embedding_size`` set). ``albert_layer_groups`` with one group when all layers are shared, else
one group per layer (no other grouping is supported).
"""
from __future__ import annotations

from berts.errors import UserError
from berts.hf.formats import Format, register_format, standard_why_not

NAMES = (
    ("embeddings.projection.", "encoder.embedding_hidden_mapping_in."),
    ("embeddings.", "embeddings."),
    ("encoder.final_norm.", "encoder.final_norm."),
    ("pooler.dense.", "pooler."),
)
# within encoder.layers.{i}. -> within encoder.albert_layer_groups.{i}.albert_layers.0.
LAYER = (
    ("attention.out.", "attention.dense."),
    ("attention.norm.", "attention.LayerNorm."),
    ("ffn.up.", "ffn."),
    ("ffn.down.", "ffn_output."),
    ("ffn.norm.", "full_layer_layer_norm."),
)


def layer_prefix(i: int, config) -> str | None:
    groups = 1 if config.share_layers == "all" else config.num_hidden_layers
    return f"encoder.albert_layer_groups.{i}.albert_layers.0." if i < groups else None  # shared: written once


def config_out(d: dict, config, model) -> dict:
    d["num_hidden_groups"] = 1 if config.share_layers == "all" else config.num_hidden_layers
    d["inner_group_num"] = 1
    d["classifier_dropout_prob"] = config.classifier_dropout if config.classifier_dropout is not None else 0.1
    return d


def config_in(d: dict) -> dict:
    layers = d.get("num_hidden_layers", 12)
    groups, inner = d.get("num_hidden_groups", 1), d.get("inner_group_num", 1)
    if inner != 1 or groups not in (1, layers):
        raise UserError(f"config.json: ALBERT with num_hidden_groups={groups}, inner_group_num={inner} "
                        "is not supported (1 group shared by all layers, or one group per layer)")
    if "share_layers" not in d:
        d["share_layers"] = "all" if groups == 1 else "none"
    d.setdefault("embedding_size", 128)
    d.setdefault("hidden_act", "gelu_new")
    if d.get("classifier_dropout") is None and "classifier_dropout_prob" in d:
        d["classifier_dropout"] = d["classifier_dropout_prob"]
    return d


ALBERT = register_format(Format(
    name="albert", prefix="albert.", names=NAMES, layer=LAYER, qkv="attention.",
    layer_prefix=layer_prefix, why_not=standard_why_not, config_out=config_out, config_in=config_in,
))
