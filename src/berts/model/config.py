"""Model configuration: one dataclass whose field names are Hugging Face's BertConfig
names, plus ALBERT's factorized embedding and cross-layer sharing switches, cramming's model
switches (``norm_position``, ``ffn``, ``bias``), and the presets.

Reading a config.json (ours or transformers', BERT or ALBERT) is berts.hf's job:
``berts.hf.load_config(path)`` (a file, a model directory or a preset name)."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from berts.errors import UserError

SHARE_CHOICES = ("none", "all", "attention", "ffn")
NORM_POSITIONS = ("post", "pre")
FFN_CHOICES = ("standard", "glu")
ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "tanh")
POSITION_TYPES = ("absolute", "rope")
NORM_TYPES = ("layernorm", "rmsnorm")
POOLINGS = ("cls", "mean")
TOKEN_HEADS = ("linear", "transform")


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    classifier_dropout: float | None = None
    # ALBERT: factorized embedding (V x E, then E -> H). None means E = H (plain BERT).
    embedding_size: int | None = None
    # ALBERT: cross-layer parameter sharing.
    share_layers: str = "none"
    # cramming's model switches (model.py says what each computes):
    # "post": BERT's x = LN(x + sublayer(x)); "pre": x = x + sublayer(LN(x)), and one final LayerNorm
    # after the last layer (RoBERTa-PreLayerNorm, GPT-2).
    norm_position: str = "post"
    # "standard": H -> I, act, I -> H; "glu": GEGLU with hidden_act as the gate (H -> 2I, act(gate) * a,
    # I -> H). intermediate_size stays I, the width after the gating: the up matrix doubles (cramming).
    ffn: str = "standard"
    # false: no bias in the encoder's Linear layers (qkv, out, up, down, ALBERT's projection) nor in
    # its LayerNorms. The pooler and the objectives' heads keep theirs.
    bias: bool = True
    # ---- modern encoder switches (ModernBERT, NeoBERT; docs/model.md "Modern encoder"). Each off by
    # default: a config without them is the 2018 model, its state dict unchanged.
    # "absolute": BERT's learned position table; "rope": rotary positions on q and k, no table.
    position_embedding_type: str = "absolute"
    rope_theta: float = 10000.0  # RoPE base of the global layers
    local_rope_theta: float | None = None  # RoPE base of the sliding-window layers (None: rope_theta)
    # alternating attention: a local layer's query sees the keys within sliding_window // 2 positions
    # on each side (ModernBERT's local_attention); layer i is global when i % global_attn_every_n_layers
    # == 0. None: every layer global.
    sliding_window: int | None = None
    global_attn_every_n_layers: int = 1
    norm_type: str = "layernorm"  # every norm of the encoder and heads: "layernorm" | "rmsnorm" (no bias)
    norm_bias: bool | None = None  # the norms' bias apart from the linears' (None: follows ``bias``)
    embedding_norm: bool = True  # false: no norm after the embeddings (NeoBERT)
    # false (pre-LN): layer 0's attention reads the embedding norm's output as it is (ModernBERT)
    first_attn_norm: bool = True
    # the pooled vector the classifier reads: "cls" (position 0) or "mean" (over the real tokens),
    # then dense -> pooler_act -> (a norm when pooler_norm: ModernBERT's head). BERT: cls, tanh, no norm.
    classifier_pooling: str = "cls"
    pooler_act: str = "tanh"
    pooler_norm: bool = False
    # the token-level task heads (token classification, QA): "linear" reads each token's last hidden
    # state (BERT); "transform": dense -> pooler_act -> a norm (when pooler_norm) -> dropout on each
    # token first, ModernBERT's head (ModernBertForTokenClassification / ...ForQuestionAnswering)
    token_head: str = "linear"
    # The pretraining objectives the model was built for (names of berts.objectives.registry, e.g.
    # ["mlm", "sop", "sbo"]): they pick the heads of BertForPreTraining / BertForMaskedLM. None: the
    # class's own (MLM, + NSP/SOP's head for BertForPreTraining), as transformers' classes.
    objectives: list[str] | None = None
    # SpanBERT's span boundary objective head in BertForPreTraining: the same switch as "sbo" in
    # ``objectives`` (kept in step, and written, for directories and code that name it so).
    span_boundary_objective: bool = False
    sbo_max_span: int = 10
    # UniLM (BertForUnifiedLM): the attention mode generation runs in ("left-to-right" | "seq2seq")
    # and how it reads the next token ("next": the last position's next-token prediction; "mask": a
    # [MASK] appended, as UniLM's masked objective was trained). None: left-to-right, next.
    lm_mode: str | None = None
    lm_readout: str | None = None
    # Fine-tuning heads.
    num_labels: int = 2
    problem_type: str | None = None  # "single_label_classification" | "regression"
    id2label: dict[int, str] | None = None
    label2id: dict[str, int] | None = None
    # How a fine-tuned model read its data (task, columns, format, max length, positive label), so that
    # `berts evaluate` / `berts predict` / `berts distill` read new files the same way. None: not fine-tuned here.
    finetune_data: dict[str, Any] | None = None
    # FastBERT's early exits (berts.compress.early_exit): the students' shape, {"width": w, "heads": h};
    # None: a model without exits.
    early_exit: dict[str, int] | None = None
    # Unknown ``berts_*`` fields of a config.json (another tool's, a later version's), kept and written
    # back. berts' own switches are the typed fields above, never keys here.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        def bad(msg):
            raise UserError(f"invalid model config: {msg}")

        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size",
                     "global_attn_every_n_layers"):
            value = getattr(self, name)
            low = 0 if name == "type_vocab_size" else 1  # 0 token types: no token-type table
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                bad(f"{name} must be a {'non-negative' if low == 0 else 'positive'} integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            bad(f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}")
        if self.share_layers not in SHARE_CHOICES:
            bad(f"share_layers must be one of {', '.join(SHARE_CHOICES)}, got {self.share_layers!r}")
        if self.norm_position not in NORM_POSITIONS:
            bad(f"norm_position must be one of {', '.join(NORM_POSITIONS)}, got {self.norm_position!r}")
        if self.ffn not in FFN_CHOICES:
            bad(f"ffn must be one of {', '.join(FFN_CHOICES)}, got {self.ffn!r}")
        if not isinstance(self.bias, bool):
            bad(f"bias must be true or false, got {self.bias!r}")
        if self.hidden_act not in ACTIVATIONS:
            bad(f"hidden_act must be one of {', '.join(ACTIVATIONS)}, got {self.hidden_act!r}")
        self._check_modern(bad)
        if self.embedding_size is not None and (not isinstance(self.embedding_size, int) or self.embedding_size <= 0):
            bad(f"embedding_size must be a positive integer or null, got {self.embedding_size!r}")
        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not number(getattr(self, name)) or not 0.0 <= getattr(self, name) < 1.0:
                bad(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.classifier_dropout is not None and (
                not number(self.classifier_dropout) or not 0.0 <= self.classifier_dropout < 1.0):
            bad(f"classifier_dropout must be in [0, 1) or null, got {self.classifier_dropout!r}")
        for name in ("initializer_range", "layer_norm_eps"):
            if not number(getattr(self, name)) or not getattr(self, name) > 0:
                bad(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if not isinstance(self.num_labels, int) or isinstance(self.num_labels, bool) or self.num_labels < 1:
            bad(f"num_labels must be a positive integer, got {self.num_labels!r}")
        if any(k in self.extra for k in OLD_SWITCHES):  # an old switch given in code: the typed fields
            fields = upgrade_switches({**self.extra, "span_boundary_objective": self.span_boundary_objective})
            self.extra = {k: v for k, v in self.extra.items() if k not in OLD_SWITCHES}
            for key in ("objectives", "lm_mode", "lm_readout"):
                if fields.get(key) is not None and getattr(self, key) is None:
                    setattr(self, key, fields[key])
        if self.objectives is not None:
            if not isinstance(self.objectives, (list, tuple)) or not all(isinstance(o, str) for o in self.objectives):
                bad(f"objectives must be a list of objective names or null, got {self.objectives!r}")
            self.objectives = list(self.objectives)
            if self.span_boundary_objective and "sbo" not in self.objectives:
                self.objectives.append("sbo")
            self.span_boundary_objective = "sbo" in self.objectives
        if self.lm_mode not in (None, "left-to-right", "seq2seq"):
            bad(f"lm_mode must be left-to-right, seq2seq or null, got {self.lm_mode!r}")
        if self.lm_readout not in (None, "next", "mask"):
            bad(f"lm_readout must be next, mask or null, got {self.lm_readout!r}")
        if self.id2label is not None and not isinstance(self.id2label, dict):
            bad(f"id2label must be an object {{id: label}}, got {self.id2label!r}")
        if self.id2label is not None:
            self.id2label = {int(k): str(v) for k, v in self.id2label.items()}
            self.num_labels = len(self.id2label)
            if self.label2id is None:
                self.label2id = {v: k for k, v in self.id2label.items()}

    def _check_modern(self, bad) -> None:
        """The modern encoder's block of switches."""
        for name, choices in (("position_embedding_type", POSITION_TYPES), ("norm_type", NORM_TYPES),
                              ("classifier_pooling", POOLINGS), ("pooler_act", ACTIVATIONS),
                              ("token_head", TOKEN_HEADS)):
            if getattr(self, name) not in choices:
                bad(f"{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for name in ("rope_theta", "local_rope_theta"):
            value = getattr(self, name)
            if (value is not None or name == "rope_theta") and (
                    not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 1):
                bad(f"{name} must be a number above 1{' or null' if name != 'rope_theta' else ''}, got {value!r}")
        if self.sliding_window is not None and (not isinstance(self.sliding_window, int)
                                                or isinstance(self.sliding_window, bool) or self.sliding_window < 2):
            bad(f"sliding_window must be an integer >= 2 or null, got {self.sliding_window!r}")
        if self.norm_bias is not None and not isinstance(self.norm_bias, bool):
            bad(f"norm_bias must be true, false or null, got {self.norm_bias!r}")
        for name in ("embedding_norm", "first_attn_norm", "pooler_norm"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not self.first_attn_norm and (self.norm_position != "pre" or self.share_layers in ("all", "attention")):
            bad("first_attn_norm false needs norm_position pre and layer 0's own attention (share_layers none or ffn)")
        if self.position_embedding_type == "rope" and self.head_dim % 2:
            bad(f"rope needs an even head size, got {self.head_dim}")

    # ---------------------------------------------------------------- derived
    @property
    def has_norm_bias(self) -> bool:
        return self.bias if self.norm_bias is None else self.norm_bias

    def is_local(self, layer: int) -> bool:
        """Whether layer ``layer`` attends through the sliding window (ModernBERT: layers 1, 2, 4, 5, ...)."""
        return self.sliding_window is not None and layer % self.global_attn_every_n_layers != 0

    def layer_rope_theta(self, layer: int) -> float:
        local = self.is_local(layer) and self.local_rope_theta is not None
        return float(self.local_rope_theta if local else self.rope_theta)

    @property
    def emb_size(self) -> int:
        """Width of the embedding tables (E); equals hidden_size unless factorized."""
        return self.embedding_size or self.hidden_size

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    # ----------------------------------------------------------- (de)serialize
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        extra = d.pop("extra")
        d.update(extra)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BertConfig":
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        d = upgrade_switches(d)
        known = {k: v for k, v in d.items() if k in names}
        extra = {k: v for k, v in d.items() if k not in names and k.startswith("berts_")}
        return cls(**known, extra=extra)

    def replace(self, **changes) -> "BertConfig":
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


# config.json keys of directories written before the switches were typed fields -> those fields
OLD_SWITCHES = ("berts_structure_objective", "berts_wso", "berts_lm_mode", "berts_lm_readout", "berts_early_exit",
                "berts_finetune")


def upgrade_switches(d: dict[str, Any]) -> dict[str, Any]:
    """An older config.json's ``berts_*`` switches as the typed fields: ``berts_structure_objective``
    (reorder | distance) and ``berts_wso`` -> ``objectives`` (with mlm, and sbo when
    ``span_boundary_objective``); ``berts_lm_mode`` / ``berts_lm_readout`` / ``berts_early_exit`` ->
    ``lm_mode`` / ``lm_readout`` / ``early_exit``; ``berts_finetune`` -> ``finetune_data``."""
    if not any(k in d for k in OLD_SWITCHES):
        return d
    old = {k: d.get(k) for k in OLD_SWITCHES}
    d = {k: v for k, v in d.items() if k not in OLD_SWITCHES}
    structure, wso = old["berts_structure_objective"], old["berts_wso"]
    if (structure or wso) and d.get("objectives") is None:
        d["objectives"] = ["mlm", *([structure] if structure else []), *(["wso"] if wso else []),
                           *(["sbo"] if d.get("span_boundary_objective") else [])]
    for key in ("lm_mode", "lm_readout", "early_exit"):
        if old[f"berts_{key}"] is not None and d.get(key) is None:
            d[key] = old[f"berts_{key}"]
    if old["berts_finetune"] is not None and d.get("finetune_data") is None:
        d["finetune_data"] = old["berts_finetune"]
    return d


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("berts.model.presets").iterdir() if p.name.endswith(".json"))


def preset(name: str, **overrides) -> BertConfig:
    """A named size preset: tiny, mini, small, medium, base, large, albert-base, and tiny-modern,
    mini-modern, small-modern, base-modern (the modern switches: RoPE, a window on two layers of
    three (64 tokens for tiny, else 128), GeGLU, pre-LN, no bias; base-modern is ModernBERT-base's shape)."""
    path = resources.files("berts.model.presets") / f"{name}.json"
    if not path.is_file():
        raise UserError(f"unknown model preset {name!r} (choose from {', '.join(preset_names())})")
    d = json.loads(path.read_text())
    d.update(overrides)
    return BertConfig.from_dict(d)
