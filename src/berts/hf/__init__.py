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

from berts.model.config import BertConfig, preset, preset_names
from berts.errors import UserError
from berts.util.fileio import TOKENIZER_NAMES, atomic_write_dir, carry_over, recover_dir
from berts.model.encoder import HF_IO
from berts.model.heads import architectures
from berts.objectives import Objective
from berts.version import __version__

WEIGHTS_NAME = "model.safetensors"
_IGNORED_ON_LOAD = re.compile(
    r"(^|\.)(position_ids|token_type_ids)$|predictions\.decoder\.(weight|bias)$|^cls\.predictions\.decoder"
    r"|^generator_lm_head\.weight$"  # ELECTRA's generator: tied to the word embeddings
)

class _Architectures(Mapping):
    """{HF architecture: our task class name}, read live from the registered task models."""

    def __getitem__(self, key):
        key = {v: k for k, v in ROBERTA_PRELN_ARCHS.items()}.get(key, key)  # pre-LN: roberta-prelayernorm
        return architectures()[key].__name__

    def __iter__(self):
        return iter([*architectures(), *ROBERTA_PRELN_ARCHS.values()])

    def __len__(self):
        return len(architectures()) + len(ROBERTA_PRELN_ARCHS)


ARCHITECTURES = _Architectures()


def hf_format(config: BertConfig) -> str:
    """ "albert" when the embedding is factorized, else "bert"."""
    return "albert" if config.embedding_size is not None else "bert"


# ELECTRA (berts.model.electra): a task class with ``hf_model_type = "electra"`` is written in ELECTRA's
# names whatever its embedding width (E != H is ELECTRA's ``embeddings_project``, not ALBERT's
# layer groups); an ELECTRA directory also loads into a BERT-format model (fine-tuning).
_PREFIX = {"bert": "bert.", "albert": "albert.", "electra": "electra."}


def model_format(model) -> str:
    """The directory format of ``model`` (a model or its class): its ``hf_model_type``, else by the config."""
    return getattr(model, "hf_model_type", None) or hf_format(model.config)


def source_format(sd, model) -> str:
    """The format of a state dict to load into ``model``: ELECTRA's when its names say so, else the model's."""
    own = model_format(model)
    if own != "electra" and any(k.startswith(("electra.", "discriminator_predictions.", "generator_")) for k in sd):
        return "electra"
    return own


# ----------------------------------------------------------------------------- config
def config_to_hf_dict(config: BertConfig, model) -> dict:
    """config.json for ``model`` (a model or its class: its ``hf_architectures`` name it)."""
    d = config.to_dict()
    fmt = getattr(model, "hf_model_type", None) or hf_format(config)
    albert = fmt == "albert"
    d["model_type"] = fmt
    if fmt == "electra":
        d["embedding_size"] = config.emb_size  # ElectraConfig's default is 128: always say it
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
    d = _config_out(d, config, model)  # roberta-prelayernorm / berts format (model switches)
    d["berts_version"] = __version__
    return d


def config_from_hf_dict(d: dict) -> BertConfig:
    d = _config_in(dict(d))  # roberta-prelayernorm / berts format -> the BERT or ALBERT layout
    model_type = d.get("model_type", "bert")
    if model_type not in ("bert", "albert", "electra"):
        raise UserError(f"config.json: model_type {model_type!r} is not supported (bert, albert, electra, roberta-prelayernorm and berts are)")
    if model_type == "electra":  # E == H: no embeddings_project, our embedding_size None
        e = d.get("embedding_size", 128)
        d["embedding_size"] = None if e == d.get("hidden_size", 768) else e
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
    elif model_type == "bert":
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


def _base_name(name: str, config: BertConfig, fmt: str | None = None) -> list[tuple[str, int | None]]:
    """Our BertModel-relative parameter name -> [(HF base-relative name, qkv chunk or None)]."""
    fmt = fmt or hf_format(config)
    albert = fmt == "albert"
    if name.startswith("embeddings.projection."):
        if fmt == "electra":
            return [("embeddings_project." + name.split(".")[-1], None)]
        return [("encoder.embedding_hidden_mapping_in." + name.split(".")[-1], None)]
    if name.startswith("embeddings."):
        return [(name, None)]
    if name.startswith("encoder.final_norm."):  # pre-LN (roberta-prelayernorm: the model's LayerNorm)
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


