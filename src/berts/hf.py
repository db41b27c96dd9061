"""Hugging Face interop: a berts model directory IS a transformers directory.

``config.json`` carries transformers' fields (``model_type`` "bert", or "albert" when the
embedding is factorized) plus ours (``share_layers``, ...); ``model.safetensors`` carries
transformers' parameter names. This file is the whole mapping, both ways.

* BERT format: one entry per layer. A shared layer (``share_layers``) is written once per
  layer it serves, so transformers' BertModel computes exactly what berts computes; berts
  ties it again on load.
* ALBERT format (``embedding_size`` set): ``albert_layer_groups`` with one group when all
  layers are shared, else one group per layer.

The encoder's names are tabled here; a head's come from its declarations: the task model's
``hf_architectures`` (heads.py) and each objective's ``hf_names`` (objectives/). A parameter no
table knows makes saving fail with one line that lists it.
"""
from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from berts.config import BertConfig, preset, preset_names
from berts.errors import UserError
from berts.fileio import atomic_write_dir
from berts.heads import architectures
from berts.objectives import Objective
from berts.version import __version__

WEIGHTS_NAME = "model.safetensors"
_IGNORED_ON_LOAD = re.compile(
    r"(^|\.)(position_ids|token_type_ids)$|predictions\.decoder\.(weight|bias)$|^cls\.predictions\.decoder"
)

class _Architectures(Mapping):
    """{HF architecture: our task class name}, read live from the registered task models."""

    def __getitem__(self, key):
        return architectures()[key].__name__

    def __iter__(self):
        return iter(architectures())

    def __len__(self):
        return len(architectures())


ARCHITECTURES = _Architectures()


def hf_format(config: BertConfig) -> str:
    """ "albert" when the embedding is factorized, else "bert"."""
    return "albert" if config.embedding_size is not None else "bert"


# ----------------------------------------------------------------------------- config
def config_to_hf_dict(config: BertConfig, model) -> dict:
    """config.json for ``model`` (a model or its class: its ``hf_architectures`` name it)."""
    d = config.to_dict()
    fmt = hf_format(config)
    albert = fmt == "albert"
    d["model_type"] = fmt
    d["architectures"] = [model.hf_architectures[fmt]]
    d["tie_word_embeddings"] = True
    if albert:
        d["num_hidden_groups"] = 1 if config.share_layers == "all" else config.num_hidden_layers
        d["inner_group_num"] = 1
        d["classifier_dropout_prob"] = config.classifier_dropout if config.classifier_dropout is not None else 0.1
    for o in (model.modules() if isinstance(model, torch.nn.Module) else ()):
        if isinstance(o, Objective):
            d.update(o.hf_config(fmt))  # what transformers needs to size its head (ALBERT's SOP)
    if d["id2label"] is None:
        d.pop("id2label"), d.pop("label2id")
    else:
        d["id2label"] = {str(k): v for k, v in d["id2label"].items()}
    if config.problem_type is None:
        d.pop("problem_type")
    d["berts_version"] = __version__
    return d


def config_from_hf_dict(d: dict) -> BertConfig:
    d = dict(d)
    model_type = d.get("model_type", "bert")
    if model_type not in ("bert", "albert"):
        raise UserError(f"config.json: model_type {model_type!r} is not supported (bert and albert are)")
    if model_type == "albert":
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
    else:
        d["embedding_size"] = None if d.get("embedding_size") in (None, d.get("hidden_size")) else d["embedding_size"]
    if d.get("id2label") is not None:
        d["id2label"] = {int(k): v for k, v in d["id2label"].items()}
        # transformers writes LABEL_0/LABEL_1 by default: keep num_labels consistent with it
        d["num_labels"] = len(d["id2label"])
    return BertConfig.from_dict(d)


# ---------------------------------------------------------------------- parameter names
_BERT_LAYER = [
    ("attention.out.", "attention.output.dense."),
    ("attention.norm.", "attention.output.LayerNorm."),
    ("ffn.up.", "intermediate.dense."),
    ("ffn.down.", "output.dense."),
    ("ffn.norm.", "output.LayerNorm."),
]
_ALBERT_LAYER = [
    ("attention.out.", "attention.dense."),
    ("attention.norm.", "attention.LayerNorm."),
    ("ffn.up.", "ffn."),
    ("ffn.down.", "ffn_output."),
    ("ffn.norm.", "full_layer_layer_norm."),
]


