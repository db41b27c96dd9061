"""`berts bench --only infer --engines ...`: one classifier served by the engines users deploy with.

Engines (those installed take part):

==================  ==============================================================================
berts               berts.serve.predict.Classifier: fp32, fast paths on (unpad, pack, last layer on [CLS])
berts-int8          the same, torch dynamic int8 on the encoder's linear layers (fast paths still on)
transformers        transformers' AutoModelForSequenceClassification on the same directory, SDPA
torch-int8          that model after ``torch.ao.quantization.quantize_dynamic`` (what PyTorch users do)
onnxruntime         `berts export --optimize`'s graph (parity-checked), onnxruntime CPU
onnxruntime-int8    its dynamic int8 copy (onnxruntime.quantization.quantize_dynamic)
==================  ==============================================================================

Every engine gets the same padded batches (real texts with their real lengths, ``pad_width``,
capped at ``seq``), the same thread count (torch's intra-op threads and onnxruntime's
intra_op_num_threads), in alternating order (the order reverses every round), and the median of
the timed rounds is reported: tokens/s (real tokens), latency per batch, and the speed relative to
berts fp32 (the median over rounds of berts' time / the engine's, on the same batch). With a
labelled file each engine also predicts the whole file (batches of 32, longest first) and its
accuracy and its label agreement with berts fp32 are reported.
"""
from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from berts.errors import UserError
from berts.commands.common import data_settings
from berts.compress.transforms import quantize_int8
from berts.data.labels import LabelMap
from berts.data.tables import Example
from berts.data.tables import read_table
from berts.model.config import preset
from berts.model.heads import BertForSequenceClassification
from berts.model.runner import rows
from berts.serve.export import export_onnx, run_session, session
from berts.serve.export import require_onnx
from berts.serve.predict import Classifier
from berts.tokenizer.wordpiece import Tokenizer
from berts.tools.bench.batches import corpus_documents, default_corpus

ENGINES = ("berts", "berts-int8", "transformers", "torch-int8", "onnxruntime", "onnxruntime-int8")


def available(name: str) -> str | None:
    """None when the engine can run here, else why not."""
    try:
        if name in ("transformers", "torch-int8"):
            import transformers  # noqa: F401
        if name.startswith("onnxruntime"):

            require_onnx()
    except (ImportError, UserError) as exc:
        return str(exc)
    return None


def parse_engines(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [n for n in names if n not in ENGINES]
    if unknown:
        raise UserError(f"--engines: unknown {', '.join(unknown)} (known: {', '.join(ENGINES)})")
    if "berts" not in names:
        names.insert(0, "berts")  # the reference every ratio is against
    return names


class Engine:
    """A name and ``run(batch) -> logits`` (numpy [B, C])."""

    def __init__(self, name: str, run):
        self.name, self.run = name, run


def _transformers_model(directory: Path):
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            directory, attn_implementation="sdpa").eval()


def build_engines(names: list[str], directory: Path, workdir: Path, texts: list[str], threads: int) -> tuple[list, dict]:
    """The engines asked for that can run here, and {name: why not} for the others."""

    engines, skipped = [], {}
    for name in names:
        why = available(name)
        if why:
            skipped[name] = why
            continue
        if name in ("berts", "berts-int8"):
            clf = Classifier.from_pretrained(directory, int8=name == "berts-int8", device="cpu")
            engines.append(Engine(name, lambda b, clf=clf: clf.forward_batch(b).float().numpy()))
        elif name in ("transformers", "torch-int8"):
            model = _transformers_model(directory)
            if name == "torch-int8":
                model = quantize_int8(model)
            engines.append(Engine(name, lambda b, m=model: m(**b).logits.float().numpy()))
    onnx_names = [n for n in names if n.startswith("onnxruntime") and n not in skipped]
    if onnx_names:

        report = export_onnx(directory, workdir / "model.onnx", optimize=True, int8="onnxruntime-int8" in onnx_names,
                             texts=texts[:64], threads=threads)
        for name in onnx_names:
            sess = session(report["files"]["int8" if name.endswith("int8") else "fp32"], threads)
            engines.append(Engine(name, lambda b, s=sess: run_session(s, b)[0]))
    return engines, skipped


