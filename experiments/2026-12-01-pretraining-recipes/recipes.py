"""Pretraining recipes, measured (issue 11): the same model size, the same wall clock per run,
then the same fine-tuning on the Chinese review-sentiment task; dev accuracy decides.

    .venv/bin/python experiments/2026-12-01-pretraining-recipes/recipes.py --out bench_out/recipes --budget 2m30s --ft-budget 90s

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

Issue 14 (what pays off in the demo's budget), step-based:

    .venv/bin/python experiments/2026-12-01-pretraining-recipes/recipes.py --out bench_out/recipes14 --steps 1500 --threads 1

``--steps N`` runs the ISSUE14 set instead: pretraining by optimizer steps (N times each run's ``x``),
not by the clock, so other processes on the machine slow a run without changing its result; the
fine-tuning runs its epochs (its budget never binds). Every run starts from issue 11's best recipe
(tiny, pre-LN, lr 1e-3, dropout 0, MLM whole-word 15%), changes one thing, and is compared with
random weights of its own config (``berts finetune --from-scratch RUN/final --tokenizer RUN/final``,
as the demo does) under the same fine-tuning. ``--runs`` picks some by name.
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


def make_data(out: Path, args, objectives=("none", "sop")) -> dict:
    """The corpora, the tokenizer and the shards (made once, reused by a rerun)."""
    import jieba

    from berts.data import corpora

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
    for objective in objectives:
        for name, inputs in (("train", [train_txt, reviews_txt]), ("heldout", [held_txt])):
            d = out / f"shards-{objective}-{name}"
            if not (d / "meta.json").is_file():
                cli("prepare", *inputs, "--tokenizer", tok, "--out", d, "--objective", objective,
                    "--max-seq-length", args.seq, "--segmenter", "gold", "--workers", 2, "--overwrite", "--quiet")
            shards[objective, name] = d
    return {"tokenizer": tok, "shards": shards, "senti": senti}


def pretrain_run(out: Path, data: dict, name: str, norm: str, lr: str, args, seed: int = 0,
                 objective: str = "none", sets: tuple[str, ...] = (), steps: int | None = None,
                 preset: str | None = None, seq: int | None = None, ft: dict | None = None,
                 init_from: Path | None = None) -> dict:
    """One pretraining run, then its fine-tuning. The length of the run: ``steps`` (or --steps) optimizer
    steps when given -- the step-based mode of issue 14, whose results do not depend on what else runs on
    the machine -- else the wall clock of --budget (issue 11). ``ft``: finetune_run's lr/epochs."""
    run = out / "runs" / name
    preset, seq, steps = preset or args.preset, seq or args.seq, steps or args.steps
    shards = data["shards"]["sop" if objective == "sop" else "none", "train"]
    held = data["shards"]["sop" if objective == "sop" else "none", "heldout"]
    length = ["--max-steps", steps] if steps else ["--budget", args.budget]
    t0 = time.time()
    with open(out / f"{name}.log", "w") as log:
        cli("pretrain", "--data", shards, *(["--init-from", init_from] if init_from else ["--preset", preset]),
            "--out", run / "pretrain", "--overwrite",
            *length, "--batch-size", 32, "--lr", lr,
            "--set", f"model.norm_position={norm}", "--set", f"data.objective={objective}",
            "--set", f"data.masking={args.masking}", "--set", f"data.eval_shards={held}",
            "--set", "data.eval_batches=20", "--set", f"model.max_position_embeddings={seq}",
            "--set", f"train.seed={seed}", "--set", "train.save_every=100000", "--set", "log.every=50",
            "--set", f"impl.threads={args.threads}", *[x for s in sets for x in ("--set", s)], log=log)
    rows = records(run / "pretrain" / "metrics.jsonl")
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    ev = evals[-1] if evals else {}
    result = {"run": name, "norm": norm, "lr": float(lr), "seed": seed, "objective": objective, "sets": list(sets),
              "preset": preset, "seq": seq, "data": str(shards),
              "steps": train[-1]["step"] if train else None,
              "tokens_per_s": round(sum(r.get("tokens_per_s", 0) for r in train[1:]) / max(1, len(train) - 1))
              if len(train) > 1 else None,
              # about the idle machine's speed when other processes share the cores (the mean above
              # then measures the machine, not the recipe)
              "tokens_per_s_p90": p90_tokens_per_s(run / "pretrain" / "metrics.jsonl"),
              "heldout": {k: v for k, v in ev.items() if k not in ("kind", "time", "step")},
              "pretrain_s": round(time.time() - t0, 1)}
    result.update(finetune_run(out, data, name, run / "pretrain" / "final", args, seq=seq, **(ft or {})))
    return result


