"""`berts compare` on the Rotten Tomatoes test split: the MiniLM teacher, its FastBERT exits at a
speed, any student directories given (DistilBERT, TinyBERT from `berts distill`), and an ALBERT of
the teacher's width (shared layers, factorized embedding E=128) fine-tuned from random weights
for the same short budget (what sharing does to size and speed, not a rival in accuracy):

    python benchmarks/compare.py --teacher /tmp/fastbert/teacher/final --exits /tmp/fastbert/exits/final \\
        [--students DIR ...] --out /tmp/compare

Writes OUT/compare.md, compare.json, compare.png (berts.tools.compare.write_reports).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from berts.data import corpora
from berts.cli import main

QUIET = ["--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "impl.device=cpu"]


def albert_like(teacher: Path, out: Path, budget: str, threads: int) -> Path:
    """An ALBERT config of the teacher's shape (E 128, all layers shared), fine-tuned from scratch."""
    config = json.loads((teacher / "config.json").read_text())
    keep = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
            "max_position_embeddings", "type_vocab_size")
    albert = {k: config[k] for k in keep} | {"model_type": "albert", "embedding_size": 128, "share_layers": "all",
                                             "num_hidden_groups": 1, "hidden_act": "gelu_new"}
    out.mkdir(parents=True, exist_ok=True)
    (out / "albert-config.json").write_text(json.dumps(albert, indent=2))
    run = out / "albert"
    if not (run / "final" / "config.json").is_file():
        data = corpora.en_rotten_tomatoes(seed=0)
        assert main([str(a) for a in [
            "finetune", "--from-scratch", out / "albert-config.json", "--tokenizer", teacher, "--train", data["train"],
            "--out", run, "--budget", budget, "--batch-size", 32, "--lr", "5e-4", "--keep-last", 0,
            "--max-length", 64, "--set", f"impl.threads={threads}", *QUIET]]) == 0
    return run / "final"


def run(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--teacher", help="a fine-tuned classifier directory (required unless --quick)")
    p.add_argument("--exits", help="the teacher's early-exit directory (berts finetune --early-exit)")
    p.add_argument("--speed", type=float, default=0.3)
    p.add_argument("--students", nargs="*", default=[])
    p.add_argument("--albert-budget", default="2m")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="required unless --quick (then a temporary directory)")
    p.add_argument("--quick", action="store_true", help="seconds, no download: a tiny BERT fine-tuned for 5 steps "
                   "on tiny made-up reviews is the teacher (benchmarks/quick.py); the numbers mean nothing")
    args = p.parse_args(argv)
    if args.quick:
        import tempfile

        import quick

        args.out = args.out or tempfile.mkdtemp(prefix="compare-quick-")
        args.albert_budget, args.threads = "2s", 1
        quick.use_tiny_corpora(args.out)
        if not args.teacher:
            data, teacher = corpora.en_rotten_tomatoes(seed=0), Path(args.out) / "teacher"
            assert main([str(a) for a in ["finetune", "--model", corpora.en_minilm(), "--train", data["train"],
                                          "--out", teacher, "--max-steps", 5, "--batch-size", 8, "--keep-last", 0,
                                          "--max-length", 32, "--set", "impl.threads=1", *QUIET]]) == 0
            args.teacher = str(teacher / "final")
    if not (args.out and args.teacher):
        p.error("--teacher and --out are required (or --quick)")
    out = Path(args.out)
    models = [args.teacher, *args.students]
    if args.exits:
        models.append(args.exits)
    models.append(albert_like(Path(args.teacher), out, args.albert_budget, args.threads))
    test = corpora.en_rotten_tomatoes(seed=0)["test"]
    # compare.md/json/png beside the models this script wrote: berts compare refuses to write into a
    # directory of files it did not write unless told so
    assert main([str(a) for a in ["compare", *models, "--eval-file", test, "--out", out, "--overwrite", "--threads", args.threads,
                                  "--speed", args.speed, "--max-length", 64]]) == 0


if __name__ == "__main__":
    run()
