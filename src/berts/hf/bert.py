"""transformers' BERT (``model_type`` "bert"): the layout every other format starts from.

One entry per layer. A shared layer (``share_layers``) is written once per layer it serves, so
transformers' BertModel computes exactly what berts computes; berts ties it again on load. The
heads' names are the task model's and the objectives' ``hf_names["bert"]``.
"""
from __future__ import annotations

from berts.hf.formats import Format, register_format, standard_why_not

# our BertModel-relative prefix -> transformers' BertModel-relative prefix, first match wins
NAMES = (
    ("embeddings.projection.", "encoder.embedding_hidden_mapping_in."),  # E != H (an ELECTRA source)
    ("embeddings.", "embeddings."),
    ("encoder.final_norm.", "encoder.final_norm."),  # pre-LN, read by the renamings (roberta-prelayernorm)
    ("pooler.", "pooler."),
)
# within encoder.layers.{i}. -> within encoder.layer.{i}. (query/key/value: attention.self.)
LAYER = (
    ("attention.out.", "attention.output.dense."),
    ("attention.norm.", "attention.output.LayerNorm."),
    ("ffn.up.", "intermediate.dense."),
    ("ffn.down.", "output.dense."),
    ("ffn.norm.", "output.LayerNorm."),
)
# names transformers writes that are tied copies or buffers (not reported as unused on load)
IGNORE = r"(^|\.)(position_ids|token_type_ids)$|predictions\.decoder\.(weight|bias)$|^cls\.predictions\.decoder"


def config_in(d: dict) -> dict:
    d["embedding_size"] = None if d.get("embedding_size") in (None, d.get("hidden_size")) else d["embedding_size"]
    return d


BERT = register_format(Format(
    name="bert", prefix="bert.", names=NAMES, layer=LAYER, qkv="attention.self.",
    layer_prefix=lambda i, config: f"encoder.layer.{i}.", ignore=IGNORE,
    why_not=standard_why_not, config_in=config_in,
))
