"""Checkpoints: Hugging Face model directories plus ``trainer_state.pt``, written atomically.

    OUT/checkpoints/step-N/   config.json  model.safetensors  tokenizer files  trainer_state.pt
                              [NAME/ ...]            another saved module of the task (an HF directory)
                              [modules.safetensors]  trainable modules that are no HF model (projections)

The task's main module is the top level, so a checkpoint is a model directory that
``berts.load``, ``--init-from`` and transformers read; ``final/`` and ``best/`` are the same
without ``trainer_state.pt`` and ``modules.safetensors``. Frozen modules are never written.

The directory is written under a temporary name and renamed into place (``fileio.atomic_write_dir``),
so a process killed mid-write leaves the previous checkpoints intact and at most a hidden
``.step-N.tmp-*`` directory, which ``--resume auto`` ignores and the next run removes. Old
checkpoints are renamed away before they are deleted, for the same reason. Every file and the
directory are fsynced before the rename that publishes them, and ``--resume auto`` checks that the
newest checkpoint loads (``check_checkpoint``), falling back to the newest one that does.

``trainer_state.pt`` is a plain dict (nanoGPT style) loadable with ``weights_only=True``::

    {version, step, tokens, examples, elapsed, optimizer, schedule, scaler, sampler,
     rng: [per rank {python, numpy, torch, cuda}], evals, best, world_size, task, config,
     modules: {name: subdirectory, or None for one in modules.safetensors}}

Version 2 (multi-module tasks): the optimizer state spans every trainable module of the task.
Version 1 (one model) cannot be resumed; its directory still loads as weights (``--init-from``).
"""
from __future__ import annotations

import random
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

from berts.errors import UserError
from berts.util.fileio import atomic_write_dir, recover_dir
from berts.hf import weights_file, write_model_files
from berts.hf import check_weights_file
from berts.hf import load_hf_state_dict, read_state_dict

STATE_NAME = "trainer_state.pt"
STATE_VERSION = 2
MODULES_NAME = "modules.safetensors"  # trainable modules that are not Hugging Face models
CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"step-(\d+)$")


# ----------------------------------------------------------------------------- RNG
def rng_state() -> dict:
    """Every RNG the training loop touches, in types ``torch.load(weights_only=True)`` accepts."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {"name": np_state[0], "key": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------- writing
def step_dir(out: str | Path, step: int) -> Path:
    return Path(out) / CHECKPOINTS / f"step-{step}"


def write_checkpoint(directory: str | Path, models, state: dict | None, tokenizer=None,
                     extra_files: dict[str, str] | None = None, others: dict | None = None) -> Path:
    """Model files (+ tokenizer) + trainer_state.pt (+ small text files) into one directory, atomically.

    ``models``: a model, or ``{subdirectory: model}`` ("" is the top level), each written as a
    Hugging Face directory; ``others``: ``{name: module}`` saved together in modules.safetensors.
    """
    directory = Path(directory)
    if not isinstance(models, dict):
        models = {"": models}

    def write(tmp: Path):
        for sub, model in models.items():
            (tmp / sub).mkdir(parents=True, exist_ok=True)
            write_model_files(model, tmp / sub, tokenizer)
        if others:
            from safetensors.torch import save

            tensors = {f"{name}.{k}": v.detach().cpu().contiguous()
                       for name, m in others.items() for k, v in m.state_dict().items()}
            with open(tmp / MODULES_NAME, "wb") as f:  # our write: a full disk raises (see hf.write_model_files)
                f.write(save(tensors, metadata={"format": "pt"}))
        for name, text in (extra_files or {}).items():  # a name may hold a subdirectory ("1_Pooling/config.json")
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text, encoding="utf-8")
        if state is not None:
            with open(tmp / STATE_NAME, "wb") as f:
                torch.save(state, f)

    atomic_write_dir(directory, write)
    return directory


def is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in ("config.json", STATE_NAME)) and weights_file(directory).is_file()


def list_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under OUT/checkpoints, oldest first."""
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_DIR.match(d.name)
        if m and d.is_dir() and is_complete(d):
            found.append((int(m.group(1)), d))
    return sorted(found)


def _remove(directory: Path) -> None:
    """Rename away first, so no half-deleted directory is ever left under a checkpoint's name."""
    trash = directory.with_name(f".{directory.name}.trash")
    shutil.rmtree(trash, ignore_errors=True)
    directory.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def prune(out: str | Path, keep_last: int) -> None:
    for _, d in list_checkpoints(out)[:-keep_last]:
        _remove(d)


