"""What bigram counts know, against what a short pretraining run learned (issues 11 and 14).

    .venv/bin/python experiments/2026-12-01-pretraining-recipes/counts.py --train bench_out/recipes14/corpus/news.train.txt \
        --heldout bench_out/recipes14/corpus/news.heldout.txt \
        --mlm bench_out/recipes14/runs/s-rev4-x4/pretrain/final --electra bench_out/structure20/electra/final

Two comparisons on the same held-out positions, a count-based model built in seconds from the
pretraining text against the network:

* masked tokens: one token masked at a time (a seventh of the positions of each of the first
  ``--lines`` held-out lines, drawn with a fixed seed; no 80/10/10), predicted by the MLM
  (``--mlm``) and by the counts of the tokens on both sides:
  ``argmax_c log P(c | left) + log P(right | c)`` (add-0.1 smoothed bigrams);
* replaced tokens (``--electra``, a directory with its ``generator/``): 15% of the positions
  masked, filled by the generator's samples (temperature 1), then the discriminator's logits
  against a count score, how much less likely the token is next to its two neighbours than alone:
  ``-(log P(x | left) + log P(right | x) - 2 log P(x))``; ROC AUC of both (0.5 = chance).

``--heldout`` may be a .tsv (its ``text`` column: the review splits). Tokens come from the model's
own tokenizer (Chinese: one character a token), so the counts and the network see the same units. Prints one line a comparison and writes ``--out`` (JSON) when given.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import berts  # noqa: E402

SMOOTH = 0.1


def token_lines(tokenizer: Tokenizer, path: str, limit: int | None = None, min_tokens: int = 8) -> list[list[int]]:
    """Token ids a line (a .tsv: its ``text`` column), lines of fewer than ``min_tokens`` left out."""
    with open(path, encoding="utf-8") as f:
        lines = ([r["text"] for r in csv.DictReader(f, delimiter="\t")] if str(path).endswith(".tsv")
                 else [line.strip() for line in f if line.strip()])
    out = []
    for enc in tokenizer.encode_batch(lines[: (limit * 2 if limit else None)], add_special_tokens=False):
        if len(enc.ids) >= min_tokens:
            out.append(enc.ids)
        if limit and len(out) >= limit:
            break
    return out


class Bigrams:
    """log P(b | a) from add-``SMOOTH`` counts over the training lines; [V, V] dense (V ~ 8k)."""

    def __init__(self, lines: list[list[int]], vocab: int):
        counts = np.zeros((vocab, vocab), np.float32)
        unigrams = np.zeros(vocab, np.float64)
        for ids in lines:
            a = np.asarray(ids)
            unigrams += np.bincount(a, minlength=vocab)
            np.add.at(counts, (a[:-1], a[1:]), 1)
        self.log_next = np.log((counts + SMOOTH) / (unigrams[:, None] + SMOOTH * vocab)).astype(np.float32)
        self.log_unigram = np.log((unigrams + SMOOTH) / (unigrams.sum() + SMOOTH * vocab))

    def predict(self, left: int, right: int) -> int:
        return int((self.log_next[left] + self.log_next[:, right]).argmax())

    def surprise(self, left: int, x: int, right: int) -> float:
        return -float(self.log_next[left, x] + self.log_next[x, right] - 2 * self.log_unigram[x])


def logits_of(out) -> torch.Tensor:
    return out.logits if getattr(out, "logits", None) is not None else out.prediction_logits


def masked_tokens(model, tok: Tokenizer, counts: Bigrams, held: list[list[int]], seed: int = 0) -> dict:
    cls_id, sep_id, mask_id = (tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    rng = np.random.default_rng(seed)
    hits_net = hits_counts = n = 0
    for ids in held:
        ids = ids[:126]
        pos = rng.choice(np.arange(1, len(ids) - 1), max(1, len(ids) // 7), replace=False)
        x = torch.tensor([cls_id, *ids, sep_id]).repeat(len(pos), 1)  # one masked token a row
        x[torch.arange(len(pos)), torch.from_numpy(pos + 1)] = mask_id
        with torch.no_grad():
            logits = logits_of(model(input_ids=x))[torch.arange(len(pos)), torch.from_numpy(pos + 1)]
        truth = torch.tensor([ids[i] for i in pos])
        hits_net += int((logits.argmax(-1) == truth).sum())
        hits_counts += sum(counts.predict(ids[i - 1], ids[i + 1]) == ids[i] for i in pos)
        n += len(pos)
    return {"positions": n, "network_acc": hits_net / n, "counts_acc": hits_counts / n}


def replaced_tokens(disc, gen, tok: Tokenizer, counts: Bigrams, held: list[list[int]], seed: int = 0) -> dict:
    cls_id, sep_id, mask_id = (tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    labels, z_net, z_counts = [], [], []
    for ids in held:
        ids = ids[:126]
        x = torch.tensor([[cls_id, *ids, sep_id]])
        pos = torch.from_numpy(rng.choice(np.arange(1, len(ids) + 1), max(1, round(0.15 * len(ids))), replace=False))
        masked = x.clone()
        masked[0, pos] = mask_id
        with torch.no_grad():
            probs = torch.softmax(logits_of(gen(input_ids=masked))[0, pos].float(), -1)
            fake = x.clone()
            fake[0, pos] = torch.multinomial(probs, 1).squeeze(-1)
            z = logits_of(disc(input_ids=fake))[0]
        f = fake[0].tolist()
        for i in range(1, len(f) - 1):
            labels.append(int(f[i] != x[0, i]))
            z_net.append(float(z[i]))
            z_counts.append(counts.surprise(f[i - 1], f[i], f[i + 1]))
    y = np.asarray(labels)
    return {"tokens": len(y), "replaced_share": float(y.mean()),
            "network_auc": float(roc_auc_score(y, z_net)), "counts_auc": float(roc_auc_score(y, z_counts))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train", action="append", required=True, help="text the counts come from (repeatable)")
    p.add_argument("--heldout", required=True)
    p.add_argument("--mlm", help="a masked-LM model directory")
    p.add_argument("--electra", help="an ELECTRA discriminator directory with generator/")
    p.add_argument("--lines", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for kind, directory in (("mlm", args.mlm), ("electra", args.electra)):
        if not directory:
            continue
        t0 = time.time()
        tok = Tokenizer.from_file(str(Path(directory) / "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        counts = Bigrams([ids for f in args.train for ids in token_lines(tok, f, min_tokens=2)], tok.get_vocab_size())
        held = token_lines(tok, args.heldout, args.lines)
        if kind == "mlm":
            r = masked_tokens(berts.load(directory).eval(), tok, counts, held)
            print(f"masked tokens ({r['positions']:,}, one at a time): network {r['network_acc']:.3f}, "
                  f"bigram counts {r['counts_acc']:.3f}  ({directory}, {time.time() - t0:.0f}s)")
        else:
            disc, gen = berts.load(directory).eval(), berts.load(Path(directory) / "generator").eval()
            r = replaced_tokens(disc, gen, tok, counts, held)
            print(f"replaced tokens ({r['tokens']:,}, {r['replaced_share']:.3f} replaced): discriminator AUC "
                  f"{r['network_auc']:.3f}, bigram counts AUC {r['counts_auc']:.3f}  ({directory}, {time.time() - t0:.0f}s)")
        results[kind] = {"model": directory, **r}
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
