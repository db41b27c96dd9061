"""The mapping itself, driven by the format specs (formats.py): config.json <-> BertConfig, and
every parameter's Hugging Face name, both ways.

The encoder's names come from its layout's tables (bert.py, albert.py, electra.py); a head's from
its declarations: the task model's ``hf_architectures`` / ``hf_names`` (heads.py) and each
objective's ``hf_names`` (objectives/). A parameter no table knows makes saving fail with one line
that lists it.
"""
from __future__ import annotations

import re

import torch

from berts.errors import UserError
from berts.hf.formats import FORMATS, get_format, hf_format, model_format, own_layout, save_format, source_format, supported
from berts.model.config import BertConfig
from berts.objectives import Objective
from berts.version import __version__


# ----------------------------------------------------------------------------- config
def config_to_hf_dict(config: BertConfig, model, format: str | None = None) -> dict:
    """config.json for ``model`` (a model or its class: its ``hf_architectures`` name it), in its
    save format (``format``: the one asked for; see formats.save_format)."""
    d = config.to_dict()
    layout = get_format(own_layout(config, model))
    d["model_type"] = layout.name
    d["architectures"] = [model.hf_architectures[layout.name]]
    d["tie_word_embeddings"] = True
    d = layout.config_out(d, config, model)
    for o in (model.modules() if isinstance(model, torch.nn.Module) else ()):
        if isinstance(o, Objective):
            d.update(o.hf_config(layout.name))  # what transformers needs to size its head (ALBERT's SOP)
    if d["id2label"] is None:
        d.pop("id2label"), d.pop("label2id")
    else:
        d["id2label"] = {str(k): v for k, v in d["id2label"].items()}
    if config.problem_type is None:
        d.pop("problem_type")
    saved = FORMATS[save_format(config, model, format)]
    if saved is not layout:  # a renaming: roberta-prelayernorm, berts, ...
        d = saved.config_out(d, config, model)
    d["berts_version"] = __version__
    return d


def config_from_hf_dict(d: dict) -> BertConfig:
    d = dict(d)
    model_type = d.get("model_type", "bert")
    fmt = FORMATS.get(model_type)
    if fmt is not None and not fmt.is_layout:
        d = fmt.config_in(d)  # a renaming -> its layout's dict
        model_type = d.get("model_type", "bert")
        fmt = FORMATS.get(model_type)
    d.pop("berts_layout", None)
    if fmt is None or not fmt.is_layout:
        raise UserError(f"config.json: model_type {model_type!r} is not supported ({supported()} are)")
    d = fmt.config_in(d)
    if d.get("id2label") is not None:
        d["id2label"] = {int(k): v for k, v in d["id2label"].items()}
        # transformers writes LABEL_0/LABEL_1 by default: keep num_labels consistent with it
        d["num_labels"] = len(d["id2label"])
    return BertConfig.from_dict(d)


# ---------------------------------------------------------------------- parameter names
def _base_name(name: str, config: BertConfig, fmt: str | None = None) -> list[tuple[str, int | None]]:
    """Our BertModel-relative parameter name -> [(HF base-relative name, qkv chunk or None)]
    (none: a shared layer written once)."""
    layout = get_format(fmt or hf_format(config))
    m = re.match(r"encoder\.layers\.(\d+)\.(.*)$", name)
    if not m:
        for ours, theirs in layout.names:
            if name.startswith(ours):
                return [(theirs + name[len(ours):], None)]
        raise KeyError(name)
    prefix, rest = layout.layer_prefix(int(m.group(1)), config), m.group(2)
    if prefix is None:
        return []
    if rest.startswith("attention.qkv."):
        kind = rest.split(".")[-1]
        return [(f"{prefix}{layout.qkv}{part}.{kind}", c) for c, part in enumerate(("query", "key", "value"))]
    for ours, theirs in layout.layer:
        if rest.startswith(ours):
            return [(prefix + theirs + rest[len(ours):], None)]
    raise KeyError(name)


def head_names(model, fmt: str | None = None) -> list[tuple[str, str]]:
    """[(our name prefix, HF name prefix)] for the parameters outside the encoder: the task model's
    own ``hf_names`` and each objective's, under the attribute that holds it. ``fmt``: another
    layout to read (an ELECTRA directory into a BERT model): a head it has no name for keeps its
    own layout's name (it is then missing, newly initialised)."""
    own = model_format(model)
    fmt = fmt or own
    table = [(ours, theirs.get(fmt) or theirs[own]) for ours, theirs in getattr(model, "hf_names", {}).items()]
    for attr, child in model.named_modules():
        if isinstance(child, Objective) and attr:
            table += [(f"{attr}.{ours}", theirs.get(fmt) or theirs[own]) for ours, theirs in child.hf_names.items()]
    return table


def name_pairs(model, fmt: str | None = None) -> list[tuple[str, str, int | None]]:
    """(HF name, our parameter name, qkv chunk) for every parameter, shared ones once per use
    (``fmt``: the names in that layout, see head_names; default: the model's own)."""
    config = model.config
    fmt = fmt or model_format(model)
    is_base = not hasattr(model, "bert")
    hf_prefix = "" if is_base else get_format(fmt).prefix
    heads = head_names(model, fmt)
    pairs, unknown = [], []
    skip = tuple(getattr(model, "hf_skip", ()))  # a model's own files beside the directory (a CRF)
    for name, _ in model.named_parameters(remove_duplicate=False):
        if skip and name.startswith(skip):
            continue
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
    """The model's tensors under its layout's names (a renaming's step comes after: io.py)."""
    params = dict(model.named_parameters(remove_duplicate=False))
    out = {}
    for hf, ours, chunk in name_pairs(model):
        t = params[ours].detach()
        if chunk is not None:
            t = t.chunk(3, dim=0)[chunk]
        out[hf] = t.to("cpu").contiguous().clone()
    return out


def ignored_on_load(name: str) -> bool:
    """A name transformers writes that no parameter reads (a tied copy, a buffer): not reported."""
    return any(f.ignore and re.search(f.ignore, name) for f in FORMATS.values())


def _normalise_keys(sd: dict, model) -> dict:
    """Old names (gamma/beta) and base/task prefix differences, as transformers tolerates them."""
    sd = {re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", k)): v for k, v in sd.items()}
    if any(k.endswith("predictions.decoder.bias") for k in sd) and not any(
            k.endswith("predictions.bias") for k in sd):
        sd = {(k.replace("predictions.decoder.bias", "predictions.bias")): v for k, v in sd.items()}
    is_base = not hasattr(model, "bert")
    prefix = get_format(source_format(sd, model)).prefix
    if is_base:
        if any(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    elif not any(k.startswith(prefix) for k in sd):
        sd = {(prefix + k if k.split(".")[0] in ("embeddings", "encoder", "pooler") else k): v
              for k, v in sd.items()}
    return sd


def load_hf_state_dict(model, sd: dict[str, torch.Tensor], ignore_mismatched_sizes: bool = False,
                       source: str = "checkpoint") -> tuple[list[str], list[str]]:
    """Copy HF-named tensors (a layout's names) into ``model``. Returns (missing HF names, unexpected HF names)."""
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
    unexpected = [k for k in sd if k not in used and not ignored_on_load(k)]
    return missing, unexpected
