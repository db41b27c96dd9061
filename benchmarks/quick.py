"""`--quick` for every benchmark: the registry corpora and MiniLM swapped for tiny data made on the fly.

A benchmark's --quick runs its real code path at toy size in seconds, with no download, so that a
broken script is found by `pytest -m slow tests/test_benchmarks_quick.py` and not by the next person
to need its numbers. The numbers a --quick run prints mean nothing.

    import quick
    if args.quick:
        quick.use_tiny_corpora(out)   # berts.data.corpora.* now return tiny files under out/quick-data

One mechanism for all: the functions of berts.data.corpora are replaced, in this process, by
functions returning files of the same shape (TSV splits with columns text, label; a paragraph-a-line
corpus; a Hugging Face BERT directory with its tokenizer). Subprocesses get the paths, so they need
nothing patched.
"""
from __future__ import annotations

import random
from pathlib import Path

GOOD = ["good", "great", "fine", "lovely", "fresh", "bright", "warm", "clever"]
BAD = ["bad", "dull", "poor", "stale", "grim", "weak", "cold", "tired"]
FILLER = ["the", "a", "film", "story", "cast", "plot", "music", "scene", "is", "was", "and", "very",
          "quite", "with", "its", "ending", "acting", "pace", "script", "score"]
ZH_GOOD, ZH_BAD = list("好棒美赞爱乐"), list("差烂坏糟慢贵")
ZH_FILLER = list("这个东西质量服务价格房间酒店手机书很非常真的还是")


def _sentence(rng: random.Random, words: list[str], label_words: list[str], zh: bool) -> str:
    picked = [rng.choice(words) for _ in range(rng.randint(4, 12))] + [rng.choice(label_words)]
    rng.shuffle(picked)
    return ("" if zh else " ").join(picked)


def _splits(root: Path, zh: bool, labels: tuple[str, str], n: int = 120, seed: int = 0) -> dict[str, Path]:
    """train / dev / test TSVs (text, label) whose label is readable from one word: a model can learn it."""
    rng = random.Random(seed)
    good, bad, filler = (ZH_GOOD, ZH_BAD, ZH_FILLER) if zh else (GOOD, BAD, FILLER)
    rows = []
    for i in range(n):
        positive = i % 2 == 0
        rows.append((_sentence(rng, filler, good if positive else bad, zh), labels[0] if positive else labels[1]))
    cut = {"train": rows[: n * 8 // 10], "dev": rows[n * 8 // 10: n * 9 // 10], "test": rows[n * 9 // 10:]}
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, part in cut.items():
        files[split] = root / f"{split}.tsv"
        files[split].write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in part), encoding="utf-8")
    return files


def _paragraphs(path: Path, zh: bool, docs: int = 60, seed: int = 0) -> Path:
    """A paragraph a line, a blank line between documents (the corpus reader's `bert` format)."""
    rng = random.Random(seed)
    good, bad, filler = (ZH_GOOD, ZH_BAD, ZH_FILLER) if zh else (GOOD, BAD, FILLER)
    end = "。" if zh else " ."
    text = "\n\n".join("\n".join(_sentence(rng, filler, good + bad, zh) + end for _ in range(rng.randint(3, 6)))
                       for _ in range(docs))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _tiny_bert(root: Path, corpus: Path) -> Path:
    """A randomly initialised 6-layer BERT (H=48, 12 heads: MiniLM-L6's depth and heads, which the
    students need: layers 0,2,4, heads compared one to one) with a WordPiece vocabulary trained on
    ``corpus``: the stand-in for MiniLM, saved as a Hugging Face directory as en_minilm() gives it."""
    from berts import BertConfig
    from berts.model.heads import BertForMaskedLM
    from berts.tokenizer.wordpiece import Tokenizer

    out = root / "tiny-bert"
    if (out / "config.json").is_file():
        return out
    tok = Tokenizer.train([corpus], vocab_size=120, min_frequency=1, show_progress=False)
    config = BertConfig(vocab_size=tok.vocab_size, hidden_size=48, num_hidden_layers=6, num_attention_heads=12,
                        intermediate_size=64, max_position_embeddings=128)
    BertForMaskedLM(config).save_pretrained(out, tokenizer=tok)
    return out


def use_tiny_corpora(out: str | Path) -> Path:
    """Replace berts.data.corpora's registry corpora by tiny ones under OUT/quick-data; returns that folder."""
    from berts.data import corpora

    root = Path(out) / "quick-data"
    en_text = _paragraphs(root / "en.txt", zh=False)
    zh_text = _paragraphs(root / "zh.txt", zh=True)
    corpora.en_rotten_tomatoes = lambda seed=0: _splits(root / "rt", False, ("fresh", "rotten"), seed=seed)
    corpora.zh_sentiment = lambda seed=0: _splits(root / "zh-sentiment", True, ("pos", "neg"), seed=seed)
    corpora.en_brown = lambda: {"text": en_text}
    corpora.en_sotu = lambda: {"text": en_text}
    corpora.zh_news = lambda: {"text": zh_text, "segmented": zh_text}
    corpora.en_minilm = lambda: _tiny_bert(root, en_text)
    return root
