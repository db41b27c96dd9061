"""The distillation run (``berts distill``): the method chosen in the config, from berts.compress."""
from __future__ import annotations

from pathlib import Path


# ----------------------------------------------------------------------------- distillation
def distillation_run(cfg, resume: str | Path | None = None, dist=None, *, resume_requested: str | None = None,
                     overwrite: bool = False):
    """The Trainer of a distillation run (``berts distill``, a DistillConfig): DistilBERT or
    TinyBERT, general (data.shards) or task-specific (data.train); see berts.compress.distil."""
    from berts.compress.distil import distillation_run as run

    return run(cfg, resume, dist, resume_requested=resume_requested, overwrite=overwrite)
