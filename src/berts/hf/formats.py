"""The Hugging Face directory formats: one ``Format`` spec per config.json ``model_type``, found by name.

Two kinds of format:

* a *layout* (bert, albert, electra) names every encoder parameter of ours: the encoder's prefix in
  a task model, a table outside the layers, a table per layer. The heads' names are not here: the
  task model's and each objective's ``hf_names`` give them, keyed by the layout's name.
* a *renaming* (roberta-prelayernorm, berts, ...) is a layout's names plus one step each way:
  config.json's fields, the tensors' names (and position table), the weights file.

Saving picks the model's own layout when it can say the model, else the first ``auto`` renaming
that can (``why_not`` is None), else the berts format, which says everything transformers cannot
(or the format named by the caller: ``save_pretrained(model, dir, format="roberta")``). Loading
reads config.json's ``model_type``. A new format is one module that calls ``register_format``,
imported by berts/hf/__init__.py (docs/extending/hf-format.md).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from berts.errors import UserError
from berts.model.config import BertConfig

WEIGHTS_NAME = "model.safetensors"
FALLBACK = "berts"  # the format that can say every model (berts_format.py): tried last


def _unchanged(x, *_):
    return x


def _always(config, model):
    return None


@dataclass(frozen=True)
class Format:
    """One directory format: a layout's name tables, or a renaming's steps (the fields say which)."""

    name: str  # config.json's model_type
    # a renaming's base: the layout whose names it maps ("bert", or "any" for the berts format);
    # None: this format is a layout
    renames: str | None = None
    # ---- a layout's names (our BertModel-relative prefix -> HF base-relative prefix; first match wins)
    prefix: str = ""  # the encoder's prefix in a task model ("bert.")
    names: tuple[tuple[str, str], ...] = ()  # outside the layers
    layer: tuple[tuple[str, str], ...] = ()  # within a layer, after layer_prefix
    qkv: str = ""  # within a layer: the prefix of query / key / value (our fused qkv, chunked)
    layer_prefix: Callable[[int, BertConfig], str | None] | None = None  # None: layer i not written (shared)
    detect: tuple[str, ...] = ()  # state-dict name prefixes that mark a directory in this layout
    ignore: str = ""  # regex: HF names that loading uses nowhere and does not report (tied copies)
    # ---- a renaming's steps
    architectures: dict[str, str] = field(default_factory=dict)  # {our task class: HF architecture}
    weights_name: str = WEIGHTS_NAME
    auto: bool = False  # chosen by save_format when it fits, without being named
    why_not: Callable = _always  # (config, model or class) -> None, or why this format cannot say it
    config_out: Callable = _unchanged  # (config.json dict, config, model or class) -> dict
    config_in: Callable = _unchanged  # config.json dict -> its layout's dict (model_type a layout)
    to_hf: Callable = _unchanged  # (state dict in layout names, config) -> this format's
    from_hf: Callable = _unchanged  # (this format's {name: tensor or shape}, config.json dict) -> layout names

    @property
    def is_layout(self) -> bool:
        return self.renames is None


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    """Make ``fmt`` found by its name (config.json's model_type). Returns it."""
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise UserError(f"model_type {name!r} is not supported ({supported()} are)")
    return fmt


def supported() -> str:
    names = list(FORMATS)
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)


def layouts() -> list[Format]:
    return [f for f in FORMATS.values() if f.is_layout]


def class_name(model) -> str:
    return model.__name__ if isinstance(model, type) else type(model).__name__


# ------------------------------------------------------------------- which format
def hf_format(config: BertConfig) -> str:
    """ "albert" when the embedding is factorized, else "bert"."""
    return "albert" if config.embedding_size is not None else "bert"


def own_layout(config: BertConfig, model) -> str:
    """The layout of ``model`` (a model or its class): its ``hf_model_type``, else by the config."""
    return getattr(model, "hf_model_type", None) or hf_format(config)


def model_format(model) -> str:
    """The directory layout of a model: its ``hf_model_type``, else by its config."""
    return own_layout(model.config, model)


def source_format(sd, model) -> str:
    """The layout of a state dict to load into ``model``: another layout's when its names say so
    (an ELECTRA directory into a BERT classifier), else the model's."""
    own = model_format(model)
    for fmt in layouts():
        if fmt.name != own and fmt.detect and any(k.startswith(fmt.detect) for k in sd):
            return fmt.name
    return own


def save_format(config: BertConfig, model, name: str | None = None) -> str:
    """How ``model`` (a model or its class) is saved: its layout ("bert", "albert", "electra") when
    that says it, else the first ``auto`` renaming that can ("roberta-prelayernorm" for pre-LN),
    else "berts" (what transformers cannot compute). ``name``: the format asked for, which must fit."""
    own = own_layout(config, model)
    if name is not None:
        fmt = get_format(name)
        why = (f"it is saved in the {own} layout" if fmt.is_layout and fmt.name != own
               else fmt.why_not(config, model))
        if why:
            raise UserError(f"{class_name(model)} cannot be saved as {name}: {why}")
        return name
    candidates = [FORMATS[own], *(f for f in FORMATS.values() if f.auto and f.name != FALLBACK), FORMATS[FALLBACK]]
    return next(f.name for f in candidates if f.why_not(config, model) is None)


def architecture_classes() -> dict[str, str]:
    """{HF architecture a renaming writes: our task class name}."""
    return {arch: ours for f in FORMATS.values() for ours, arch in f.architectures.items()}


def modern_why_not(config: BertConfig) -> str | None:
    """The first modern-encoder switch that is on (model/config.py's block), or None: none of the
    2018 family's formats can say them (modernbert.py says most)."""
    defaults = BertConfig(vocab_size=config.vocab_size)
    for name in ("position_embedding_type", "sliding_window", "norm_type", "embedding_norm", "first_attn_norm",
                 "classifier_pooling", "pooler_act", "pooler_norm", "token_head"):
        if getattr(config, name) != getattr(defaults, name):
            return f"{name} {getattr(config, name)}"
    if config.has_norm_bias != config.bias:
        return f"norm_bias {config.norm_bias} with bias {config.bias}"
    if config.type_vocab_size == 0:
        return "type_vocab_size 0"
    return None


def standard_why_not(config: BertConfig, model) -> str | None:
    """What transformers' post-LN BERT family (and its layouts) cannot say, or None."""
    modern = modern_why_not(config)
    if modern:
        return modern
    if config.ffn != "standard":
        return f"ffn {config.ffn}"
    if not config.bias:
        return "bias false"
    if config.norm_position != "post":
        return f"norm_position {config.norm_position}"
    return None
