"""Pretraining recipes, measured (issue 11): the same model size, the same wall clock per run,
then the same fine-tuning on the Chinese review-sentiment task; dev accuracy decides.

    .venv/bin/python benchmarks/recipes.py --out bench_out/recipes --budget 2m30s --ft-budget 90s

Pretraining text: People's Daily (gold word segmentation; every 20th article held out for the
MLM evaluation) plus the unlabelled text of the *training* reviews (task-adaptive pretraining;
segmented with jieba for whole-word masking); never the dev or test reviews. One WordPiece
vocabulary for every run. Shards: ``none`` (one segment, for MLM and ELECTRA) and ``sop``.

The runs (``--runs`` picks some by name):

* post-LN and pre-LN, each at three learning rates (the sweep);
* then, on the best (norm, lr) of the sweep by dev accuracy: the baseline again with another
  seed (the noise), dropout off, MLM + SOP, ELECTRA (always post-LN: its directory format has no
  pre-LN), mask rate 30%;
* ``random``: the same fine-tuning from random weights; ``tfidf``: character 1-2 grams + logistic
  regression (scikit-learn), on the same dev split.

Each row: held-out MLM loss (MLM runs; ELECTRA's is its small generator's), the pair/RTD
accuracy where there is one, tokens/s of pretraining, steps, and the fine-tuned dev accuracy
(best evaluation). Results go to OUT/results.jsonl as each run ends, and OUT/table.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

SWEEP = [("post", "5e-4"), ("post", "1e-3"), ("post", "2e-3"), ("pre", "5e-4"), ("pre", "1e-3"), ("pre", "2e-3")]
LATER = ["repeat", "dropout0", "sop", "electra", "mask30"]


def cli(*args, log=None) -> None:
    print("$ berts " + " ".join(map(str, args)), flush=True)
    subprocess.run([sys.executable, "-m", "berts", *map(str, args)], check=True,
                   stdout=log, stderr=subprocess.STDOUT if log else None)


def records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def make_data(out: Path, args) -> dict:
    """The corpora, the tokenizer and the shards (made once, reused by a rerun)."""
    import jieba

    from berts import corpora

    news, senti = corpora.zh_news(), corpora.zh_sentiment()
    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    train_txt, held_txt, reviews_txt = corpus / "news.train.txt", corpus / "news.heldout.txt", corpus / "reviews.txt"
    if not reviews_txt.is_file():
        docs = [d for d in news["segmented"].read_text(encoding="utf-8").split("\n\n") if d.strip()]
        train_txt.write_text("\n\n".join(d for i, d in enumerate(docs) if i % 20) + "\n", encoding="utf-8")
        held_txt.write_text("\n\n".join(d for i, d in enumerate(docs) if i % 20 == 0) + "\n", encoding="utf-8")
        jieba.setLogLevel(60)
        lines = senti["train"].read_text(encoding="utf-8").splitlines()[1:]  # header: text, label
        texts = [line.rsplit("\t", 1)[0] for line in lines if line.strip()]
        reviews_txt.write_text("\n\n".join(" ".join(w for w in jieba.cut(t) if w.strip()) for t in texts) + "\n",
                               encoding="utf-8")
    tok = out / "tokenizer"
    if not (tok / "vocab.txt").is_file():
        cli("tokenizer", "train", "--corpus", train_txt, reviews_txt, "--vocab-size", args.vocab,
            "--limit-alphabet", 6000, "--out", tok, "--overwrite")
    shards = {}
    for objective in ("none", "sop"):
        for name, inputs in (("train", [train_txt, reviews_txt]), ("heldout", [held_txt])):
            d = out / f"shards-{objective}-{name}"
            if not (d / "meta.json").is_file():
                cli("prepare", *inputs, "--tokenizer", tok, "--out", d, "--objective", objective,
                    "--max-seq-length", args.seq, "--segmenter", "gold", "--workers", 2, "--overwrite", "--quiet")
            shards[objective, name] = d
    return {"tokenizer": tok, "shards": shards, "senti": senti}


def pretrain_run(out: Path, data: dict, name: str, norm: str, lr: str, args, seed: int = 0,
                 objective: str = "none", sets: tuple[str, ...] = ()) -> dict:
    run = out / "runs" / name
    shards = data["shards"]["sop" if objective == "sop" else "none", "train"]
    held = data["shards"]["sop" if objective == "sop" else "none", "heldout"]
    t0 = time.time()
    with open(out / f"{name}.log", "w") as log:
        cli("pretrain", "--data", shards, "--preset", args.preset, "--out", run / "pretrain", "--overwrite",
            "--budget", args.budget, "--batch-size", 32, "--lr", lr,
            "--set", f"model.norm_position={norm}", "--set", f"data.objective={objective}",
            "--set", f"data.masking={args.masking}", "--set", f"data.eval_shards={held}",
            "--set", "data.eval_batches=20", "--set", f"model.max_position_embeddings={args.seq}",
            "--set", f"train.seed={seed}", "--set", "train.save_every=100000", "--set", "log.every=50",
            "--set", f"impl.threads={args.threads}", *[x for s in sets for x in ("--set", s)], log=log)
    rows = records(run / "pretrain" / "metrics.jsonl")
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    ev = evals[-1] if evals else {}
    result = {"run": name, "norm": norm, "lr": float(lr), "seed": seed, "objective": objective, "sets": list(sets),
              "steps": train[-1]["step"] if train else None,
              "tokens_per_s": round(sum(r.get("tokens_per_s", 0) for r in train[1:]) / max(1, len(train) - 1))
              if len(train) > 1 else None,
              "heldout": {k: v for k, v in ev.items() if k not in ("kind", "time", "step")},
              "pretrain_s": round(time.time() - t0, 1)}
    result.update(finetune_run(out, data, name, run / "pretrain" / "final", args))
    return result


def finetune_run(out: Path, data: dict, name: str, model: Path | None, args) -> dict:
    senti, run = data["senti"], out / "runs" / name / "finetune"
    source = ["--model", model] if model else ["--from-scratch", args.preset, "--tokenizer", data["tokenizer"]]
    t0 = time.time()
    with open(out / f"{name}.finetune.log", "w") as log:
        cli("finetune", *source, "--out", run, "--overwrite", "--train", senti["train"], "--dev", senti["dev"],
            "--text-column", "text", "--label-column", "label", "--max-length", args.seq, "--lr", args.ft_lr,
            "--epochs", args.ft_epochs, "--budget", args.ft_budget, "--metric", "accuracy",
            "--eval-every", 200, "--set", f"impl.threads={args.threads}", "--set", "train.seed=0", log=log)
    evals = [r for r in records(run / "metrics.jsonl") if r.get("kind") == "eval"]
    best = max((r.get("accuracy", 0.0) for r in evals), default=None)
    return {"dev_accuracy": best, "dev_evals": [(r["step"], r.get("accuracy")) for r in evals],
            "finetune_s": round(time.time() - t0, 1)}


def tfidf(data: dict) -> dict:
    import csv

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def read(path):
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))[1:]
        return [r[0] for r in rows], [r[1] for r in rows]

    xt, yt = read(data["senti"]["train"])
    xd, yd = read(data["senti"]["dev"])
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(vec.fit_transform(xt), yt)
    acc = float((clf.predict(vec.transform(xd)) == __import__("numpy").array(yd)).mean())
    return {"run": "tfidf", "dev_accuracy": round(acc, 4)}


def table(results: list[dict]) -> str:
    lines = ["| run | norm | lr | objective / change | steps | tokens/s | held-out MLM loss | pair / RTD acc | "
             "dev accuracy |", "|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        h = r.get("heldout") or {}
        pair = next((f"{k} {v:.3f}" for k, v in h.items() if k.endswith("_acc") and not k.startswith("mlm")
                     and isinstance(v, float)), "")
        change = ", ".join([r.get("objective", "")] + [s for s in r.get("sets", [])]).strip(", ")
        loss = h.get("mlm_loss")
        acc = "" if r.get("dev_accuracy") is None else f"{r['dev_accuracy']:.4f}"
        lines.append(f"| {r['run']} | {r.get('norm', '')} | {r.get('lr', '')} | {change} | {r.get('steps', '')} | "
                     f"{r.get('tokens_per_s', '') or ''} | {'' if loss is None else f'{loss:.3f}'} | {pair} | "
                     f"{acc} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/recipes")
    ap.add_argument("--budget", default="2m30s", help="pretraining wall clock per run")
    ap.add_argument("--ft-budget", default="90s", help="fine-tuning wall clock per run")
    ap.add_argument("--ft-epochs", default="2")
    ap.add_argument("--ft-lr", default="3e-4")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--masking", default="wwm")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--vocab", type=int, default=16000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", default=None, help="comma-separated run names (default: all)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(out, args)
    done = {r["run"]: r for r in records(out / "results.jsonl")}
    wanted = set(args.runs.split(",")) if args.runs else None

    def record(result):
        done[result["run"]] = result
        with open(out / "results.jsonl", "a") as f:
            f.write(json.dumps(result) + "\n")
        print(json.dumps({k: result.get(k) for k in ("run", "steps", "tokens_per_s", "dev_accuracy")}), flush=True)

    def want(name):
        return name not in done and (wanted is None or name in wanted)

    if want("tfidf"):
        record(tfidf(data))
    if want("random"):
        record({"run": "random", **finetune_run(out, data, "random", None, args)})
    for norm, lr in SWEEP:
        name = f"{norm}-lr{lr}"
        if want(name):
            record(pretrain_run(out, data, name, norm, lr, args))
    swept = [done[f"{n}-lr{lr}"] for n, lr in SWEEP if f"{n}-lr{lr}" in done]
    base = max(swept, key=lambda r: r["dev_accuracy"] or 0) if swept else {"norm": "post", "lr": 1e-3}
    norm, lr = base["norm"], f"{base['lr']:g}"
    later = {
        "repeat": dict(seed=1),
        "dropout0": dict(sets=("model.hidden_dropout_prob=0", "model.attention_probs_dropout_prob=0")),
        "sop": dict(objective="sop"),
        "electra": dict(objective="electra", norm="post"),  # ELECTRA's format is post-LN (refused otherwise)
        "mask30": dict(sets=("data.mask_prob=0.3", "data.max_predictions_per_seq=40")),
    }
    for name in LATER:
        if want(name):
            options = dict(later[name])
            record(pretrain_run(out, data, name, options.pop("norm", norm), lr, args, **options))
    order = ["tfidf", "random"] + [f"{n}-lr{lr}" for n, lr in SWEEP] + LATER
    text = table([done[n] for n in order if n in done])
    (out / "table.md").write_text(f"base of the later runs: {norm}-LN, lr {lr} (best dev accuracy of the sweep)\n\n"
                                  + text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
