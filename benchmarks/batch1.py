"""Batch-1 serving latency: `berts.Classifier.predict([text])` on berts' torch engine against the
same Classifier on the onnx engine (onnxruntime running the exported graph), one thread, alternated.

    PYTHONPATH=src .venv/bin/python benchmarks/batch1.py --n 200 --rounds 5

The model has all-MiniLM-L6-v2's shape and tokenizer (berts.data.corpora.en_minilm: 6 layers,
hidden 384, 12 heads; its real encoder weights) with a two-label head (random: this measures time,
not accuracy), saved as a fine-tuned directory and exported with `berts export DIR --onnx
DIR/model.onnx`. The texts are the first --n Brown sentences (berts.data.corpora.en_brown, one
paragraph a line, cut at the first full stop), predicted one call each (batch 1), as a server
answering requests would; each round runs every side over all the texts in turn, the order
reversed every other round. Latency = median over rounds of (round time / n), per call, whole API
(tokenizer, batching, model, softmax, decode). --batch 32 adds the same at batch 32 for context.
``--quick``: a tiny random model and made-up sentences (benchmarks/quick.py), no download.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def make_classifier(src: Path, out: Path) -> Path:
    """src's encoder + a random two-label head, saved as `berts finetune` leaves a directory."""
    import torch

    from berts import BertForSequenceClassification
    from berts.data.labels import LabelMap
    from berts.hf import load_hf_state_dict, read_config, read_state_dict
    from berts.tokenizer.wordpiece import load_tokenizer

    config = read_config(src).replace(**LabelMap(["neg", "pos"]).to_config())
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    sd = {k: v for k, v in read_state_dict(src).items()}
    load_hf_state_dict(model, sd, source=str(src))
    model.config.finetune_data = {"task": "classification", "text_column": "text", "pair_column": None,
                                  "label_column": "label", "format": "auto", "header": "auto", "max_length": 128}
    model.save_pretrained(out, tokenizer=load_tokenizer(src))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench_out/batch1")
    ap.add_argument("--n", type=int, default=200, help="sentences, one call each")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32, help="also time predict(all texts) at this batch size")
    ap.add_argument("--quick", action="store_true", help="toy sizes, no download (the numbers mean nothing)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        import quick

        quick.use_tiny_corpora(out)
        args.n, args.rounds = 20, 2

    import torch

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    from berts.data import corpora
    from berts.serve.export import export_onnx
    from berts.serve.predict import Classifier

    lines = [t for t in corpora.en_brown()["text"].read_text(encoding="utf-8").splitlines() if t.strip()]
    texts = [t.split(" . ")[0][:400] for t in lines[:args.n]]
    d = out / "model"
    if not (d / "model.onnx").is_file():
        make_classifier(corpora.en_minilm(), d)
        export_onnx(d, d / "model.onnx", texts=texts[:16], threads=1)
    sides = {"berts torch": Classifier.from_pretrained(d, device="cpu"),
             "berts onnx engine": Classifier.from_pretrained(d, engine="onnx", threads=1)}
    ref = [p.label for p in sides["berts torch"].predict(texts)]
    agree = {k: sum(p.label == r for p, r in zip(c.predict(texts), ref)) / len(texts) for k, c in sides.items()}
    one = {k: [] for k in sides}
    cpu = {k: [] for k in sides}  # process CPU time per call: steadier than wall time on a shared box
    many = {k: [] for k in sides}
    for r in range(args.rounds):
        for k in (list(sides) if r % 2 == 0 else list(sides)[::-1]):
            clf = sides[k]
            t, c = time.perf_counter(), time.process_time()
            for text in texts:
                clf.predict([text])
            one[k].append((time.perf_counter() - t) / len(texts))
            cpu[k].append((time.process_time() - c) / len(texts))
            t = time.perf_counter()
            clf.predict(texts, batch_size=args.batch)
            many[k].append(time.perf_counter() - t)
    base1 = statistics.median(one["berts torch"])
    basec = statistics.median(cpu["berts torch"])
    baseb = statistics.median(many["berts torch"])
    result = {"benchmark": "batch1", "model": "all-MiniLM-L6-v2 shape" if not args.quick else "tiny",
              "sentences": len(texts), "rounds": args.rounds, "threads": 1, "batch": args.batch, "sides": {}}
    print(f"| engine | batch 1 latency | vs torch | batch 1 CPU time | vs torch | batch {args.batch}: sentences/s "
          "| vs torch | labels = torch |")
    print("|---|---|---|---|---|---|---|---|")
    for k in sides:
        l1, lb, c1 = statistics.median(one[k]), statistics.median(many[k]), statistics.median(cpu[k])
        result["sides"][k] = {"batch1_ms": l1 * 1e3, "batch1_speedup": base1 / l1, "batch1_cpu_ms": c1 * 1e3,
                              "batch1_cpu_speedup": basec / c1,
                              "batch_sentences_per_s": len(texts) / lb, "batch_speedup": baseb / lb,
                              "label_agreement": agree[k]}
        print(f"| {k} | {l1 * 1e3:.2f} ms | {base1 / l1:.2f}x | {c1 * 1e3:.2f} ms | {basec / c1:.2f}x | "
              f"{len(texts) / lb:.1f} | {baseb / lb:.2f}x | "
              f"{agree[k]:.3f} |")
    result["torch"] = torch.__version__
    result["onnxruntime"] = __import__("onnxruntime").__version__
    (out / "batch1.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