def finetune_run(out: Path, data: dict, name: str, model: Path | None, args, seq: int | None = None,
                 lr: str | None = None, epochs: str | None = None, scratch: Path | None = None,
                 seed: str | None = None) -> dict:
    """Fine-tune ``model`` (a pretrained directory) or, with ``scratch`` (a pretrained directory), random
    weights of exactly its config and tokenizer -- the demo's baseline -- or, with neither, the preset."""
    senti, run = data["senti"], out / "runs" / name / "finetune"
    seq, lr, epochs = seq or args.seq, lr or args.ft_lr, epochs or args.ft_epochs
    source = (["--model", model] if model else ["--from-scratch", scratch, "--tokenizer", scratch] if scratch
              else ["--from-scratch", args.preset, "--tokenizer", data["tokenizer"]])
    t0 = time.time()
    with open(out / f"{name}.finetune.log", "w") as log:
        cli("finetune", *source, "--out", run, "--overwrite", "--train", senti["train"], "--dev", senti["dev"],
            "--text-column", "text", "--label-column", "label", "--max-length", seq, "--lr", lr,
            "--epochs", epochs, "--budget", args.ft_budget, "--metric", "accuracy",
            "--eval-every", 200, "--set", f"impl.threads={args.threads}", "--set", f"train.seed={seed or 0}", log=log)
    rows = records(run / "metrics.jsonl")
    evals = [r for r in rows if r.get("kind") == "eval"]
    train = [r for r in rows if r.get("kind") == "train"]
    best = max((r.get("accuracy", 0.0) for r in evals), default=None)
    return {"dev_accuracy": best, "dev_final": evals[-1].get("accuracy") if evals else None,
            "dev_evals": [(r["step"], r.get("accuracy")) for r in evals], "ft_lr": float(lr),
            "ft_epochs": float(epochs), "ft_steps": train[-1]["step"] if train else None,
            "finetune_s": round(time.time() - t0, 1)}


def variant_data(out: Path, data: dict, args, repeat: int = 1, seq: int = 128, news: bool = True) -> dict:
    """``data`` with other "none" shards: the training reviews' text ``repeat`` times (upweighted against
    the news), or the reviews alone (``news=False``), and/or another sequence length; the same tokenizer,
    so the same random baseline. The held-out MLM text stays the news (every 20th article)."""
    if (repeat, seq, news) == (1, args.seq, True):
        return data
    corpus = out / "corpus"
    reviews = corpus / "reviews.txt"
    if repeat > 1:
        reviews = corpus / f"reviews.x{repeat}.txt"
        if not reviews.is_file():  # one file, not one path given N times: prepare reads each path once
            one = (corpus / "reviews.txt").read_text(encoding="utf-8").rstrip("\n")
            reviews.write_text("\n\n".join([one] * repeat) + "\n", encoding="utf-8")
    shards = dict(data["shards"])
    train = [corpus / "news.train.txt", reviews] if news else [reviews]
    for name, inputs in (("train", train), ("heldout", [corpus / "news.heldout.txt"])):
        d = out / (f"shards-none-{name}-s{seq}" + ("" if name == "heldout" or repeat == 1 else f"-r{repeat}")
                   + ("" if name == "heldout" or news else "-reviews-only"))
        if not (d / "meta.json").is_file():
            cli("prepare", *inputs, "--tokenizer", data["tokenizer"], "--out", d, "--objective", "none",
                "--max-seq-length", seq, "--segmenter", "gold", "--workers", 2, "--overwrite", "--quiet")
        shards["none", name] = d
    return {**data, "shards": shards}


