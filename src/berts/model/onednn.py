"""fp32 linear layers for CPU serving with their weights held as oneDNN tensors.

torch's ``F.linear`` on the CPU calls MKL's sgemm; ``torch.ops.mkldnn._linear_pointwise`` on a
weight converted once to a oneDNN tensor (as ``torch.utils.mkldnn.MkldnnLinear`` holds it) runs
oneDNN's own fp32 matrix product instead. Same fp32 arithmetic, other blocking: the
outputs match ``F.linear`` to float rounding (tests/test_token_classification.py checks 1e-5 on the
logits). Measured on this machine's AMD EPYC (AVX-512), one thread, the four matrix shapes of
preset small on 500 tokens: 12% less CPU time than ``F.linear`` (experiments/2026-12-06-ner).

    pack_linears(model)     # in place: every nn.Linear -> PackedLinear (CPU, fp32, inference only)
    unpack_linears(model)   # back to nn.Linear (quantize_int8 does this first: it quantizes nn.Linear)
    with packed(model): ... # packed for the block, the very same nn.Linear objects back after it
                            # (a model that is also trained: its optimizer holds those parameters)

The FFN's exact (erf) GELU is fused into its up-projection as a oneDNN post-op (``post="gelu"``;
the FFN's own activation becomes the identity until unpacked): the activation is applied while
the product's output is still in cache instead of in a second pass over [tokens, intermediate]
floats. oneDNN's erf differs from torch's by float rounding (max 5e-6 on GELU outputs of random
pre-activations; the tagger's logits stay within 1e-5 of the unpacked model's, tested).

Serving only: a packed model has no gradients; its state dict holds nn.Linear's dense entries
(sizes and saving stay as they were).
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn


def available() -> bool:
    """Whether this torch build has oneDNN and its packed linear op."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class PackedLinear(nn.Module):
    """An ``nn.Linear`` (``in_features`` -> ``out_features``) whose weight is a oneDNN tensor."""

    def __init__(self, linear: nn.Linear, post: str = "none"):
        super().__init__()
        if post not in ("none", "gelu"):
            raise ValueError(f"post must be 'none' or 'gelu' (exact), got {post!r}")
        self.post = post  # "gelu": the output is GELU(x W^T + b), fused
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        self.register_buffer("weight", w.to_mkldnn())  # a oneDNN tensor, as torch.utils.mkldnn.MkldnnLinear's
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out], any leading shape
        if self.post == "gelu":  # oneDNN's eltwise_gelu_erf post-op ("none": not the tanh approximation)
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], "none")
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # a state dict holds dense tensors (a oneDNN tensor has no storage to save): nn.Linear's entries
        destination[prefix + "weight"] = self.weight.to_dense()
        if self.bias is not None:
            destination[prefix + "bias"] = self.bias

    def unpack(self) -> nn.Linear:
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            linear.weight.copy_(self.weight.to_dense())
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear


def _replace(model: nn.Module, kind, make) -> int:
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is kind and (kind is not nn.Linear or child.weight.dtype == torch.float32)]
    for parent, name, child in swaps:
        setattr(parent, name, make(child))
    return len(swaps)


def _fused(x: torch.Tensor) -> torch.Tensor:
    """An FFN's activation once its up-projection applies it (PackedLinear post="gelu")."""
    return x


def pack_linears(model: nn.Module, fuse_gelu: bool = True) -> int:
    """Every plain fp32 ``nn.Linear`` of ``model`` (on the CPU) as a PackedLinear, in place; the
    number packed (0 when oneDNN is not available: the model is left as it was). Other dtypes and
    subclasses of nn.Linear (quantized ones) are left alone. ``fuse_gelu``: an FFN (a module with
    ``up`` and ``act``, not gated) whose activation is the exact GELU gets it fused into ``up``."""
    if not available():
        return 0
    n = _replace(model, nn.Linear, PackedLinear)
    if fuse_gelu:
        _fuse_gelu(model)
    return n


def _fuse_gelu(model: nn.Module) -> list:
    """Each FFN (``up`` packed, ``act`` the exact GELU, not gated) gets its GELU fused into ``up``;
    the FFNs changed."""
    fused = []
    for m in model.modules():
        up = getattr(m, "up", None)
        if isinstance(up, PackedLinear) and getattr(m, "act", None) is F.gelu and not getattr(m, "glu", False):
            up.post, m.act = "gelu", _fused
            fused.append(m)
    return fused


def unpack_linears(model: nn.Module) -> int:
    """Every PackedLinear back to an ``nn.Linear`` with the same weights (a fused GELU back to the
    FFN's activation), in place; the number unpacked."""
    for m in model.modules():
        if getattr(m, "act", None) is _fused:
            m.act = F.gelu
    return _replace(model, PackedLinear, PackedLinear.unpack)


@contextmanager
def packed(model: nn.Module, fuse_gelu: bool = True):
    """``pack_linears`` for the ``with`` block only (inference), then the model exactly as it was:
    the same ``nn.Linear`` modules and parameters (not copies), the FFN activations put back. For
    a model that is served between training steps (berts.embed.Encoder.encode): packing its
    weights costs one conversion per call (milliseconds for MiniLM). Linears with forward hooks are
    left unpacked (the hooks keep firing). Yields the number packed."""
    if not available() or any(p.device.type != "cpu" for p in model.parameters()):
        yield 0
        return
    # a Linear somebody watches (forward hooks: int8 calibration's input maxima, a user's probe)
    # stays as it is: a packed stand-in would run instead of it and its hooks would never fire
    swaps = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
             if type(child) is nn.Linear and child.weight.dtype == torch.float32
             and not (child._forward_hooks or child._forward_pre_hooks)]
    fused = []  # the FFNs whose activation moved into their up-projection
    try:
        with torch.no_grad():
            for parent, name, child in swaps:
                setattr(parent, name, PackedLinear(child))
        if fuse_gelu:
            fused = _fuse_gelu(model)
        yield len(swaps)
    finally:
        for parent, name, child in swaps:
            setattr(parent, name, child)
        for m in fused:
            m.act = F.gelu