def make_batches(clf, texts: list[str], batch: int, rounds: int, seq: int, seed: int) -> list[dict]:
    """``rounds`` batches of ``batch`` texts drawn at random, padded per batch by the data code."""

    ds = clf.dataset([Example(t, None, None, i + 1, "<bench>") for i, t in enumerate(texts)], seq)
    rng = np.random.default_rng(seed + batch)
    out = []
    for _ in range(rounds):
        idx = rng.choice(len(ds), batch, replace=len(ds) < batch)
        b = ds.collate(idx)
        out.append({k: b[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
    return out


def time_engines(engines: list[Engine], batches: list[dict], warmup: int) -> dict[str, dict]:
    times = {e.name: [] for e in engines}
    tokens = []
    with torch.inference_mode():
        for r, b in enumerate(batches):
            for e in engines if r % 2 == 0 else engines[::-1]:
                t = time.perf_counter()
                e.run(b)
                dt = time.perf_counter() - t
                if r >= warmup:
                    times[e.name].append(dt)
            if r >= warmup:
                tokens.append(int(b["attention_mask"].sum()))
    ref = times[engines[0].name]
    result = {}
    for e in engines:
        t = times[e.name]
        result[e.name] = {"tokens_per_s": statistics.median(n / x for n, x in zip(tokens, t)),
                          "latency_ms": statistics.median(t) * 1e3,
                          "vs_berts": statistics.median(a / x for a, x in zip(ref, t))}
    return result


def accuracy(engines: list[Engine], clf, examples, batch: int = 32) -> dict[str, dict]:
    """Each engine's accuracy on the labelled examples, and how often it agrees with berts fp32.
    Batches: berts.model.runner's, longest first, as Classifier.logits takes them (engines that are
    not torch modules, onnxruntime's, run through the same loop with their own forward)."""

    ds = clf.dataset(examples)
    order = np.argsort(-ds.lengths, kind="stable")
    gold = ds.labels
    keys = ("input_ids", "attention_mask", "token_type_ids")
    preds = {e.name: rows(None, ds, batch_size=batch, order=order, inference=True,
                          forward=lambda b, e=e: torch.as_tensor(np.asarray(e.run({k: b[k] for k in keys})).argmax(-1)))
             for e in engines}
    ref = preds[engines[0].name]
    return {name: {"accuracy": float((p == gold).mean()), "agreement": float((p == ref).mean()),
                   "examples": len(ds)} for name, p in preds.items()}


def run_engines(opts, names: list[str], model: str | None = None, eval_file: str | None = None,
                batches=(1, 32)) -> dict:
    """The whole engines benchmark (see the module docstring) as a dict."""
    import tempfile

    if opts.threads:
        torch.set_num_threads(opts.threads)
    threads = torch.get_num_threads()
    if eval_file and not model:
        raise UserError("--eval-file needs --model DIR (a fine-tuned classifier whose labels the file has)")
    if opts.device != "cpu":
        raise UserError("--engines runs on the CPU (int8 kernels and onnxruntime's CPU provider)")
    result = {"engines": names, "threads": threads, "seq": opts.seq, "batches": list(batches), "steps": opts.steps,
              "warmup": opts.warmup, "torch": torch.__version__, "rows": [], "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="berts-engines-") as tmp:
        workdir = Path(tmp)
        examples = None
        if eval_file:

            clf = Classifier.from_pretrained(model, device="cpu")

            class _NoFlags:  # the model's own column settings, nothing overridden
                header = None

            d = data_settings(_NoFlags(), clf.settings, labels=True)
            examples, _ = read_table(eval_file, d, task="classification")
            texts = [e.text for e in examples]
            result["texts"] = str(eval_file)
        else:
            corpus = Path(opts.corpus) if opts.corpus else default_corpus(workdir / "corpus.txt")
            texts = [p for d in corpus_documents(corpus) for p in d]
            result["texts"] = str(opts.corpus) if opts.corpus else "pydoc_data.topics (CPython reference manual)"
        directory = Path(model) if model else _random_classifier(opts, texts, workdir)
        result["model"] = str(model) if model else f"random {opts.preset} classifier (2 labels)"
        clf = Classifier.from_pretrained(directory, device="cpu")
        if clf.regression:
            raise UserError(f"{directory}: --engines benchmarks a classifier, this one is a regression model")
        engines, result["skipped"] = build_engines(names, directory, workdir, texts, threads)
        seq = min(opts.seq, clf.max_length)
        for b in batches:
            rounds = make_batches(clf, texts, b, opts.warmup + opts.steps, seq, opts.seed)
            padding = 1 - sum(int(x["attention_mask"].sum()) for x in rounds) / sum(x["input_ids"].numel() for x in rounds)
            for name, row in time_engines(engines, rounds, opts.warmup).items():
                result["rows"].append({"engine": name, "batch": b, "padding": padding, **row})
        if examples is not None:
            result["accuracy"] = accuracy(engines, clf, examples)
    return result


def _random_classifier(opts, texts: list[str], workdir: Path) -> Path:
    """A randomly initialised preset classifier with a WordPiece vocabulary of the texts."""

    corpus = workdir / "texts.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    tok = Tokenizer.train([corpus], min(8000, preset(opts.preset).vocab_size), show_progress=False)
    torch.manual_seed(opts.seed)
    config = preset(opts.preset).replace(vocab_size=tok.vocab_size, **LabelMap(["neg", "pos"]).to_config())
    directory = workdir / "model"
    BertForSequenceClassification(config).save_pretrained(directory, tokenizer=tok)
    return directory


def format_engines(result: dict) -> str:
    lines = [f"berts bench --engines: {result['model']}; texts: {result['texts']}; seq cap {result['seq']}, "
             f"{result['threads']} threads, median of {result['steps']} rounds after {result['warmup']} warm-up, "
             f"engines alternated; torch {result['torch']}"]
    for name, why in result["skipped"].items():
        lines.append(f"  skipped {name}: {why}")
    head = f"{'engine':<17} {'batch':>5} {'pad':>4} {'tokens/s':>9} {'latency ms':>10} {'vs berts':>8}"
    lines += ["", head, "-" * len(head)]
    for r in result["rows"]:
        lines.append(f"{r['engine']:<17} {r['batch']:>5} {r['padding'] * 100:>3.0f}% {r['tokens_per_s']:>9.0f} "
                     f"{r['latency_ms']:>10.2f} {r['vs_berts']:>7.2f}x")
    acc = result.get("accuracy")
    if acc:
        lines += ["", f"{'engine':<17} {'accuracy':>8} {'agrees with berts fp32':>22}  ({next(iter(acc.values()))['examples']} examples)"]
        for name, a in acc.items():
            lines.append(f"{name:<17} {a['accuracy']:>8.4f} {a['agreement']:>22.4f}")
    return "\n".join(lines)