def head_names(model, fmt: str | None = None) -> list[tuple[str, str]]:
    """[(our name prefix, HF name prefix)] for the parameters outside the encoder: the task model's
    own ``hf_names`` and each objective's, under the attribute that holds it. ``fmt``: another
    format to read (an ELECTRA directory into a BERT model): a head it has no name for keeps its
    own format's name (it is then missing, newly initialised)."""
    own = model_format(model)
    fmt = fmt or own
    table = [(ours, theirs.get(fmt) or theirs[own]) for ours, theirs in getattr(model, "hf_names", {}).items()]
    for attr, child in model.named_modules():
        if isinstance(child, Objective) and attr:
            table += [(f"{attr}.{ours}", theirs.get(fmt) or theirs[own]) for ours, theirs in child.hf_names.items()]
    return table


def name_pairs(model, fmt: str | None = None) -> list[tuple[str, str, int | None]]:
    """(HF name, our parameter name, qkv chunk) for every parameter, shared ones once per use
    (``fmt``: the names in that format, see head_names; default: the model's own)."""
    config = model.config
    fmt = fmt or model_format(model)
    is_base = not hasattr(model, "bert")
    hf_prefix = "" if is_base else _PREFIX[fmt]
    heads = head_names(model, fmt)
    pairs, unknown = [], []
    for name, _ in model.named_parameters(remove_duplicate=False):
        try:
            if is_base or name.startswith("bert."):
                base = name if is_base else name[len("bert."):]
                for hf, chunk in _base_name(base, config, fmt):
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
    prefix = _PREFIX[source_format(sd, model)]
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
        for hf, ours, chunk in name_pairs(model, source_format(sd, model)):
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


