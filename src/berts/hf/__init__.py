"""Hugging Face interop: a berts model directory IS a transformers directory.

``config.json`` carries transformers' fields (``model_type`` "bert", or "albert" when the
embedding is factorized, ...) plus ours (``share_layers``, ...); the weights file carries
transformers' parameter names. One module per format, each a table, found by name:

* formats.py: the ``Format`` spec and the registry (which format saves a model, which reads a directory);
* bert.py, albert.py, electra.py: the layouts (every encoder parameter's name);
* roberta_preln.py (pre-LN models), berts_format.py (what transformers cannot compute), roberta.py
  (post-LN RoBERTa, saved when asked for), modernbert.py (the modern switches): renamings;
* mapping.py: config.json <-> BertConfig and the parameter names both ways, driven by the specs;
* io.py: directories (save, load, read, check; safetensors, shards).

A new format is one module that calls ``register_format``, imported below
(docs/extending/hf-format.md). Every name below is importable from ``berts.hf`` as before.
"""
from __future__ import annotations

# the formats, registered in this order (the order "model_type ... is not supported" lists them)
from berts.hf import bert, albert, electra, roberta_preln, berts_format, roberta, modernbert  # noqa: F401  (registration)
from berts.hf.berts_format import BERTS_WEIGHTS_NAME
from berts.hf.formats import (FALLBACK as BERTS_MODEL_TYPE, FORMATS, WEIGHTS_NAME, Format, get_format,
                              hf_format, model_format, register_format, save_format, source_format)
from berts.hf.io import (ARCHITECTURES, _Architectures, _read_config_json, _saved_config, check_weights,  # noqa: F401
                         check_weights_file, from_pretrained, load, load_config, read_config, read_state_dict,
                         save_pretrained, weight_shapes, weights_file, write_model_files)
from berts.hf.mapping import (_base_name, _normalise_keys, config_from_hf_dict, config_to_hf_dict, head_names,  # noqa: F401
                              hf_state_dict, load_hf_state_dict, name_pairs)
from berts.hf.roberta_preln import ARCHS as ROBERTA_PRELN_ARCHS, NAME as ROBERTA_PRELN
from berts.hf.roberta_preln import from_roberta as from_roberta_preln, to_roberta as to_roberta_preln
from berts.model.encoder import HF_IO

# model.save_pretrained / Model.from_pretrained call these; the model package never imports hf.
HF_IO.update(save=save_pretrained, load=from_pretrained)

__all__ = [
    "ARCHITECTURES", "BERTS_MODEL_TYPE", "BERTS_WEIGHTS_NAME", "FORMATS", "Format", "ROBERTA_PRELN",
    "ROBERTA_PRELN_ARCHS", "WEIGHTS_NAME", "check_weights", "check_weights_file", "config_from_hf_dict",
    "config_to_hf_dict", "from_pretrained", "from_roberta_preln", "get_format", "head_names", "hf_format",
    "hf_state_dict", "load", "load_config", "load_hf_state_dict", "model_format", "name_pairs", "read_config",
    "read_state_dict", "register_format", "save_format", "save_pretrained", "source_format", "to_roberta_preln",
    "weight_shapes", "weights_file", "write_model_files",
]
