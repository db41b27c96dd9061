"""fp32 linear layers for CPU serving with their weights held as oneDNN tensors.

torch's ``F.linear`` on the CPU calls MKL's sgemm; ``torch.ops.mkldnn._linear_pointwise`` on a
weight converted once to a oneDNN tensor (as ``torch.utils.mkldnn.MkldnnLinear`` holds it) runs
oneDNN's own fp32 matrix product instead. Same fp32 arithmetic, other blocking: the
outputs match ``F.linear`` to float rounding (tests/test_token_classification.py checks 1e-5 on the
logits). Measured on this machine's AMD EPYC (AVX-512), one thread, the four matrix shapes of
preset small on 500 tokens: 12% less CPU time than ``F.linear`` (experiments/2026-12-06-ner).

    pack_linears(model)     # in place: every nn.Linear -> PackedLinear (CPU, fp32, inference only)
    unpack_linears(model)   # back to nn.Linear (quantize_int8 does this first: it quantizes nn.Linear)

Serving only: a packed model has no gradients; its state dict holds nn.Linear's dense entries
(sizes and saving stay as they were).
"""
from __future__ import annotations

import torch
from torch import nn


def available() -> bool:
    """Whether this torch build has oneDNN and its packed linear op."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


class PackedLinear(nn.Module):
    """An ``nn.Linear`` (``in_features`` -> ``out_features``) whose weight is a oneDNN tensor."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w = linear.weight.detach().float()
        self.register_buffer("weight", w.to_mkldnn())  # a oneDNN tensor, as torch.utils.mkldnn.MkldnnLinear's
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().float().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [..., in] -> [..., out], any leading shape
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


def pack_linears(model: nn.Module) -> int:
    """Every plain fp32 ``nn.Linear`` of ``model`` (on the CPU) as a PackedLinear, in place; the
    number packed (0 when oneDNN is not available: the model is left as it was). Other dtypes and
    subclasses of nn.Linear (quantized ones) are left alone."""
    if not available():
        return 0
    return _replace(model, nn.Linear, PackedLinear)


def unpack_linears(model: nn.Module) -> int:
    """Every PackedLinear back to an ``nn.Linear`` with the same weights, in place; the number unpacked."""
    return _replace(model, PackedLinear, PackedLinear.unpack)
