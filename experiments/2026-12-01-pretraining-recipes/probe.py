"""Frozen features + logistic regression: what a pretrained encoder knows before fine-tuning (issue 14).

    .venv/bin/python experiments/2026-12-01-pretraining-recipes/probe.py --data ~/.cache/berts/corpora/zh-sentiment \
        bench_out/recipes14/runs/s-rev4-x4/pretrain/final:random bench_out/recipes14/runs/s-rev4-x4/pretrain/final

The BERT paper's feature-based use (its Table 7): the encoder is frozen; each review is the mean over
its real tokens of every layer's hidden states (embeddings included), concatenated; standardised on the
training split; scikit-learn's logistic regression, C in 0.01 / 0.1 / 1, the best on dev. A diagnostic
only (C is chosen on the split it reports; the test split is not read). ``DIR:random`` is ``DIR``'s
config with BERT's random init (torch seed 0): the same probe from random weights.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import berts  # noqa: E402


def read(path: Path, text: str, label: str) -> tuple[list[str], np.ndarray]:
    with open(path, encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    labels = sorted({r[label] for r in rows})
    return [r[text] for r in rows], np.array([labels.index(r[label]) for r in rows])


def features(model, tok: Tokenizer, texts: list[str], batch: int = 64) -> np.ndarray:
    out = []
    encoder = model.bert
    for i in range(0, len(texts), batch):
        enc = tok.encode_batch(texts[i:i + batch])
        width = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(enc), width, dtype=torch.long)
        mask = torch.zeros(len(enc), width, dtype=torch.long)
        for j, e in enumerate(enc):
            ids[j, :len(e.ids)], mask[j, :len(e.ids)] = torch.tensor(e.ids), 1
        with torch.no_grad():
            states = encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        m = mask[..., None].float()
        out.append(torch.cat([(h * m).sum(1) / m.sum(1) for h in states], -1).numpy())
    return np.concatenate(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", help="model directories; DIR:random for its random-weights twin")
    p.add_argument("--data", type=Path, required=True, help="a directory with train.tsv and dev.tsv")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train, y_train = read(args.data / "train.tsv", args.text_column, args.label_column)
    dev, y_dev = read(args.data / "dev.tsv", args.text_column, args.label_column)
    for spec in args.models:
        directory, _, random = spec.partition(":")
        tok = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(args.max_length)
        model = berts.load(directory)
        if random:
            torch.manual_seed(0)
            model.init_weights()
        model.eval()
        x_train, x_dev = features(model, tok, train), features(model, tok, dev)
        mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
        acc, c = max((LogisticRegression(C=c, max_iter=2000).fit((x_train - mu) / sd, y_train)
                      .score((x_dev - mu) / sd, y_dev), c) for c in (0.01, 0.1, 1.0))
        print(f"{spec}: probe dev accuracy {acc:.4f} (C={c})", flush=True)


if __name__ == "__main__":
    main()
