"""Model directories: config.json + the weights (safetensors, one file or shards; pytorch_model.bin
read too), written atomically, read back, and checked from the headers alone. The format-specific
steps (names, config.json fields, the weights file's name) are the format's (formats.py)."""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from berts.errors import UserError
from berts.hf.formats import FORMATS, WEIGHTS_NAME, architecture_classes, save_format, source_format
from berts.hf.mapping import (_normalise_keys, config_from_hf_dict, config_to_hf_dict, hf_state_dict,
                              ignored_on_load, load_hf_state_dict, name_pairs)
from berts.model.config import BertConfig, preset, preset_names
from berts.model.heads import architectures
from berts.util.fileio import TOKENIZER_NAMES, atomic_write_dir, carry_over, recover_dir


class _Architectures(Mapping):
    """{HF architecture: our task class name}, read live from the registered task models and the
    renamings' own architectures (RobertaPreLayerNormModel -> BertModel, ...)."""

    def __getitem__(self, key):
        return architectures()[architecture_classes().get(key, key)].__name__

    def __iter__(self):
        return iter([*architectures(), *architecture_classes()])

    def __len__(self):
        return len(architectures()) + len(architecture_classes())


ARCHITECTURES = _Architectures()


def weights_names() -> list[str]:
    """Every weights file name a format writes, the renamings' own ones first (berts.safetensors)."""
    names = {f.weights_name for f in FORMATS.values()} - {WEIGHTS_NAME}
    return [*sorted(names), WEIGHTS_NAME]


def weights_file(directory) -> Path:
    """The single-file weights of a directory: a format's own (berts.safetensors) or model.safetensors."""
    directory = Path(directory)
    return next((directory / n for n in weights_names() if (directory / n).is_file()), directory / WEIGHTS_NAME)


def _saved_config(directory) -> dict:
    """A directory's config.json as saved ({} when unreadable: the caller's own checks say why)."""
    try:
        d = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return d if isinstance(d, dict) else {}


def _from_saved_format(sd: dict, saved: dict) -> dict:
    """A directory's tensors (or shapes) -> its layout's names (the saved format's step back)."""
    fmt = FORMATS.get(saved.get("model_type"))
    return fmt.from_hf(sd, saved) if fmt is not None else sd


# --------------------------------------------------------------------- writing
def write_model_files(model, directory: Path, tokenizer=None, format: str | None = None) -> None:
    """config.json + the weights (+ tokenizer files) into an existing directory. ``format``: a
    registered format to write (default: the model's own, see formats.save_format)."""
    from safetensors.torch import save

    directory = Path(directory)
    fmt = FORMATS[save_format(model.config, model, format)]
    config = config_to_hf_dict(model.config, model, fmt.name)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    # bytes written by us, not save_file(): a write of ours raises on a full disk, whatever the
    # library does, and atomic_write_dir turns that into one line naming the directory
    sd = fmt.to_hf(hf_state_dict(model), model.config)
    with open(directory / fmt.weights_name, "wb") as f:
        f.write(save(sd, metadata={"format": "pt"}))
    if hasattr(model, "write_companions"):  # what transformers' directory has no place for (a CRF), beside it
        model.write_companions(directory)
    if tokenizer is not None:
        # into this directory, which its writer publishes atomically (not a second atomic write)
        getattr(tokenizer, "write_files", tokenizer.save_pretrained)(directory)


def save_pretrained(model, directory, tokenizer=None, format: str | None = None) -> None:
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: exists and is not a directory")
    save_format(model.config, model, format)  # a format that cannot say the model: before any write

    def write(tmp: Path):
        if directory.is_dir():  # keep whatever else lives there (tokenizer, trainer state, ...)
            # (carried files are hard links: never carry one that is written again below)
            rewritten = {"config.json", *weights_names()} | (set(TOKENIZER_NAMES) if tokenizer is not None else set())
            carry_over(directory, tmp, skip=rewritten)
        write_model_files(model, tmp, tokenizer, format)

    atomic_write_dir(directory, write)


# --------------------------------------------------------------------- reading
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
    shapes = _from_saved_format(shapes, _saved_config(directory))
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
    unexpected = [k for k in shapes if k not in used and not ignored_on_load(k)]
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
        return _from_saved_format(sd, _saved_config(directory))
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


def load(directory, **config_overrides):
    """The right task model for a saved directory (ours or transformers')."""
    path = Path(directory)
    recover_dir(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json)")
    archs = _read_config_json(path / "config.json").get("architectures") or ["BertModel"]
    if not isinstance(archs, list) or not isinstance(archs[0], str):
        raise UserError(f"{path / 'config.json'}: architectures must be a list of names, got {archs!r}")
    arch = architecture_classes().get(archs[0], archs[0])  # a renaming's (RobertaPreLayerNormModel, ...)
    cls = architectures().get(arch)
    if cls is None:
        raise UserError(f"{path}: architecture {archs[0]} is not supported "
                        f"(supported: {', '.join(sorted(architectures()))})")
    return cls.from_pretrained(path, **config_overrides)
