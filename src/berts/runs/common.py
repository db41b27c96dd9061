"""What every run shares: claiming its output directory."""
from __future__ import annotations

from pathlib import Path

from berts.errors import UserError
from berts.hf import load_config, read_config
from berts.model.config import preset
from berts.util.fileio import claim_output_dir


def claim_output(cfg, kind: str, *, resume: bool, overwrite: bool, protect=(), dist=None,
                 no_checkpoint: bool = False) -> None:
    """``fileio.claim_output_dir(log.out)`` on rank 0, before anything is read or written; every
    rank raises the same one-line error (so that no rank waits for the others at DDP's start).
    ``no_checkpoint``: --resume was asked for and found none; then an earlier run's final/ or
    best/ is not replaced without --overwrite (a new run would start in their place)."""

    if resume and overwrite:
        raise UserError("--resume continues the run in --out and --overwrite replaces it: give one of them")
    error = None
    out = Path(cfg.log.out)
    done = [n + "/" for n in ("final", "best") if (out / n).exists()]
    if resume and no_checkpoint and done:
        raise UserError(f"{out}: --resume found no checkpoint to continue (train.keep_last 0, or the run ended "
                        f"before its first one), but an earlier run's {', '.join(done)} are there: pass "
                        "--overwrite instead of --resume to start a new run in their place, or choose another --out")
    if dist is None or dist.is_main:
        try:
            claim_output_dir(cfg.log.out, kind, resume=resume, overwrite=overwrite,
                             protect=[p for p in protect if p and Path(p).exists()])
        except UserError as exc:
            error = str(exc)
    if dist is not None:
        error = dist.broadcast(error)
    if error:
        raise UserError(error)

def base_config(cfg, tokenizer):
    """The model config a fine-tuning run starts from: the model directory's, or (from scratch)
    the preset's / config's with the tokenizer's vocabulary size."""

    m = cfg.model
    if m.init_from:
        return read_config(m.init_from)
    base = load_config(m.config) if m.config else preset(m.preset)
    return base.replace(vocab_size=tokenizer.vocab_size)