# Issue 14: what pays off in the demo's budget (about 3,000 steps of tiny on 2 cores), step-based so that
# other processes on the machine slow a run without changing its result. Every run starts from the
# best recipe of issue 11 (tiny, pre-LN, lr 1e-3, dropout 0, MLM whole-word 15%) and changes one thing;
# each is compared with random weights of the same config under the same fine-tuning (``random`` below).
# ``repeat``/``seq``: variant_data; ``x``: pretraining steps in units of --steps (1 if absent); ``ft``:
# fine-tuning lr/epochs; ``source``: fine-tune another run's pretrained model again (fine-tuning only).
DROPOUT0 = ("model.hidden_dropout_prob=0", "model.attention_probs_dropout_prob=0")
ISSUE14 = {
    "s-base": dict(),
    "s-rev4": dict(repeat=4),
    "s-reviews": dict(news=False),  # the training reviews' text alone (task-adaptive pretraining only)
    "s-seq64": dict(x=2, seq=64),  # half the tokens a step: the same tokens (about the wall clock) as x1
    "s-base-ft1e-3": dict(source="s-base", ft=dict(lr="1e-3")),
    "s-base-ft1e-4": dict(source="s-base", ft=dict(lr="1e-4")),
    "s-base-e3": dict(source="s-base", ft=dict(epochs="3")),
    "s-rev4-x2": dict(x=2, repeat=4),
    "s-base-x2": dict(x=2),
    "s-rev4-x4": dict(x=4, repeat=4),  # 6,000 steps at --steps 1500: the demo's 6 minutes on an idle machine
    "s-rev4-x4-ft1e-3": dict(source="s-rev4-x4", ft=dict(lr="1e-3")),
    "s-rev4-x4-ft1e-4": dict(source="s-rev4-x4", ft=dict(lr="1e-4")),
    "s-rev4-x4-e3": dict(source="s-rev4-x4", ft=dict(epochs="3")),
    "s-rev4-x4-ft1e-3-e3": dict(source="s-rev4-x4", ft=dict(lr="1e-3", epochs="3")),
    "s-mini": dict(x=0.5, preset="mini"),  # x: tiny's tokens/s over mini's (measured): the same wall clock
    # bigger models at the wall clock of s-rev4-x4 (6,000 tiny steps), x from tokens/s measured on one idle
    # thread: tiny 19.2k, L4 H128 11.1k (1.72x slower), mini 4.7k (4.1x; bf16 autocast 5.2k, 1.1x over fp32)
    "s-rev4-mini": dict(x=0.98, repeat=4, preset="mini", ft=dict(lr="1e-3")),
    "s-rev4-x4-seed1": dict(x=4, repeat=4, seed=1, ft=dict(lr="1e-3")),  # the demo's recipe again: the noise
    # the fine-tuning's own noise: the demo's recipe and its random twin under other fine-tuning seeds
    "s-rev4-x4-fs1": dict(source="s-rev4-x4", ft=dict(lr="1e-3", seed="1")),
    "s-rev4-x4-fs2": dict(source="s-rev4-x4", ft=dict(lr="1e-3", seed="2")),
    # sinusoidal position embeddings at init (scaled to the init range), the rest as s-rev4-x4-ft1e-3;
    # the random twin is the same init, not fine-tuned before (so it has the sinusoids too)
    "s-rev4-x4-sin": dict(x=4, repeat=4, init="sinusoidal", tag="sin", ft=dict(lr="1e-3")),
    "s-rev4-x4-sin-seed1": dict(x=4, repeat=4, seed=1, init="sinusoidal", tag="sin-seed1", ft=dict(lr="1e-3")),
    # count-based token embeddings at init (PPMI + SVD of the pretraining text, ppmi_init), the rest as
    # s-rev4-x4-ft1e-3; its twin is the plain random one
    "s-rev4-x4-ppmi": dict(x=4, repeat=4, init="ppmi", ft=dict(lr="1e-3")),
    "s-rev4-x4-ppmi-seed1": dict(x=4, repeat=4, seed=1, init="ppmi", ft=dict(lr="1e-3")),
    "s-rev4-L4": dict(x=2.33, repeat=4, sets=("model.num_hidden_layers=4",), tag="L4", ft=dict(lr="1e-3")),
    # beyond the demo's budget: how many steps the +3 points need (the recipe of s-rev4-x4-ft1e-3)
    "s-rev4-x8-ft1e-3": dict(x=8, repeat=4, ft=dict(lr="1e-3")),  # 12,000 steps at --steps 1500
    "s-rev4-x16-ft1e-3": dict(x=16, repeat=4, ft=dict(lr="1e-3")),  # 24,000 steps
    "s-rev4-x8-e3": dict(source="s-rev4-x8-ft1e-3", ft=dict(epochs="3")),
    "s-rev4-x8-ft1e-3-e3": dict(source="s-rev4-x8-ft1e-3", ft=dict(lr="1e-3", epochs="3")),
}


