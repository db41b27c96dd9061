"""Helpers shared by the tests/test_data_*.py files: tiny tokenizers and corpora made on the spot."""
from __future__ import annotations

import random
from pathlib import Path

from berts.tokenizer.wordpiece import Tokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCT = [".", ",", "!", "?", ";", ":", "\"", "'", "(", ")", "-", "。", "，", "！", "？", "；", "：", "“", "”", "…"]
# words, some of them split into ## pieces by the vocabulary below
WORDS = ["the", "a", "of", "and", "to", "in", "is", "was", "he", "she", "it", "they", "we", "you", "dr", "mr",
         "smith", "jones", "said", "went", "home", "city", "new", "york", "data", "model", "train", "text",
         "word", "piece", "token", "mask", "span", "e", "g", "i", "p", "m", "u", "s", "today", "arrived",
         "washington", "agreed", "before", "dinner", "monday"]
PIECES = ["un", "##believ", "##able", "##s", "##ing", "##ed", "re", "##train", "pre", "##process"]
CHARS = list("中国人民银行北京大学是一个的了在有和我们他她说今天天气很好出去吧走真吗上海市长江大桥研究生命起源")


def vocab_tokens(n_docs: int = 0) -> list[str]:
    return SPECIALS + PUNCT + WORDS + PIECES + CHARS + [f"doc{i}" for i in range(n_docs)] + \
        [f"w{i}" for i in range(300)]


def make_tokenizer(directory: Path, n_docs: int = 0) -> Path:
    """A WordPiece tokenizer directory over a fixed small vocabulary (+ ``docN`` words)."""
    tokens = vocab_tokens(n_docs)
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(tokens)})
    tok.save_pretrained(directory)
    return directory


def doc_marked_corpus(path: Path, n_docs: int, seed: int = 0, sentences=(4, 30), length=(3, 25)) -> Path:
    """BERT format; every token of document d is the word ``docd``: a token names its document."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for d in range(n_docs):
            for _ in range(rng.randint(*sentences)):
                f.write(" ".join([f"doc{d}"] * rng.randint(*length)) + "\n")
            f.write("\n")
    return path


def random_corpus(path: Path, n_docs: int, seed: int = 0, fmt: str = "bert") -> Path:
    """Random sentences of ``wN`` words and pieces words (unbelievable, retrain...)."""
    rng = random.Random(seed)
    extra = ["unbelievable", "retrain", "preprocess", "unbelievables", "retrained"]
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(n_docs):
            sents = []
            for _ in range(rng.randint(3, 12)):
                words = [rng.choice(extra) if rng.random() < 0.15 else f"w{rng.randrange(300)}"
                         for _ in range(rng.randint(4, 20))]
                sents.append(" ".join(words).capitalize() + ".")
            if fmt == "bert":
                f.write("\n".join(sents) + "\n\n")
            else:
                f.write(" ".join(sents) + "\n\n")
    return path
