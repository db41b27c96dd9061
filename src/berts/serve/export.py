"""ONNX export: a berts (or Hugging Face) directory as an ONNX graph, checked in onnxruntime.

    report = export_onnx("runs/sst2/best", "model.onnx", optimize=True, int8=True)

* What is exported is the plain path (fast paths off: unpad, pack and sparse output are
  data-dependent gathers an exported graph should not carry), run layer by layer
  (``bert.embed`` / ``bert.run_layer`` / ``bert.pool``) with the attention mask built here as a
  tensor op. ``BertModel.forward`` skips the mask when nothing is padded (a Python branch on a
  tensor's value, which ``torch.export`` cannot trace); the layer-by-layer pieces take the mask
  as given, so one graph serves every batch.
* Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64 [batch, sequence], both axes
  dynamic; a multiple-choice model's are [batch, choices, sequence], all three dynamic, checked on
  rows of 4 consecutive texts); output ``logits`` [batch, labels] for a classifier ([batch,
  choices] for multiple choice; a multi-label model's int8 is compared by its label decisions
  at its saved thresholds), else the encoder's
  ``last_hidden_state`` [batch, sequence, hidden] (and ``pooler_output`` when it has a pooler).
* After export the graph runs in onnxruntime on real text (``texts``, or paragraphs of the
  Python reference manual that ship with CPython), padded per batch, and its outputs are compared
  with berts' own forward in fp32: more than ``tolerance`` (1e-4) apart is an error.
* ``optimize``: onnxruntime's transformer optimizer on the graph (it fuses LayerNorm and GELU; not
  attention, on the graph torch's dynamo exporter writes), checked the same way. Measured: no
  speed-up (onnxruntime applies these fusions itself at load; docs/commands/export.md). ``int8``: a dynamically quantized copy (``OUT.int8.onnx``,
  onnxruntime's ``quantize_dynamic``, int8 weights), reported against the fp32 graph (label
  agreement, and accuracy on ``labels`` when given), never silently.

onnxruntime, onnx and onnxscript (torch's exporter) are the ``onnx`` extra: ``pip install 'berts[onnx]'``.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from berts.compress.transforms import quantize_onnx_int8
from berts.errors import UserError
from berts.data.classification import ClassificationDataset
from berts.data.tables import Example
from berts.data.tables import check_max_length
from berts.hf import load
from berts.serve.predict import agreement
from berts.tokenizer.wordpiece import load_tokenizer
from berts.tools.bench.batches import corpus_documents, default_corpus

INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TOLERANCE = 1e-4
CHOICES = 4  # a multiple-choice model's check: each batch of texts read as rows of 4 choices


def require_onnx():
    """(onnx, onnxruntime), or a one-line error saying how to install them."""
    try:
        import onnx
        import onnxruntime
        import onnxscript  # noqa: F401  torch.onnx.export(dynamo=True) needs it
    except ImportError as exc:
        raise UserError(f"ONNX export needs the onnx extra ({exc.name} is not installed): "
                        "pip install 'berts[onnx]'") from None
    return onnx, onnxruntime


class Exportable(nn.Module):
    """A task model's plain path as a graph: ids, mask, types -> logits (classifier) or hidden states."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.bert = getattr(model, "bert", model)
        self.head = getattr(model, "classifier", None)
        # a head on every token declares its outputs and how they come from the last hidden states
        # (BertForQuestionAnswering: export_outputs = ("start_logits", "end_logits"), export_head(x))
        self.token_head = getattr(model, "export_head", None)
        self.output_names = (list(model.export_outputs) if self.token_head is not None else ["logits"]
                             if self.head is not None else
                             ["last_hidden_state"] + (["pooler_output"] if self.bert.pooler is not None else []))

    def forward(self, input_ids, attention_mask, token_type_ids):
        bert = self.bert
        choices = input_ids.shape[1] if input_ids.dim() == 3 else None  # multiple choice: [B, C, S]
        if choices is not None:
            input_ids, attention_mask, token_type_ids = (x.reshape(-1, x.shape[-1])
                                                         for x in (input_ids, attention_mask, token_type_ids))
        state = bert.embed(input_ids, None, token_type_ids)  # no mask given: the plain path
        state = replace(state, mask=attention_mask.bool()[:, None, None, :], attention_mask=attention_mask)
        for i in range(len(bert.encoder.layers)):
            state = bert.run_layer(i, state)
        if self.token_head is not None:
            return self.token_head(state.x)
        if self.head is not None:  # a sequence head reads the pooled [CLS], a token head every position
            batch = {} if choices is None else {"num_choices": choices}
            pooled = bert.pool(state) if bert.pooler is not None else None
            return self.head(SimpleNamespace(pooler_output=pooled, last_hidden_state=state.x), batch, None).fields["logits"]
        if bert.pooler is None:
            return state.x
        return state.x, bert.pool(state)


