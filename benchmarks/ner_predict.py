"""NER serving speed: `berts predict`'s path (berts.serve.tagger.Tagger) against transformers'
``pipeline("token-classification", aggregation_strategy="simple")`` on the same model directory,
CPU, the same threads, the same texts, the same entities.

    .venv/bin/python benchmarks/ner_predict.py --preset small --threads 1 --out bench_out/ner_predict.json
    .venv/bin/python benchmarks/ner_predict.py --quick          # toy sizes: it runs, the numbers mean nothing

The model: a ``BertForTokenClassification`` of ``--preset`` with CoNLL-2003's 9 tags, random
weights (speed does not depend on them) except the "O" bias, raised so that about one token in
six is an entity (a realistic share), saved by berts into a directory that both sides load.
The texts: paragraphs of real English (CPython's reference manual, the same text `berts export`
checks with), cut to sentences of ``--words`` words or fewer. The vocabulary holds every word of
those texts whole, so each word is one token: then transformers' "simple" aggregation (which
groups sub-tokens) and berts' (a word's first sub-token) read the same tags, and the check that
both find the same entities (type, character offsets, score to 1e-4) is exact, not approximate.

Timing: every engine on all texts, rounds alternated, the median; one untimed warm-up round.
The pipeline is called as its users call it (a list of texts, its default batch size 1) and,
for a fairer second figure, with ``batch_size=32``; berts' Tagger with its default batch (16
sentences on the CPU, longest first). The speed-up is texts/s of berts over texts/s of the
pipeline, by the wall clock and by the process's CPU time (``time.process_time``): on a shared,
oversubscribed machine the wall clock also counts the time other processes held the core, and
the CPU-time ratio is the steadier of the two.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import torch

BERTS = "berts Tagger.predict (default batch)"
BERT_WORD = re.compile(r"[^\W_]+|\S")
WINDOW = 120  # BERT words per text at most: [CLS] + 120 + [SEP] fits berts' 128-token window
LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def texts_and_vocab(n: int, max_words: int):
    from berts.serve.export import real_texts

    texts = []
    for para in real_texts(max(n, 96)):
        words = para.split()
        for lo in range(0, len(words), max_words):
            chunk = " ".join(words[lo:lo + max_words])
            # at least 5 words, at most WINDOW BERT words (runs of letters and digits; every other
            # character alone, as BERT's pre-tokenizer cuts them): a text longer than berts' window
            # (128) would be windowed by berts but read whole by the pipeline, not the same work
            if len(chunk.split()) >= 5 and len(BERT_WORD.findall(chunk)) <= WINDOW:
                texts.append(chunk)
    texts = texts[:n]
    words = sorted({w for t in texts for w in BERT_WORD.findall(t.lower())})
    return texts, words


def build(directory: Path, preset_name: str, words: list[str], seed: int = 0) -> None:
    from berts.model.config import preset
    from berts.tasks.token_classification import BertForTokenClassification
    from berts.tokenizer.wordpiece import Tokenizer

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(vocab))})
    config = preset(preset_name).replace(vocab_size=tok.vocab_size, id2label=dict(enumerate(LABELS)),
                                         label2id={n: i for i, n in enumerate(LABELS)})
    torch.manual_seed(seed)
    model = BertForTokenClassification(config)
    with torch.no_grad():
        model.classifier.weight.normal_(0, 0.5 / config.hidden_size ** 0.5)
        model.classifier.bias.zero_()
        model.classifier.bias[0] = 1.5  # "O": most tokens outside an entity
    model.save_pretrained(directory, tokenizer=tok)


def same_entities(ours: list[list[dict]], theirs: list[list[dict]]) -> tuple[bool, float]:
    worst = 0.0
    for a, b in zip(ours, theirs, strict=True):
        ka = [(e["type"], e["start"], e["end"]) for e in a]
        kb = [(e["entity_group"], int(e["start"]), int(e["end"])) for e in b]
        if ka != kb:
            return False, worst
        for x, y in zip(a, b):
            worst = max(worst, abs(x["score"] - float(y["score"])))
    return worst <= 1e-4, worst


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="small")
    p.add_argument("--texts", type=int, default=256)
    p.add_argument("--words", type=int, default=40, help="words per text at most")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--quick", action="store_true", help="toy sizes (tests/test_benchmarks_quick.py)")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.texts, args.repeats = "tiny", 16, 1
    torch.set_num_threads(args.threads)

    import warnings

    import transformers
    from transformers import pipeline

    from berts.serve.tagger import Tagger

    transformers.logging.set_verbosity_error()
    texts, words = texts_and_vocab(args.texts, args.words)
    with tempfile.TemporaryDirectory(prefix="berts-ner-") as tmp:
        directory = Path(tmp) / "ner"
        build(directory, args.preset, words)
        tagger = Tagger.from_pretrained(directory, device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hf = pipeline("token-classification", model=str(directory), aggregation_strategy="simple", device=-1)
        engines = {
            BERTS: lambda: tagger.predict(texts),
            "transformers pipeline (default batch 1)": lambda: hf(texts),
            "transformers pipeline (batch_size=32)": lambda: hf(texts, batch_size=32),
        }
        results = {name: fn() for name, fn in engines.items()}  # the warm-up round, and the outputs
        same, worst = same_entities(results[BERTS], results["transformers pipeline (default batch 1)"])
        same32, _ = same_entities(results[BERTS], results["transformers pipeline (batch_size=32)"])
        times = {name: [] for name in engines}
        cpu = {name: [] for name in engines}
        for _ in range(args.repeats):
            for name, fn in engines.items():
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                times[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    rate = {name: len(texts) / statistics.median(t) for name, t in times.items()}
    cpu_rate = {name: len(texts) / statistics.median(t) for name, t in cpu.items()}
    berts_rate, berts_cpu = rate[BERTS], cpu_rate[BERTS]
    out = {"benchmark": "ner_predict", "preset": args.preset, "texts": len(texts), "threads": args.threads,
           "tokens": sum(len(t.split()) for t in texts), "repeats": args.repeats,
           "entities": sum(len(e) for e in results[BERTS]),
           "same_entities": same, "same_entities_batch32": same32, "max_score_diff": worst,
           "texts_per_s": rate,
           "speedup_vs_pipeline": berts_rate / rate["transformers pipeline (default batch 1)"],
           "speedup_vs_pipeline_batch32": berts_rate / rate["transformers pipeline (batch_size=32)"],
           "texts_per_cpu_s": cpu_rate,
           "cpu_speedup_vs_pipeline": berts_cpu / cpu_rate["transformers pipeline (default batch 1)"],
           "cpu_speedup_vs_pipeline_batch32": berts_cpu / cpu_rate["transformers pipeline (batch_size=32)"],
           "torch": torch.__version__, "transformers": transformers.__version__}
    for name, r in rate.items():
        print(f"{name:<42} {r:9.1f} texts/s  {cpu_rate[name]:9.1f} texts/CPU-s")
    print(f"same entities: {same} (max score diff {worst:.1e}; pipeline batch 32: {same32}); "
          f"{out['entities']} entities in {len(texts)} texts")
    print(f"speed-up vs pipeline: {out['speedup_vs_pipeline']:.2f}x (default batch), "
          f"{out['speedup_vs_pipeline_batch32']:.2f}x (batch_size=32)")
    print(f"by CPU time: {out['cpu_speedup_vs_pipeline']:.2f}x (default batch), "
          f"{out['cpu_speedup_vs_pipeline_batch32']:.2f}x (batch_size=32)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    if not same:
        raise SystemExit("the entities differ: the speed-up is not of the same work")
    return out


if __name__ == "__main__":
    main()