# ------------------------------------------- model switches: roberta-prelayernorm and the berts format
# (issue 11) A saved directory must never load silently as a different function. So:
# * norm_position "pre" (with nothing else transformers lacks) is saved as transformers'
#   roberta-prelayernorm (RobertaPreLayerNormModel / ForMaskedLM / ForSequenceClassification):
#   the same function, its names and position offset below, tested both ways;
# * ffn "glu", bias false, or pre-LN where roberta-prelayernorm cannot say it (ALBERT's factorized
#   embedding, NSP/SOP/SBO heads, an MLM head whose activation is not gelu) is the berts format:
#   config.json with model_type "berts" (AutoModel refuses it) and the weights in berts.safetensors
#   (transformers' BertModel finds no weights file and raises; it would otherwise zero-initialise
#   the missing biases silently). The names inside are the BERT (or ALBERT) layout's; berts.load
#   reads it back exactly.
BERTS_WEIGHTS_NAME = "berts.safetensors"
BERTS_MODEL_TYPE = "berts"
ROBERTA_PRELN = "roberta-prelayernorm"
# our task class -> transformers' roberta-prelayernorm architecture with the same function
ROBERTA_PRELN_ARCHS = {
    "BertModel": "RobertaPreLayerNormModel",
    "BertForMaskedLM": "RobertaPreLayerNormForMaskedLM",
    "BertForSequenceClassification": "RobertaPreLayerNormForSequenceClassification",
}
# (BERT-layout HF name, roberta-prelayernorm name), prefixes; first match wins, either way. {b}: the
# encoder's prefix ("bert." <-> "roberta_prelayernorm." in a task model, nothing in a bare encoder),
# {i}: a layer. Pre-LN's norms sit before their sublayer: transformers names the attention's
# attention.LayerNorm and the FFN's intermediate.LayerNorm; the final one is the model's LayerNorm.
_ROBERTA_PRELN_NAMES = [
    ("{b}encoder.layer.{i}.attention.output.LayerNorm.", "{b}encoder.layer.{i}.attention.LayerNorm."),
    ("{b}encoder.layer.{i}.output.LayerNorm.", "{b}encoder.layer.{i}.intermediate.LayerNorm."),
    ("{b}encoder.final_norm.", "{b}LayerNorm."),
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
_POSITIONS = re.compile(r"^(roberta_prelayernorm\.|bert\.)?embeddings\.position_embeddings\.weight$")


def save_format(config: BertConfig, model) -> str:
    """How ``model`` (a model or its class) is saved: "bert" / "albert" (transformers' BERT /
    ALBERT), "roberta-prelayernorm" (pre-LN) or "berts" (what transformers cannot compute)."""
    if config.ffn != "standard" or not config.bias:
        return BERTS_MODEL_TYPE
    if config.norm_position == "pre":
        name = model.__name__ if isinstance(model, type) else type(model).__name__
        ok = (config.embedding_size is None and name in ROBERTA_PRELN_ARCHS
              and (name != "BertForMaskedLM" or config.hidden_act == "gelu"))  # RoBERTa's lm_head: gelu
        return ROBERTA_PRELN if ok else BERTS_MODEL_TYPE
    return hf_format(config)


def _roberta_name(name: str, to_roberta: bool) -> str | None:
    """One parameter name, BERT layout <-> roberta-prelayernorm; None: no rule (kept as it is)."""
    ours, theirs = ("bert.", "roberta_prelayernorm.") if to_roberta else ("roberta_prelayernorm.", "bert.")
    for bert, rob in _ROBERTA_PRELN_NAMES:
        src, dst = (bert, rob) if to_roberta else (rob, bert)
        pattern = "^" + re.escape(src).replace(r"\{b\}", f"(?P<b>{re.escape(ours)})?").replace(
            r"\{i\}", r"(?P<i>\d+)")
        m = re.match(pattern, name)
        if m:
            groups = m.groupdict()
            out = dst.replace("{b}", theirs if groups.get("b") else "").replace("{i}", groups.get("i") or "")
            return out + name[m.end():]
    return None


def to_roberta_preln(sd: dict, config: BertConfig) -> dict:
    """A BERT-layout HF state dict -> roberta-prelayernorm's names and position table."""
    out = {}
    for k, v in sd.items():
        if _POSITIONS.match(k):
            v = torch.cat([v.new_zeros(config.pad_token_id + 1, v.shape[1]), v])
        out[_roberta_name(k, True) or k] = v
    return out


def from_roberta_preln(sd: dict, pad_token_id: int) -> dict:
    """roberta-prelayernorm's tensors (or shapes) -> the BERT layout; its tied decoder is dropped."""
    out = {}
    for k, v in sd.items():
        if k.startswith("lm_head.decoder."):
            continue  # the tied copy of the word embeddings (and of lm_head.bias)
        k = _roberta_name(k, False) or k
        if _POSITIONS.match(k):
            v = v[pad_token_id + 1:] if isinstance(v, torch.Tensor) else (v[0] - pad_token_id - 1, *v[1:])
        out[k] = v
    return out


def _config_out(d: dict, config: BertConfig, model) -> dict:
    """config_to_hf_dict's last step for the two formats above."""
    fmt = save_format(config, model)
    name = model.__name__ if isinstance(model, type) else type(model).__name__
    if fmt == ROBERTA_PRELN:
        d["model_type"] = ROBERTA_PRELN
        d["architectures"] = [ROBERTA_PRELN_ARCHS[name]]
        d["max_position_embeddings"] = config.max_position_embeddings + config.pad_token_id + 1
        d["position_embedding_type"] = "absolute"
    elif fmt == BERTS_MODEL_TYPE:
        d["model_type"] = BERTS_MODEL_TYPE  # transformers' Auto classes refuse it
        d["berts_layout"] = getattr(model, "hf_model_type", None) or hf_format(config)  # the names inside
    return d


def _config_in(d: dict) -> dict:
    """config_from_hf_dict's first step: a roberta-prelayernorm or berts config.json -> the BERT or
    ALBERT layout's."""
    model_type = d.get("model_type")
    if model_type == ROBERTA_PRELN:
        if d.get("position_embedding_type", "absolute") != "absolute" or d.get("is_decoder"):
            raise UserError("config.json: roberta-prelayernorm with relative positions or as a decoder "
                            "is not supported")
        pad = d.get("pad_token_id", 1)
        d = dict(d, model_type="bert", norm_position="pre", pad_token_id=pad,
                 max_position_embeddings=d.get("max_position_embeddings", 514) - pad - 1)
    elif model_type == BERTS_MODEL_TYPE:
        d = dict(d, model_type=d.get("berts_layout", "bert"))
    d.pop("berts_layout", None)
    return d


def weights_file(directory) -> Path:
    """The single-file weights of a directory: berts.safetensors (the berts format) or model.safetensors."""
    directory = Path(directory)
    ours = directory / BERTS_WEIGHTS_NAME
    return ours if ours.is_file() else directory / WEIGHTS_NAME


def _saved_config(directory) -> dict:
    """A directory's config.json as saved ({} when unreadable: the caller's own checks say why)."""
    try:
        d = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


# --------------------------------------------------------------------- directories
def write_model_files(model, directory: Path, tokenizer=None) -> None:
    """config.json + model.safetensors (+ tokenizer files) into an existing directory."""
    from safetensors.torch import save

    directory = Path(directory)
    config = config_to_hf_dict(model.config, model)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # bytes written by us, not save_file(): a write of ours raises on a full disk, whatever the
    # library does, and atomic_write_dir turns that into one line naming the directory
    fmt = save_format(model.config, model)
    sd = hf_state_dict(model)
    if fmt == ROBERTA_PRELN:
        sd = to_roberta_preln(sd, model.config)
    with open(directory / (BERTS_WEIGHTS_NAME if fmt == BERTS_MODEL_TYPE else WEIGHTS_NAME), "wb") as f:
        f.write(save(sd, metadata={"format": "pt"}))
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
            rewritten = {"config.json", WEIGHTS_NAME, BERTS_WEIGHTS_NAME} | (set(TOKENIZER_NAMES) if tokenizer is not None else set())
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
    if weights_file(directory).is_file():
        files = [weights_file(directory)]
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
    if _saved_config(directory).get("model_type") == ROBERTA_PRELN:
        shapes = from_roberta_preln(shapes, model.config.pad_token_id)
    shapes = _normalise_keys(shapes, model)
    params = dict(model.named_parameters(remove_duplicate=False))
    missing, bad, used = [], [], set()
    for hf, ours, chunk in name_pairs(model, source_format(shapes, model)):
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
        sd = _read_state_dict(Path(directory))
        saved = _saved_config(directory)
        if saved.get("model_type") == ROBERTA_PRELN:
            sd = from_roberta_preln(sd, saved.get("pad_token_id", 1))
        return sd
    except UserError:
        raise
    except Exception as exc:  # a truncated or corrupt weights file
        raise UserError(f"{directory}: cannot read the weights ({type(exc).__name__}: {exc})") from None


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if weights_file(path).is_file():  # berts.safetensors (the berts format) or model.safetensors
        return load_file(str(weights_file(path)))
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


# model.save_pretrained / Model.from_pretrained call these; the model package never imports hf.
HF_IO.update(save=save_pretrained, load=from_pretrained)


def load(directory, **config_overrides):
    """The right task model for a saved directory (ours or transformers')."""
    path = Path(directory)
    recover_dir(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json)")
    archs = _read_config_json(path / "config.json").get("architectures") or ["BertModel"]
    if not isinstance(archs, list) or not isinstance(archs[0], str):
        raise UserError(f"{path / 'config.json'}: architectures must be a list of names, got {archs!r}")
    arch = {v: k for k, v in ROBERTA_PRELN_ARCHS.items()}.get(archs[0], archs[0])  # roberta-prelayernorm
    cls = architectures().get(arch)
    if cls is None:
        raise UserError(f"{path}: architecture {archs[0]} is not supported "
                        f"(supported: {', '.join(sorted(architectures()))})")
    return cls.from_pretrained(path, **config_overrides)