def reference_outputs(model, batch: dict) -> list[np.ndarray]:
    """berts' own forward (eval, fp32) on a batch: what the graph must reproduce."""
    with torch.inference_mode():
        out = model(**{k: batch[k] for k in INPUTS})
    if getattr(model, "export_outputs", None):
        return [getattr(out, name).float().numpy() for name in model.export_outputs]
    if getattr(model, "classifier", None) is not None:
        return [out.logits.float().numpy()]
    fields = [out.last_hidden_state] + ([out.pooler_output] if out.pooler_output is not None else [])
    return [f.float().numpy() for f in fields]


def real_texts(n: int = 96) -> list[str]:
    """Paragraphs of real text with real lengths (CPython's reference manual topics)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="berts-export-") as tmp:
        docs = corpus_documents(default_corpus(Path(tmp) / "corpus.txt"))
    paras = [p for d in docs for p in d]
    step = max(1, len(paras) // n)
    return paras[::step][:n]


def text_batches(tokenizer, texts: list[str], pairs=None, max_length: int = 128, batch_size: int = 16):
    """Padded batches (numpy int64) of the texts, in order, by the dataset code training uses."""

    examples = [Example(t, None if pairs is None else pairs[i], None, i + 1, "<text>") for i, t in enumerate(texts)]
    ds = ClassificationDataset(examples, tokenizer, max_length=max_length)
    for lo in range(0, len(ds), batch_size):
        b = ds.collate(np.arange(lo, min(lo + batch_size, len(ds))))
        yield {k: b[k] for k in INPUTS}


def session(path, threads: int | None = None):
    _, ort = require_onnx()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # no busy-waiting between runs: onnxruntime's threads otherwise spin on the cores after each
    # call, and whatever runs next (the other engines of a benchmark, the rest of a server) waits
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_session(sess, batch: dict) -> list[np.ndarray]:
    names = {i.name for i in sess.get_inputs()}
    return sess.run(None, {k: batch[k].numpy() if isinstance(batch[k], torch.Tensor) else batch[k]
                           for k in INPUTS if k in names})


def export_model(model, out: Path, example: dict) -> list[str]:
    """torch.onnx.export (the dynamo exporter) of ``Exportable(model)``, dynamic batch and sequence."""
    require_onnx()
    model.eval()
    model.set_fast_path(unpad=False, pack=False, sparse_output=False, fast_dropout=False)
    wrapper = Exportable(model).eval()
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    if example["input_ids"].dim() == 3:  # multiple choice: [batch, choices, sequence], all three dynamic
        shapes = {k: {0: batch, 1: torch.export.Dim("choices"), 2: seq} for k in INPUTS}
    else:
        shapes = {k: {0: batch, 1: seq} for k in INPUTS}
    args = tuple(example[k] for k in INPUTS)
    import contextlib
    import io
    import logging

    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed. Skipping ..." and the like
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(wrapper, args, dynamo=True, dynamic_shapes=shapes,
                                        input_names=list(INPUTS), output_names=wrapper.output_names)
        finally:
            quiet.setLevel(level)
    try:
        program.save(str(out))
    except OSError as exc:
        raise UserError(f"{out}: cannot write the ONNX file ({exc.strerror or exc})") from None
    return wrapper.output_names


def check_parity(model, path: Path, batches: list[dict], threads: int | None = None) -> float:
    """Largest |onnxruntime - berts| over the batches' outputs (padding positions included)."""
    sess = session(path, threads)
    worst = 0.0
    for b in batches:
        for ours, theirs in zip(reference_outputs(model, b), run_session(sess, b)):
            worst = max(worst, float(np.abs(ours - theirs).max()))
    return worst


def optimize_graph(src: Path, dst: Path, config) -> None:
    """onnxruntime's transformer optimizer (LayerNorm and GELU fusions; its attention fusion does not
    match the graph torch's dynamo exporter writes)."""
    from onnxruntime.transformers.optimizer import optimize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = optimize_model(str(src), model_type="bert", num_heads=config.num_attention_heads,
                             hidden_size=config.hidden_size)
    opt.save_model_to_file(str(dst))


def int8_path(out: Path) -> Path:
    return out.with_name(out.name[:-5] + ".int8.onnx" if out.name.endswith(".onnx") else out.name + ".int8.onnx")