def issue14_run(out: Path, data: dict, name: str, spec: dict, args, done: dict, record) -> None:
    """One issue-14 run and, once per (config, fine-tuning), its random-weights twin."""
    spec = dict(spec)
    ft = {"lr": args.ft_lr, "epochs": args.ft_epochs, **spec.pop("ft", {})}
    source = spec.pop("source", None)
    base = ISSUE14[source] if source else spec
    seq, preset = base.get("seq", args.seq), base.get("preset", args.preset)
    run_data = variant_data(out, data, args, base.get("repeat", 1), seq, base.get("news", True))
    final = out / "runs" / (source or name) / "pretrain" / "final"
    twin = (f"random-{preset}{base.get('tag', '')}-s{seq}-ft{ft['lr']}-e{ft['epochs']}"
            + (f"-fs{ft['seed']}" if ft.get("seed") else ""))
    init = out / "runs" / (source or name) / "init" if base.get("init") else None
    # the sinusoidal runs' twin starts from their init (random weights but the sinusoids); a PPMI run's twin
    # is plain random weights: its init is the first pretraining stage (fine-tuned alone: experiments/2026-12-01-pretraining-recipes/recipes.md)
    twin_init = init if base.get("init") == "sinusoidal" else None
    if name not in done:
        if source:  # fine-tuning only: the source's pretraining row, this run's fine-tuning
            result = {k: v for k, v in done[source].items() if not k.startswith(("dev_", "ft_", "finetune"))}
            result.update(run=name, source=source, **finetune_run(out, run_data, name, final, args, seq=seq, **ft))
        else:
            template = out / "runs" / "s-rev4-x4" / "pretrain" / "final"
            if base.get("init") == "sinusoidal":
                init = sinusoidal_init(template, init, spec.get("seed", 0))
            elif base.get("init") == "ppmi":  # the pretraining text itself: news (train part) + the training reviews
                init = ppmi_init(template, init, 0, [out / "corpus" / "news.train.txt", out / "corpus" / "reviews.txt"])
            result = pretrain_run(out, run_data, name, "pre", "1e-3", args, seed=spec.get("seed", 0),
                                  sets=DROPOUT0 + tuple(spec.get("sets", ())) + tuple(args.set),
                                  steps=round(args.steps * spec.get("x", 1)), preset=preset, seq=seq, ft=ft,
                                  init_from=init)
            result["repeat"] = spec.get("repeat", 1)
        record({**result, "random_run": twin})
    if twin not in done:  # the demo's baseline: random weights of the pretrained model's own config
        record({"run": twin, "preset": preset, "seq": seq,
                **finetune_run(out, run_data, twin, twin_init, args, seq=seq, scratch=None if twin_init else final, **ft)})


