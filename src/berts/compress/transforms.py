"""Compression as a transform of a trained model, no training: int8 and pruning, in one place.

* ``quantize_int8(model, scheme)``: torch's dynamic int8 on every nn.Linear (int8 weights,
  activations quantized per call), in place; schemes per-channel (the default), per-tensor (the
  old one), smooth (calibrated SmoothQuant scales), measured below. What ``Classifier.from_pretrained(dir, int8=True)``
  serves (`berts predict/evaluate --int8`, `berts compare --int8`'s int8 rows, the demo) and the
  bench's int8 side use. It has no saved form: packed int8 Linears have no Hugging Face names, so
  a directory is quantized when it is loaded. The saved int8 model is the ONNX graph below.
* ``quantize_onnx_int8(src, dst)``: onnxruntime's dynamic int8 of an exported graph, file to file
  (`berts export --int8` writes ``OUT.int8.onnx`` with it).
* ``prune(model, config, dataset)``: a smaller model of ``config``'s shape cut out of ``model`` by
  activation importance on the first examples of ``dataset`` (berts.compress.prune, Minitron):
  what `berts distill --student-init prune` starts its student from.
* ``prune_directory(src, out, texts, **shape)``: the same, from a saved directory to a new one.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

from berts.errors import UserError
from berts.compress.losses import uniform_layer_map
from berts.compress.prune import check_prunable, measure_importance, prune_model
from berts.data.classification import ClassificationDataset
from berts.data.tables import Example
from berts.hf import load
from berts.model.onednn import unpack_linears
from berts.tokenizer.wordpiece import load_tokenizer

PRUNE_EXAMPLES = 1024  # pruning measures activations on the first this many examples
PRUNE_BATCH = 64


# ----------------------------------------------------------------------------- int8
# The schemes of `--int8 [SCHEME]` / ``int8=SCHEME``; True (and a bare `--int8`) is the default.
# all-MiniLM-L6-v2, 512 Brown sentences, lowest / mean cosine to the fp32 embedding, CPU time against
# fp32 at one thread (experiments/2026-12-06-int8):
#   per-tensor  0.826 / 0.929, 1.92x: torch's quantize_dynamic as it comes (what int8 was until now)
#   per-channel 0.977 / 0.992, 1.87x: weights per output channel, activations on the full 8 bits
#   smooth      0.991 / 0.997, 2.03x: per-channel + SmoothQuant scales calibrated on 256 texts
# (2026-12-07: fp32 serving got faster (oneDNN-packed linears), the int8 sides did not: smooth 1.83x
# at one thread on these paragraphs; 1.98x-2.25x (four runs) at lowest cosine 0.993 at 2 threads on
# short snippets, benchmarks/embed.py; experiments/2026-12-07-encode-speed)
# Most of the loss was torch's default ``reduce_range=True``: its x86 kernels quantize activations
# to 7 bits (against overflow in an int16 step of old AVX2 code); the full 8 bits halve the step.
INT8_SCHEMES = ("per-channel", "per-tensor", "smooth")
DEFAULT_INT8 = "per-channel"
SMOOTH_ALPHA = 0.7  # SmoothQuant's migration strength (0.5: min cosine 0.949, 0.3: 0.616 on MiniLM)
CALIBRATION_TEXTS = 256  # what `--int8 smooth` calibrates on: the first texts of the command's input


def int8_scheme(value) -> str | None:
    """``int8`` as callers give it (False/None: off, True: the default, or a scheme name) -> a scheme or None."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_INT8
    if value not in INT8_SCHEMES:
        raise UserError(f"int8 scheme {value!r}: one of {', '.join(INT8_SCHEMES)}")
    return value


@functools.cache  # one class (built on first use: torch.ao is imported only when int8 is asked for)
def _int8_linear_class():
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    class Int8Linear(DynamicLinear):
        """torch's dynamic int8 Linear on the full 8 bits of activation (``reduce_range=False``),
        after an optional per-input-channel division (``inv_scale``, SmoothQuant: the weight
        columns were multiplied by the same scale, so x/s @ (W*s)^T = x @ W^T in exact arithmetic)."""
        inv_scale = None

        def forward(self, x):
            import torch

            if self.inv_scale is not None:
                x = x * self.inv_scale  # [..., in]: outlier channels shrunk, their weights grown
            y = torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False)
            return y.to(x.dtype)

        def _get_name(self):
            return "Int8Linear"

    return Int8Linear


def input_maxima(model, run) -> dict:
    """{Linear name: max |input| per input channel [in]} over what ``run()`` feeds ``model``."""
    import torch

    amax, hooks = {}, []
    for name, module in model.named_modules():
        if type(module) is torch.nn.Linear:  # what quantize_dynamic swaps (a head that subclasses it stays fp32)
            def hook(mod, inputs, output, name=name):
                x = inputs[0].detach()
                a = x.abs().reshape(-1, x.shape[-1]).amax(0).float()
                amax[name] = torch.maximum(amax[name], a) if name in amax else a
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.inference_mode():
            run()
    finally:
        for h in hooks:
            h.remove()
    return amax