def clean_partial(out: str | Path) -> int:
    """Remove what killed runs left behind: ``.step-N.tmp-*``, ``.*.trash`` and ``.*.old-*``; but
    first put back a ``final/`` or ``best/`` that a kill between two renames left only as ``.NAME.old-*``
    (fileio.recover_dir)."""
    n = 0
    for root in (Path(out), Path(out) / CHECKPOINTS):
        if root.is_dir():
            for d in list(root.iterdir()):
                m = re.match(r"\.(.+)\.old-\d+$", d.name)
                if m and d.is_dir():
                    recover_dir(root / m.group(1))
            for d in root.iterdir():
                if d.name.startswith(".") and re.search(r"\.(tmp-|old-|trash)", d.name) and d.is_dir():
                    shutil.rmtree(d, ignore_errors=True)
                    n += 1
    return n


# ----------------------------------------------------------------------------- reading
def find_latest(out: str | Path) -> Path | None:
    """The newest complete checkpoint of OUT (its files are there; whether they load: ``find_resumable``)."""
    found = list_checkpoints(out)
    return found[-1][1] if found else None


def check_checkpoint(directory: str | Path) -> str | None:
    """Why ``directory`` cannot be resumed from (a truncated, empty or corrupt file), or None when it
    can: trainer_state.pt loads, and every weights file is as long as its header says."""

    directory = Path(directory)
    try:
        state = read_state(directory)
    except UserError as exc:
        return str(exc)
    if not isinstance(state, dict) or "step" not in state:
        return f"{directory / STATE_NAME}: not a trainer state"
    files = [weights_file(directory)]
    for sub in (state.get("modules") or {}).values():
        files.append(directory / MODULES_NAME if sub is None else weights_file(directory / sub))
    for path in dict.fromkeys(files):
        problem = check_weights_file(path)
        if problem:
            return problem
    return None


def find_resumable(out: str | Path, notes: list[str] | None = None) -> Path | None:
    """The newest checkpoint of OUT that loads. Each newer one that does not is skipped with a note
    (appended to ``notes``, else printed as a warning): a kill or a power loss mid-write must not end
    the run when the checkpoint before is intact."""
    for _, d in reversed(list_checkpoints(out)):
        problem = check_checkpoint(d)
        if problem is None:
            return d
        _note(notes, f"skipping checkpoint {d}: it does not load ({problem}); using the one before")
    return None


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None:
        notes.append(text)
    else:
        print(f"berts: warning: {text}", file=sys.stderr)


def resolve_resume(arg: str, out: str | Path, notes: list[str] | None = None) -> Path | None:
    """``--resume auto`` -> the newest checkpoint of OUT that loads (None if there is none; newer ones
    that do not load are skipped, with a note: ``find_resumable``); ``--resume DIR`` -> DIR itself if
    it is a checkpoint (and loads), else the newest one of the run DIR that loads."""
    if arg == "auto":
        return find_resumable(out, notes)
    path = Path(arg)
    if not path.exists():
        raise UserError(f"--resume {arg}: no such directory")
    if is_complete(path):
        problem = check_checkpoint(path)
        if problem:
            raise UserError(f"--resume {arg}: the checkpoint does not load ({problem})")
        return path
    latest = find_resumable(path, notes)
    if latest is None:
        if list_checkpoints(path):
            raise UserError(f"--resume {arg}: no checkpoint under {path / CHECKPOINTS} loads")
        if (path / "config.json").is_file():
            raise UserError(f"--resume {arg}: a model directory without {STATE_NAME}; "
                            "to start from its weights with a fresh optimizer, use --init-from")
        raise UserError(f"--resume {arg}: not a checkpoint and no complete checkpoint under {path / CHECKPOINTS}")
    return latest


def read_state(directory: str | Path) -> dict:
    path = Path(directory) / STATE_NAME
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{directory}: not a checkpoint (no {STATE_NAME})") from None
    except Exception as exc:  # a truncated or foreign file
        raise UserError(f"{path}: cannot read the trainer state ({exc.__class__.__name__})") from None


def load_modules(others: dict, directory: str | Path) -> None:
    """Restore the modules saved in ``directory``/modules.safetensors, exactly (every tensor)."""
    from safetensors.torch import load_file

    path = Path(directory) / MODULES_NAME
    if not path.is_file():
        raise UserError(f"{directory}: the checkpoint has no {MODULES_NAME} (the task's {', '.join(others)})")
    tensors = load_file(str(path))
    for name, module in others.items():
        prefix = name + "."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(own, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"{path}: the weights of module {name!r} do not fit it ({first})") from None


def load_weights(model, directory: str | Path) -> None:
    """Copy a checkpoint's weights into ``model`` (every weight must be there)."""

    missing, _ = load_hf_state_dict(model, read_state_dict(directory), source=str(directory))
    if missing:
        raise UserError(f"{directory}: the checkpoint lacks {len(missing)} weights of the model "
                        f"(e.g. {missing[0]}): was it written by another configuration?")
    if hasattr(model, "read_companions"):  # the model's own files beside the directory (a CRF), in place
        model.read_companions(directory)