def _base_name(name: str, config: BertConfig) -> list[tuple[str, int | None]]:
    """Our BertModel-relative parameter name -> [(HF base-relative name, qkv chunk or None)]."""
    albert = config.embedding_size is not None
    if name.startswith("embeddings.projection."):
        return [("encoder.embedding_hidden_mapping_in." + name.split(".")[-1], None)]
    if name.startswith("embeddings."):
        return [(name, None)]
    if name.startswith("pooler."):
        return [("pooler." + name.split(".")[-1], None)] if albert else [(name, None)]
    m = re.match(r"encoder\.layers\.(\d+)\.(.*)$", name)
    if not m:
        raise KeyError(name)
    i, rest = int(m.group(1)), m.group(2)
    if albert:
        groups = 1 if config.share_layers == "all" else config.num_hidden_layers
        if i >= groups:
            return []
        prefix, table, qkv = f"encoder.albert_layer_groups.{i}.albert_layers.0.", _ALBERT_LAYER, "attention."
    else:
        prefix, table, qkv = f"encoder.layer.{i}.", _BERT_LAYER, "attention.self."
    if rest.startswith("attention.qkv."):
        kind = rest.split(".")[-1]
        return [(f"{prefix}{qkv}{part}.{kind}", c) for c, part in enumerate(("query", "key", "value"))]
    for ours, theirs in table:
        if rest.startswith(ours):
            return [(prefix + theirs + rest[len(ours):], None)]
    raise KeyError(name)


def head_names(model) -> list[tuple[str, str]]:
    """[(our name prefix, HF name prefix)] for the parameters outside the encoder: the task model's
    own ``hf_names`` and each objective's, under the attribute that holds it."""
    fmt = hf_format(model.config)
    table = [(ours, theirs[fmt]) for ours, theirs in getattr(model, "hf_names", {}).items()]
    for attr, child in model.named_modules():
        if isinstance(child, Objective) and attr:
            table += [(f"{attr}.{ours}", theirs[fmt]) for ours, theirs in child.hf_names.items()]
    return table


def name_pairs(model) -> list[tuple[str, str, int | None]]:
    """(HF name, our parameter name, qkv chunk) for every parameter, shared ones once per use."""
    config = model.config
    is_base = not hasattr(model, "bert")
    hf_prefix = "" if is_base else ("albert." if config.embedding_size is not None else "bert.")
    heads = head_names(model)
    pairs, unknown = [], []
    for name, _ in model.named_parameters(remove_duplicate=False):
        try:
            if is_base or name.startswith("bert."):
                base = name if is_base else name[len("bert."):]
                for hf, chunk in _base_name(base, config):
                    pairs.append((hf_prefix + hf, name, chunk))
            else:
                ours, theirs = next((o, t) for o, t in heads if name.startswith(o))
                pairs.append((theirs + name[len(ours):], name, None))
        except (KeyError, StopIteration):
            unknown.append(name)
    if unknown:
        raise UserError(f"{type(model).__name__}: no Hugging Face name for parameter(s) {', '.join(unknown)} "
                        "(declare them in the objective's or the model's hf_names)")
    return pairs


def hf_state_dict(model) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters(remove_duplicate=False))
    out = {}
    for hf, ours, chunk in name_pairs(model):
        t = params[ours].detach()
        if chunk is not None:
            t = t.chunk(3, dim=0)[chunk]
        out[hf] = t.to("cpu").contiguous().clone()
    return out