def quantize_int8(model, scheme=True, calibrate=None):
    """Dynamic int8 of the model's nn.Linear layers (in place; returns the model): int8 weights,
    activations quantized per call. ``scheme``: see INT8_SCHEMES (True: per-channel). ``smooth``
    needs ``calibrate``: a function that runs the fp32 model on a few hundred real texts (its
    Linear inputs' maxima give the scales). The fast paths keep working: a quantized Linear takes
    the unpadded [T, H] rows as well. Linears packed for oneDNN (berts.model.onednn, fp32 CPU
    serving) are unpacked first."""
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

    scheme = int8_scheme(scheme)
    if scheme is None:
        return model
    unpack_linears(model)
    if scheme == "per-tensor":  # torch's defaults, 7-bit activations included: the old int8, unchanged
        with warnings.catch_warnings():  # torch.ao's deprecation notice (torchao is its successor)
            warnings.simplefilter("ignore")
            return quantize_dynamic(model, {torch.nn.Linear: default_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    scales = {}
    if scheme == "smooth":
        if calibrate is None:
            raise UserError("int8 'smooth' calibrates on real texts, and this model's serving gives none (the "
                            "classifier and sentence-encoder commands do): use per-channel")
        amax = input_maxima(model, calibrate)
        with torch.no_grad():
            for name, module in model.named_modules():
                if type(module) is torch.nn.Linear and name in amax:
                    wmax = module.weight.abs().amax(0).float().clamp(min=1e-5)  # [in]
                    s = (amax[name].clamp(min=1e-5) ** SMOOTH_ALPHA / wmax ** (1 - SMOOTH_ALPHA)).clamp(1e-5, 1e5)
                    module.weight.mul_(s.to(module.weight.dtype))  # [out, in] * [in]
                    scales[name] = (1.0 / s).to(module.weight.dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    cls = _int8_linear_class()
    for name, module in model.named_modules():
        if isinstance(module, DynamicLinear):
            module.__class__ = cls
            module.inv_scale = scales.get(name)
    return model


def quantize_onnx_int8(src: str | Path, dst: str | Path) -> None:
    """onnxruntime's dynamic int8 quantization of the graph ``src`` into ``dst`` (int8 weights,
    activations quantized per batch)."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()  # its "consider pre-processing" warning goes to the root logger
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)


# ----------------------------------------------------------------------------- pruning
def prune(model, config, dataset, examples: int = PRUNE_EXAMPLES, where: str = "--student-init prune"):
    """(pruned model, kept layers, examples measured): ``model`` (a BertModel or a classifier) cut to
    ``config``'s shape. It keeps the layers TinyBERT's uniform map gives a student of that depth
    (student layer m <- teacher layer floor(m Lt / Ls)), then the residual dimensions, heads, head
    dimensions and FFN neurons with the largest mean |activation| over the first ``examples`` of
    ``dataset`` (its items: ``dataset[(0, 0, indices)]`` -> a batch, as the training datasets)."""

    source_config = model.config
    check_prunable(source_config, config, where)
    n = min(len(dataset), examples)
    batches = (dataset[(0, 0, list(range(i, min(n, i + PRUNE_BATCH))))] for i in range(0, n, PRUNE_BATCH))
    layers = [j - 1 for j in uniform_layer_map(config.num_hidden_layers, source_config.num_hidden_layers)[1:]]
    return prune_model(model, config, measure_importance(model, batches), layers), layers, n


def prune_directory(src: str | Path, out: str | Path, texts: list[str], examples: int = PRUNE_EXAMPLES,
                    max_length: int = 128, **shape) -> dict:
    """Prune the saved model ``src`` (an encoder or a classifier) to ``shape`` (config keys:
    num_hidden_layers, hidden_size, num_attention_heads, intermediate_size) on the activations of
    ``texts``, and save it with ``src``'s tokenizer as the directory ``out`` (a plain Hugging Face
    directory; a classifier keeps its labels). Returns what was kept. The result is an init for
    distillation, not a finished model (cutting residual dimensions or layers changes its outputs)."""

    where = f"pruning {src}"
    if not texts:
        raise UserError(f"{where}: no texts to measure the activations on")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load(src).eval()
    tokenizer = load_tokenizer(src)
    allowed = {"num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size"}
    unknown = sorted(set(shape) - allowed)
    if unknown:
        raise UserError(f"{where}: {unknown[0]} is not a shape pruning changes ({', '.join(sorted(allowed))})")
    config = model.config.replace(**shape)
    max_length = min(max_length, model.config.max_position_embeddings)
    dataset = ClassificationDataset([Example(text=t) for t in texts], tokenizer, max_length=max_length)
    pruned, layers, n = prune(model, config, dataset, examples, where)
    pruned.save_pretrained(out, tokenizer)
    return {"layers": layers, "examples": n, "parameters": pruned.num_parameters(),
            "source_parameters": model.num_parameters()}