def sinusoidal_init(template: Path, dst: Path, seed: int) -> Path:
    """Random weights of ``template``'s config (BERT's init, torch seed ``seed``) with the Transformer's
    sinusoidal position table in place of N(0, init range), scaled so that each dimension's spread over
    the positions equals the init range: a position-init prototype, written as a model directory."""
    import math
    import shutil

    import torch

    import berts

    torch.manual_seed(seed)
    model = berts.load(template).init_weights()
    table = model.bert.embeddings.position_embeddings.weight  # [P, H]
    pos = torch.arange(table.shape[0], dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, table.shape[1], 2, dtype=torch.float32) * (-math.log(10000.0) / table.shape[1]))
    sinusoids = torch.zeros(table.shape)
    sinusoids[:, 0::2], sinusoids[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    with torch.no_grad():
        table.copy_(sinusoids * (model.config.initializer_range * math.sqrt(2)))
    model.save_pretrained(dst)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(template / name, dst / name)
    return dst


def ppmi_init(template: Path, dst: Path, seed: int, corpus: list[Path], window: int = 2) -> Path:
    """Random weights of ``template``'s config (BERT's init, torch seed ``seed``) with count-based token
    embeddings (Levy, Goldberg & Dagan 2015): positive PMI of the tokens within ``window`` of each other in
    the pretraining text (weight 1/distance, both directions, context counts to the power 0.75), its
    truncated SVD, U sqrt(S), scaled to the init range's spread; tokens never seen keep their random row.
    A prototype (11 s for the demo's corpus, dense V x V: fine for Chinese's 7.7k tokens, not for 30k)."""
    import shutil

    import numpy as np
    import torch
    from tokenizers import Tokenizer

    import berts

    tok = Tokenizer.from_file(str(template / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    lines = [line.strip() for f in corpus for line in open(f, encoding="utf-8") if line.strip()]
    vocab = tok.get_vocab_size()
    counts = np.zeros((vocab, vocab), np.float64)
    for enc in tok.encode_batch(lines, add_special_tokens=False):
        ids = np.asarray(enc.ids, np.int64)
        for d in range(1, window + 1):
            if len(ids) > d:
                np.add.at(counts, (ids[:-d], ids[d:]), 1.0 / d)
    counts = counts + counts.T
    rows, contexts = counts.sum(1), counts.sum(0) ** 0.75
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * contexts.sum() / (rows[:, None] * contexts[None, :]))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0).astype(np.float32)
    torch.manual_seed(seed)
    model = berts.load(template).init_weights()
    table = model.bert.embeddings.word_embeddings.weight  # [V, H]
    width = table.shape[1]
    u, s, _ = torch.svd_lowrank(torch.from_numpy(ppmi), q=width + 16, niter=4)
    vectors = u[:, :width] * s[:width].sqrt()
    seen = torch.from_numpy(rows > 0)
    vectors = vectors / vectors[seen].std() * model.config.initializer_range
    with torch.no_grad():
        table[seen] = vectors[seen].to(table.dtype)
    model.save_pretrained(dst)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(template / name, dst / name)
    return dst


def p90_tokens_per_s(metrics: Path) -> int | None:
    """The 90th percentile of a run's logged tokens/s (its first interval, the warm-up, left out)."""
    speeds = sorted(r.get("tokens_per_s", 0) for r in records(metrics) if r.get("kind") == "train")[1:]
    return round(speeds[int(0.9 * (len(speeds) - 1))]) if speeds else None


def table14(results: list[dict], done: dict, out: Path) -> str:
    lines = ["| run | change | pretrain steps | tokens/s (p90) | held-out MLM loss | dev acc pretrained | dev acc random | "
             "gap (points) |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        spec = ISSUE14[r["run"]]
        words = {"repeat": lambda v: f"reviews x{v}", "news": lambda v: "" if v else "reviews only",
                 "seq": lambda v: f"seq {v}", "preset": str, "sets": ", ".join, "seed": lambda v: f"seed {v}", "init": lambda v: {"sinusoidal": "sinusoidal positions", "ppmi": "PPMI token embeddings"}[v], "tag": lambda v: "", "source": lambda v: f"{v}'s model",
                 "ft": lambda v: "fine-tuning " + ", ".join(f"{k} {x}" for k, x in v.items())}
        change = ", ".join(w for w in (words[k](v) for k, v in spec.items() if k != "x") if w) or "base"
        rnd = done.get(r.get("random_run"), {}).get("dev_accuracy")
        speed = p90_tokens_per_s(out / "runs" / r.get("source", r["run"]) / "pretrain" / "metrics.jsonl")
        loss = (r.get("heldout") or {}).get("mlm_loss")
        gap = "" if rnd is None or r.get("dev_accuracy") is None else f"{100 * (r['dev_accuracy'] - rnd):+.2f}"
        lines.append(f"| {r['run']} | {change} | {r.get('steps')} | {speed or ''} | "
                     f"{'' if loss is None else f'{loss:.3f}'} | {r.get('dev_accuracy') or 0:.4f} | "
                     f"{'' if rnd is None else f'{rnd:.4f}'} | {gap} |")
    return "\n".join(lines) + "\n"


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
    ap.add_argument("--runs", default=None, help="comma-separated run names (default: all of issue 11's, "
                    "or with --steps all of issue 14's)")
    ap.add_argument("--steps", type=int, default=None,
                    help="step-based mode (issue 14): pretraining by steps (--max-steps) instead of --budget, "
                    "so a busy machine slows a run without changing its result; the fine-tuning runs its "
                    "epochs (--ft-budget never binds); runs the ISSUE14 set, each with its own steps")
    ap.add_argument("--set", action="append", default=[], help="extra pretraining --set for issue 14's runs")
    args = ap.parse_args()
    if args.steps and args.ft_budget == ap.get_default("ft_budget"):
        args.ft_budget = "10h"  # step-based: the fine-tuning's epochs end it, never the clock
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = make_data(out, args, ("none",) if args.steps else ("none", "sop"))
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
    if args.steps:  # issue 14
        for name, spec in ISSUE14.items():
            if wanted is None or name in wanted:
                issue14_run(out, data, name, spec, args, done, record)
        rows = [done[n] for n in ISSUE14 if n in done]
        text = table14(rows, done, out)
        (out / "table.md").write_text(f"TF-IDF dev accuracy: {done.get('tfidf', {}).get('dev_accuracy')}\n\n" + text)
        print(text)
        return 0
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
