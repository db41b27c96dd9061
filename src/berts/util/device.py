"""The torch device a name means ("auto", "cpu", "cuda", "cuda:1"): shared by training
(berts.train.distributed) and serving (berts.serve.load), so serving never imports train/."""
from __future__ import annotations

import torch

from berts.errors import UserError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"impl.device is {name} but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device
