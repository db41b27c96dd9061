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
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from berts.config import BertConfig, preset, preset_names
from berts.errors import UserError
from berts.fileio import TOKENIZER_NAMES, atomic_write_dir, carry_over, recover_dir
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
    from safetensors.torch import save

    directory = Path(directory)
    config = config_to_hf_dict(model.config, model)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # bytes written by us, not save_file(): a write of ours raises on a full disk, whatever the
    # library does, and atomic_write_dir turns that into one line naming the directory
    with open(directory / WEIGHTS_NAME, "wb") as f:
        f.write(save(hf_state_dict(model), metadata={"format": "pt"}))
    if tokenizer is not None:
        # into this directory, which its writer publishes atomically (not a second atomic write)
        getattr(tokenizer, "write_files", tokenizer.save_pretrained)(directory)


def save_pretrained(model, directory, tokenizer=None) -> None:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a directory")

    def write(tmp: Path):
        if directory.is_dir():  # keep whatever else lives there (tokenizer, trainer state, ...)
            # (carried files are hard links: never carry one that is written again below)
            rewritten = {"config.json", WEIGHTS_NAME} | (set(TOKENIZER_NAMES) if tokenizer is not None else set())
            carry_over(directory, tmp, skip=rewritten)
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
    d = _read_config_json(p)
    try:
        return config_from_hf_dict(d)
    except UserError as exc:  # name the file: "invalid model config: ..." alone does not say which
        raise UserError(f"{p}: {str(exc).removeprefix('config.json: ')}") from None
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong type
        raise UserError(f"{p}: invalid model config ({exc})") from None


def _read_config_json(p: Path) -> dict:
    """The object in a config.json, or one line naming the file."""
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(d, dict):
        raise UserError(f"{p}: not a model config (a JSON object expected, got {type(d).__name__})")
    return d


def check_weights_file(path) -> str | None:
    """Why a safetensors file is not whole (missing, empty, truncated, bad header), or None. Reads the
    header only: the file must be exactly as long as the header says (a cheap check a resume or
    ``berts info`` can afford on a model of any size)."""
    import struct

    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path}: truncated ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path}: truncated ({size} bytes, the header alone needs {n + 8})"
            header = json.loads(f.read(n))
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, struct.error) as exc:
        return f"{path}: not a safetensors file ({getattr(exc, 'strerror', None) or exc})"
    if not isinstance(header, dict):
        return f"{path}: not a safetensors file (bad header)"
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, ValueError, IndexError):
        return f"{path}: not a safetensors file (bad header)"
    if 8 + n + end != size:
        return (f"{path}: truncated ({size} bytes, the header says {8 + n + end})" if 8 + n + end > size
                else f"{path}: {size - 8 - n - end} bytes beyond the tensors its header lists")
    return None


def check_weights(model, directory) -> dict:
    """Do a directory's weights fit ``model`` (a meta-device model is enough)? Reads headers only.
    Returns {"tensors", "missing", "unexpected"}; a weights file that is not whole, or a weight whose
    shape does not fit the config, is a one-line UserError naming the file."""
    directory = Path(directory)
    if (directory / WEIGHTS_NAME).is_file():
        files = [directory / WEIGHTS_NAME]
    elif (directory / "model.safetensors.index.json").is_file():
        index = _read_config_json(directory / "model.safetensors.index.json")
        files = [directory / f for f in sorted(set((index.get("weight_map") or {}).values()))]
    else:
        raise UserError(f"{directory}: no weights ({WEIGHTS_NAME})")
    shapes = {}
    for f in files:
        problem = check_weights_file(f)
        if problem:
            raise UserError(problem)
        shapes.update(weight_shapes(f))
    shapes = _normalise_keys(shapes, model)
    params = dict(model.named_parameters(remove_duplicate=False))
    missing, bad, used = [], [], set()
    for hf, ours, chunk in name_pairs(model):
        want = tuple(params[ours].shape)
        if chunk is not None:
            want = (want[0] // 3, *want[1:])
        if hf not in shapes:
            missing.append(hf)
            continue
        used.add(hf)
        if shapes[hf] != want:
            bad.append(f"{hf} {shapes[hf]}, the config needs {want}")
    if bad:
        raise UserError(f"{files[0]}: {len(bad)} weight(s) do not fit {directory / 'config.json'} "
                        f"(e.g. {bad[0]})")
    unexpected = [k for k in shapes if k not in used and not _IGNORED_ON_LOAD.search(k)]
    return {"tensors": len(shapes), "missing": sorted(set(missing)), "unexpected": sorted(unexpected)}


def weight_shapes(path) -> dict[str, tuple[int, ...]]:
    """{name: shape} of a safetensors file, from its header (no tensor is read)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}


def read_config(directory) -> BertConfig:
    path = Path(directory)
    recover_dir(path)  # a final/ or best/ left as .NAME.old-* by a crash mid-replace (fileio)
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
    recover_dir(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json)")
    archs = _read_config_json(path / "config.json").get("architectures") or ["BertModel"]
    if not isinstance(archs, list) or not isinstance(archs[0], str):
        raise UserError(f"{path / 'config.json'}: architectures must be a list of names, got {archs!r}")
    cls = architectures().get(archs[0])
    if cls is None:
        raise UserError(f"{path}: architecture {archs[0]} is not supported "
                        f"(supported: {', '.join(sorted(architectures()))})")
    return cls.from_pretrained(path, **config_overrides)
