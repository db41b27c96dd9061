"""sentence-transformers directories, both ways.

A sentence-transformers (ST) model directory is a Hugging Face model directory plus:

* ``modules.json``: the pipeline, a list of {idx, name, path, type}: a Transformer (path "" =
  the directory root holds config.json, the weights and the tokenizer), a Pooling (path
  "1_Pooling"), optionally a Normalize ("2_Normalize");
* ``1_Pooling/config.json``: the pooling modes, either ST 2.x-5.x's booleans
  (``pooling_mode_mean_tokens``: true, ...) or ST 6's ``pooling_mode`` ("mean" or a list);
* ``sentence_bert_config.json``: ``max_seq_length`` (the truncation window) and ``do_lower_case``
  (ST lowercases the text before its tokenizer when true);
* ``2_Normalize/``: no settings (the module's presence is the setting).

``read_st_dir`` reads one into an ``STConfig``; ``write_st_dir`` writes one for a berts model:
the encoder through berts' own save_pretrained (berts.hf) into the root, then the files above.
The module types are written with ST's old names (``sentence_transformers.models.Pooling``),
which every ST version since 2.0 loads (6.x included: tests/test_embed.py loads ours with it).
Any other module in the pipeline (Dense, LayerNorm, ...) is refused in one line: berts would
compute other embeddings without it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from berts.embed.pooling import pooling_modes
from berts.errors import UserError
import berts.hf  # noqa: F401  (registers the HF formats: BertModel.from_pretrained reads them)

MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "sentence_bert_config.json"
POOLING_DIR = "1_Pooling"
NORMALIZE_DIR = "2_Normalize"
# ST's booleans, in ST's order (the order the modes concatenate in)
_LEGACY = {"cls": "pooling_mode_cls_token", "max": "pooling_mode_max_tokens", "mean": "pooling_mode_mean_tokens",
           "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
           "weightedmean": "pooling_mode_weightedmean_tokens", "lasttoken": "pooling_mode_lasttoken"}
_TYPES = {"transformer": "sentence_transformers.models.Transformer",
          "pooling": "sentence_transformers.models.Pooling",
          "normalize": "sentence_transformers.models.Normalize"}


@dataclass
class STConfig:
    """What berts needs from an ST directory."""

    transformer_dir: Path  # the Hugging Face directory of the encoder (usually the root)
    modes: tuple[str, ...] = ("mean",)
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False


def is_st_dir(path) -> bool:
    return (Path(path) / MODULES_FILE).is_file()


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{p}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None


def _kind(module_type: str) -> str:
    """ST's module type (any version's spelling: sentence_transformers.models.Pooling,
    sentence_transformers.sentence_transformer.modules.pooling.Pooling) -> its class name, lowercase."""
    return str(module_type).rsplit(".", 1)[-1].lower()


def read_pooling_config(path: Path) -> tuple[str, ...]:
    """``1_Pooling/config.json`` (either spelling) -> the modes in ST's concatenation order."""
    d = _read_json(path)
    if not isinstance(d, dict):
        raise UserError(f"{path}: not a pooling config (a JSON object expected)")
    try:
        if "pooling_mode" in d:
            return pooling_modes(d["pooling_mode"])
        on = tuple(mode for mode, key in _LEGACY.items() if d.get(key))
        return on or ("mean",)  # ST's own default when no boolean is set
    except ValueError as exc:
        raise UserError(f"{path}: {exc}") from None


