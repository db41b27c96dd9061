"""The demo's checks of what it wrote: how a task's text tokenizes, and that transformers loads a
fine-tuned directory with the same token ids and logits (sentence-transformers' check of an
encoder directory is the English half's interop stage, berts.demo.en)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import berts
from berts.tokenizer.wordpiece import load_tokenizer


def tokenizer_stats(tok_dir: Path, table: Path, max_length: int, n: int = 2000) -> dict:
    """Vocabulary and how the task's text tokenizes: tokens per example, [UNK] rate, truncation."""
    tok = load_tokenizer(tok_dir)
    texts = [line.split("\t")[0] for line in table.read_text(encoding="utf-8").splitlines()[1:n + 1]]
    ids = tok.encode_ids_batch(texts)
    lengths = np.array([len(x) + 2 for x in ids])  # + [CLS], [SEP]
    flat = [i for x in ids for i in x]
    vocab = tok.vocab()
    cjk = sum(1 for t in vocab if len(t) == 1 and "\u4e00" <= t <= "\u9fff")
    pieces = sum(1 for t in vocab if t.startswith("##"))
    return {"vocab_size": tok.vocab_size, "single_cjk_characters": cjk, "continuation_pieces": pieces,
            "examples": len(texts), "mean_tokens": round(float(lengths.mean()), 1),
            "median_tokens": int(np.median(lengths)), "p95_tokens": int(np.percentile(lengths, 95)),
            "truncated_share": round(float((lengths > max_length).mean()), 4),
            "unk_rate": round(flat.count(tok.unk_id) / max(1, len(flat)), 5)}


def transformers_check(model_dir: Path, test: Path, n: int = 64) -> dict:
    """Load a fine-tuned directory with transformers: the same token ids and logits as berts?"""
    try:
        import transformers
    except ImportError:
        return {"skipped": "transformers is not installed (pip install 'berts[hf]')"}
    texts = [line.split("\t")[0] for line in test.read_text(encoding="utf-8").splitlines()[1:n + 1]]
    tok = load_tokenizer(model_dir)
    batch = tok(texts, max_length=64, truncation=True, padding="longest", return_tensors="pt")
    ours = berts.load(model_dir).eval()
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(model_dir)
    hf_batch = hf_tok(texts, max_length=64, truncation=True, padding="longest", return_tensors="pt")
    with torch.no_grad():
        a = ours(**batch).logits
        b = theirs(**batch).logits
    return {"examples": len(texts), "same_token_ids": bool(torch.equal(hf_batch["input_ids"], batch["input_ids"])),
            "max_abs_logit_diff": float((a - b).abs().max()), "transformers_class": type(theirs).__name__,
            "transformers_version": transformers.__version__}
