"""transformers' ELECTRA (``model_type`` "electra"): the BERT layout with two differences of names,
the prefix ``electra.``, and E != H is ``electra.embeddings_project`` (our ``embeddings.projection``),
not ALBERT's layer groups. A task class with ``hf_model_type = "electra"`` (berts.model.electra:
the discriminator and the generator, whose heads name themselves) is written in it whatever its
embedding width; an ELECTRA directory also loads into a BERT-format model (fine-tuning): its
names are recognised by ``detect``.
"""
from __future__ import annotations

from berts.hf.bert import LAYER, NAMES as BERT_NAMES
from berts.hf.formats import Format, register_format, standard_why_not

NAMES = (("embeddings.projection.", "embeddings_project."), *BERT_NAMES[1:])


def config_out(d: dict, config, model) -> dict:
    d["embedding_size"] = config.emb_size  # ElectraConfig's default is 128: always say it
    return d


def config_in(d: dict) -> dict:
    e = d.get("embedding_size", 128)  # E == H: no embeddings_project, our embedding_size None
    d["embedding_size"] = None if e == d.get("hidden_size", 768) else e
    return d


ELECTRA = register_format(Format(
    name="electra", prefix="electra.", names=NAMES, layer=LAYER, qkv="attention.self.",
    layer_prefix=lambda i, config: f"encoder.layer.{i}.",
    detect=("electra.", "discriminator_predictions.", "generator_"),
    ignore=r"^generator_lm_head\.weight$",  # the generator's decoder: tied to the word embeddings
    why_not=standard_why_not, config_out=config_out, config_in=config_in,
))