def export_onnx(directory, out, *, optimize: bool = False, int8: bool = False, texts: list[str] | None = None,
                pairs: list[str] | None = None, labels: list[str] | None = None, tolerance: float = TOLERANCE,
                threads: int | None = None, max_length: int | None = None) -> dict:
    """Export ``directory`` to ``out`` (see the module docstring); returns what was written and
    checked. ``labels``: the texts' gold labels (a classifier's names), for int8's accuracy."""

    require_onnx()
    directory, out = Path(directory), Path(out)
    if out.is_dir():
        raise UserError(f"{out}: is a directory; name the .onnx file to write")
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such directory for the ONNX file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = load(directory).eval()
    missing = sorted(set(getattr(model, "loading_info", {}).get("missing_keys") or []))
    if missing:
        raise UserError(f"{directory}: {len(missing)} weights are not in the checkpoint ({', '.join(missing[:6])}); "
                        "the graph would hold random weights")
    model.set_fast_path(unpad=False, pack=False, sparse_output=False, fast_dropout=False)
    tokenizer = load_tokenizer(directory)

    max_length = check_max_length(max_length, model.config.max_position_embeddings)  # --max-length: honoured
    texts = texts or real_texts()
    batches = list(text_batches(tokenizer, texts, pairs, max_length))
    if getattr(model, "choice_inputs", False):  # [B, C, S]: consecutive texts as a row's choices
        batches = [{k: v[:len(v) // CHOICES * CHOICES].reshape(-1, CHOICES, v.shape[-1]) for k, v in b.items()}
                   for b in batches if len(b["input_ids"]) >= CHOICES]
    report = {"model": str(directory), "architecture": type(model).__name__, "texts": len(texts),
              "tolerance": tolerance, "files": {}}
    t = time.perf_counter()
    report["outputs"] = export_model(model, out, batches[0])
    report["export_s"] = time.perf_counter() - t
    report["max_abs_diff"] = check_parity(model, out, batches, threads)
    report["files"]["fp32"] = str(out)
    if optimize:
        optimize_graph(out, out, model.config)
        report["optimized_max_abs_diff"] = check_parity(model, out, batches, threads)
    worst = max(report["max_abs_diff"], report.get("optimized_max_abs_diff", 0.0))
    if not worst <= tolerance:
        raise UserError(f"{out}: onnxruntime's outputs differ from berts' by {worst:.2e} on {len(texts)} texts "
                        f"(more than {tolerance:g}); the file is written but do not trust it")
    if int8:
        q = int8_path(out)
        quantize_onnx_int8(out, q)  # int8's one place: berts.compress.transforms
        report["files"]["int8"] = str(q)
        report["int8"] = compare_int8(model, out, q, batches, labels, threads)
    return report


def compare_int8(model, fp32_path: Path, int8_path_: Path, batches: list[dict], labels=None,
                 threads: int | None = None) -> dict:
    """The int8 graph against the fp32 one on the same batches (and against gold labels)."""

    a, b = session(fp32_path, threads), session(int8_path_, threads)
    if getattr(model, "export_outputs", None):  # per-token outputs [B, S]: batches differ in S
        diff, same = 0.0, []
        for x in batches:
            m = x["attention_mask"].numpy().astype(bool)  # [B, S]: padding positions left out
            oa, ob = run_session(a, x), run_session(b, x)
            diff = max([diff] + [float(np.abs(ya - yb)[m].max()) for ya, yb in zip(oa, ob)])
            # a row agrees when every output picks the same position (QA: the same start and end)
            same.append(np.all([np.where(m, ya, -np.inf).argmax(-1) == np.where(m, yb, -np.inf).argmax(-1)
                                for ya, yb in zip(oa, ob)], axis=0))
        return {"max_abs_diff": diff, "argmax_agreement": float(np.concatenate(same).mean())}
    fa, fb = [run_session(a, x)[0] for x in batches], [run_session(b, x)[0] for x in batches]
    if fa[0].ndim == 3 and getattr(model, "classifier", None) is not None:  # a tag per token [B, S, T]: on the real tokens
        real = [np.asarray(x["attention_mask"]).astype(bool) for x in batches]
        fa, fb = ([f[m] for f, m in zip(fs, real)] for fs in (fa, fb))
        fa, fb = np.concatenate(fa), np.concatenate(fb)
        return agreement(fa, fb, False)  # tokens: no sentence labels to score
    fa, fb = np.concatenate(fa), np.concatenate(fb)
    if getattr(model, "classifier", None) is None:  # hidden states
        return {"max_abs_diff": float(np.abs(fa - fb).max())}
    if getattr(model.config, "problem_type", None) == "multi_label_classification":
        # each (row, label) decision at the saved thresholds (finetune_data.multi_label; 0.5 without)
        t = np.asarray(((model.config.finetune_data or {}).get("multi_label") or {}).get("thresholds") or [0.5])
        da, db = 1 / (1 + np.exp(-fa)) >= t, 1 / (1 + np.exp(-fb)) >= t
        return {"decision_agreement": float((da == db).mean()), "max_abs_diff": float(np.abs(fa - fb).max())}
    result = agreement(fa, fb, getattr(model, "is_regression", False))
    if labels is not None and not getattr(model, "is_regression", False):
        names = [model.config.id2label[i] for i in range(len(model.config.id2label))]
        gold = np.array([names.index(str(y)) if str(y) in names else -1 for y in labels])
        result["fp32_accuracy"] = float((fa.argmax(-1) == gold).mean())
        result["int8_accuracy"] = float((fb.argmax(-1) == gold).mean())
    return result