def _normalise_keys(sd: dict, model) -> dict:
    """Old names (gamma/beta) and base/task prefix differences, as transformers tolerates them."""
    sd = {re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", k)): v for k, v in sd.items()}
    if any(k.endswith("predictions.decoder.bias") for k in sd) and not any(
            k.endswith("predictions.bias") for k in sd):
        sd = {(k.replace("predictions.decoder.bias", "predictions.bias")): v for k, v in sd.items()}
    is_base = not hasattr(model, "bert")
    prefix = "albert." if model.config.embedding_size is not None else "bert."
    if is_base:
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    elif not any(k.startswith(prefix) for k in sd):
        sd = {(prefix + k if k.split(".")[0] in ("embeddings", "encoder", "pooler") else k): v
              for k, v in sd.items()}
    return sd


def load_hf_state_dict(model, sd: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False,
                       source: str = "checkpoint") -> tuple[list[str], list[str]]:
    """Copy HF-named tensors into ``model``. Returns (missing HF names, unexpected HF names)."""
    sd = _normalise_keys(sd, model)
    params = dict(model.named_parameters(remove_duplicate=False))
    missing, used = [], set()
    with torch.no_grad():
        for hf, ours, chunk in name_pairs(model):
            if hf not in sd:
                missing.append(hf)
                continue
            target = params[ours] if chunk is None else params[ours].chunk(3, dim=0)[chunk]
            value = sd[hf]
            used.add(hf)
            if tuple(value.shape) != tuple(target.shape):
                if ignore_mismatched_sizes:
                    missing.append(hf)
                    continue
                raise UserError(f"{source}: {hf} has shape {tuple(value.shape)}, the model expects "
                                f"{tuple(target.shape)} (check the config, or pass ignore_mismatched_sizes)")
            target.copy_(value.to(target.dtype))
    unexpected = [k for k in sd if k not in used and not _IGNORED_ON_LOAD.search(k)]
    return missing, unexpected


# --------------------------------------------------------------------- directories
def write_model_files(model, directory: Path, tokenizer=None) -> None:
    """config.json + model.safetensors (+ tokenizer files) into an existing directory."""
    from safetensors.torch import save_file

    directory = Path(directory)
    config = config_to_hf_dict(model.config, model)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(hf_state_dict(model), str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)


def save_pretrained(model, directory, tokenizer=None) -> None:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a directory")

    def write(tmp: Path):
        if directory.is_dir():  # keep whatever else lives there (tokenizer, trainer state, ...)
            for item in directory.iterdir():
                if item.name not in ("config.json", WEIGHTS_NAME):
                    (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        write_model_files(model, tmp, tokenizer)

    atomic_write_dir(directory, write)


def load_config(path) -> BertConfig:
    """A config from a config.json (ours or transformers'), a model directory, or a preset name."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if not p.exists():
        if str(path) in preset_names():
            return preset(str(path))
        raise UserError(f"{path}: no such config file or preset (presets: {', '.join(preset_names())})")
    try:
        d = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    return config_from_hf_dict(d)


def read_config(directory) -> BertConfig:
    path = Path(directory)
    if not path.exists():
        raise UserError(f"{path}: no such model directory")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json)")
    return load_config(path / "config.json")


def read_state_dict(directory) -> dict[str, torch.Tensor]:
    try:
        return _read_state_dict(Path(directory))
    except UserError:
        raise
    except Exception as exc:  # a truncated or corrupt weights file
        raise UserError(f"{directory}: cannot read the weights ({type(exc).__name__}: {exc})") from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if (path / WEIGHTS_NAME).is_file():
        return load_file(str(path / WEIGHTS_NAME))
    index = path / "model.safetensors.index.json"
    if index.is_file():
        sd = {}
        for shard in sorted(set(json.loads(index.read_text())["weight_map"].values())):
            sd.update(load_file(str(path / shard)))
        return sd
    if (path / "pytorch_model.bin").is_file():
        return torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise UserError(f"{path}: no weights (model.safetensors or pytorch_model.bin)")


def from_pretrained(cls, directory, ignore_mismatched_sizes: bool = False, **config_overrides):
    config = read_config(directory)
    if config_overrides:
        config = config.replace(**config_overrides)
    model = cls(config)
    missing, unexpected = load_hf_state_dict(model, read_state_dict(directory), ignore_mismatched_sizes,
                                             source=str(directory))
    if missing:
        warnings.warn(f"{directory}: {len(missing)} weights of {cls.__name__} were not in the checkpoint "
                      f"and are newly initialised: {', '.join(sorted(set(missing)))}", stacklevel=3)
    if unexpected:
        warnings.warn(f"{directory}: {len(unexpected)} checkpoint weights are not used by {cls.__name__}: "
                      f"{', '.join(sorted(unexpected))}", stacklevel=3)
    model.loading_info = {"missing_keys": missing, "unexpected_keys": unexpected}
    return model


def load(directory, **config_overrides):
    """The right task model for a saved directory (ours or transformers')."""
    path = Path(directory)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json)")
    try:
        archs = json.loads((path / "config.json").read_text()).get("architectures") or ["BertModel"]
    except json.JSONDecodeError as exc:
        raise UserError(f"{path / 'config.json'}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    cls = architectures().get(archs[0])
    if cls is None:
        raise UserError(f"{path}: architecture {archs[0]} is not supported "
                        f"(supported: {', '.join(sorted(architectures()))})")
    return cls.from_pretrained(path, **config_overrides)