def read_st_dir(path) -> STConfig:
    """An ST directory -> STConfig, or one line naming the file that is wrong."""
    root = Path(path)
    mpath = root / MODULES_FILE
    modules = _read_json(mpath)
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise UserError(f"{mpath}: not a module list (a JSON list of objects expected)")
    cfg = STConfig(transformer_dir=root)
    seen = []
    for m in sorted(modules, key=lambda m: m.get("idx", 0)):
        kind, sub = _kind(m.get("type", "")), root / str(m.get("path", ""))
        if kind == "transformer":
            cfg.transformer_dir = sub
            st = sub / ST_CONFIG_FILE if (sub / ST_CONFIG_FILE).is_file() else root / ST_CONFIG_FILE
            if st.is_file():
                d = _read_json(st)
                if isinstance(d, dict):
                    n = d.get("max_seq_length")
                    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 2):
                        raise UserError(f"{st}: max_seq_length must be an integer >= 2, got {n!r}")
                    cfg.max_seq_length = n
                    cfg.do_lower_case = bool(d.get("do_lower_case", False))
        elif kind == "pooling":
            cfg.modes = read_pooling_config(sub / "config.json") if (sub / "config.json").is_file() else ("mean",)
        elif kind == "normalize":
            cfg.normalize = True
        else:
            raise UserError(f"{mpath}: module {m.get('type')!r} is not supported by berts "
                            "(supported: Transformer, Pooling, Normalize)")
        seen.append(kind)
    if "transformer" not in seen:
        raise UserError(f"{mpath}: no Transformer module")
    if "pooling" not in seen:  # ST itself adds mean pooling then
        cfg.modes = ("mean",)
    return cfg


def st_files(hidden_size: int, modes, normalize: bool, max_seq_length: int,
             do_lower_case: bool = False) -> dict[str, str]:
    """The ST files beside the encoder, {relative path: text}: modules.json,
    sentence_bert_config.json, 1_Pooling/config.json (+ 2_Normalize/config.json). A training run
    adds them to every directory it saves (berts.tasks.sentence_embedding)."""
    modes = pooling_modes(modes)
    modules = [{"idx": 0, "name": "0", "path": "", "type": _TYPES["transformer"]},
               {"idx": 1, "name": "1", "path": POOLING_DIR, "type": _TYPES["pooling"]}]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": NORMALIZE_DIR, "type": _TYPES["normalize"]})
    # the booleans (ST 2.x-6.x read them); a mode order other than ST's cannot be said with
    # booleans, so a custom order is written as ST 6's list
    pooling = {"word_embedding_dimension": int(hidden_size)}
    if list(modes) == [m for m in _LEGACY if m in modes]:
        pooling.update({key: mode in modes for mode, key in _LEGACY.items()})
    else:
        pooling["pooling_mode"] = list(modes)
    files = {MODULES_FILE: json.dumps(modules, indent=2) + "\n",
             ST_CONFIG_FILE: json.dumps({"max_seq_length": int(max_seq_length),
                                         "do_lower_case": bool(do_lower_case)}, indent=2) + "\n",
             f"{POOLING_DIR}/config.json": json.dumps(pooling, indent=2) + "\n"}
    if normalize:
        files[f"{NORMALIZE_DIR}/config.json"] = "{}\n"
    return files


def write_st_files(directory, hidden_size: int, modes, normalize: bool, max_seq_length: int,
                   do_lower_case: bool = False) -> None:
    """The ST files (st_files) into an existing directory whose root already holds the encoder."""
    d = Path(directory)
    for name, text in st_files(hidden_size, modes, normalize, max_seq_length, do_lower_case).items():
        (d / name).parent.mkdir(exist_ok=True)
        (d / name).write_text(text)


def write_st_dir(directory, model, tokenizer, modes="mean", normalize: bool = False,
                 max_seq_length: int | None = None, do_lower_case: bool = False) -> Path:
    """A berts encoder (a BertModel) and its tokenizer as an ST directory that
    ``sentence_transformers.SentenceTransformer(directory)`` loads. The encoder goes through
    berts.hf's save_pretrained (atomic; other files in the directory are kept), then the ST files."""

    directory = Path(directory)
    if max_seq_length is None:
        max_seq_length = min(int(getattr(tokenizer, "model_max_length", 512) or 512),
                             int(model.config.max_position_embeddings))
    model.save_pretrained(directory, tokenizer=tokenizer)
    write_st_files(directory, model.config.hidden_size, modes, normalize, max_seq_length, do_lower_case)
    return directory
