"""Compression as a transform of a trained model, no training: int8 and pruning, in one place.

* ``quantize_int8(model)``: torch's dynamic int8 on every nn.Linear (weights int8 per tensor,
  activations quantized per batch), in place. What ``Classifier.from_pretrained(dir, int8=True)``
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
def quantize_int8(model):
    """Dynamic int8 quantization of the model's nn.Linear layers (in place; returns the model).

    The fast paths keep working: a quantized Linear takes the unpadded [T, H] rows as well.
    Linears packed for oneDNN (berts.model.onednn, fp32 CPU serving) are unpacked first."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    unpack_linears(model)

    with warnings.catch_warnings():  # torch.ao's deprecation notice (torchao is its successor)
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


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
