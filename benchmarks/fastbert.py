"""FastBERT early exit on a real teacher: MiniLM-L6 fine-tuned on the Rotten Tomatoes snippets,
its exits trained by self-distillation on the training text (labels not read), then the sweep
over speeds and patiences on the held-out test split (accuracy, average layers, FLOPs per
example, latency at batch 1 and 32), every step a `berts` command:

    python benchmarks/fastbert.py --out /tmp/fastbert [--teacher DIR] [--teacher-budget 6m] [--exit-budget 4m]
        [--exit-train AUGMENTED.tsv --exit-steps 1517]

Writes OUT/fastbert.json and OUT/fastbert.md (the sweep table and the goals, as measured).
The data and weights come from package registries (berts.data.corpora), cached, never committed.
"""
from __future__ import annotations

import argparse
import json
import sys
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from berts.data import corpora
from berts.cli import main

QUIET = ["--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "impl.device=cpu"]


def berts(*args) -> str:
    buf = StringIO()
    with redirect_stdout(buf):
        rc = main([str(a) for a in args])
    if rc != 0:
        sys.exit(f"berts {' '.join(map(str, args[:2]))} failed ({rc})")
    return buf.getvalue()


def run(argv=None) -> dict:
    p = argparse.ArgumentParser()
    p.add_argument("--out", help="required unless --quick (then a temporary directory)")
    p.add_argument("--teacher", help="a fine-tuned classifier directory (default: fine-tune MiniLM here)")
    p.add_argument("--teacher-budget", default="6m")
    p.add_argument("--exit-budget", default="4m")
    p.add_argument("--exit-steps", type=int, default=0, help="train the exits for N steps instead of --exit-budget")
    p.add_argument("--exit-train", help="the exits' training text (default: the training split; e.g. a `berts augment` "
                                        "file of it: the exits read no labels)")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--speeds", default="0,0.05,0.1,0.2,0.3,0.4,0.5,0.7")
    p.add_argument("--patiences", default="1,2,3")
    p.add_argument("--quick", action="store_true", help="seconds, no download: a tiny BERT on tiny made-up "
                   "reviews (benchmarks/quick.py), 3 s of teacher, 5 exit steps (the numbers mean nothing)")
    args = p.parse_args(argv)
    if args.quick:
        import tempfile

        import quick

        args.out = args.out or tempfile.mkdtemp(prefix="fastbert-quick-")
        args.teacher_budget, args.exit_steps, args.max_length, args.threads = "3s", 5, 32, 1
        args.speeds, args.patiences = "0,0.5", "1"
        quick.use_tiny_corpora(args.out)
    if not args.out:
        p.error("--out is required (or --quick)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = corpora.en_rotten_tomatoes(seed=0)
    common = [*QUIET, "--set", f"impl.threads={args.threads}", "--max-length", args.max_length]
    teacher = args.teacher
    if teacher is None:
        teacher_out = out / "teacher"
        if not (teacher_out / "final" / "config.json").is_file():
            berts("finetune", "--model", corpora.en_minilm(), "--train", data["train"], "--dev", data["dev"],
                  "--out", teacher_out, "--budget", args.teacher_budget, "--batch-size", 32, "--lr", "5e-5",
                  "--warmup", "0.06", "--seed", 0, "--eval-every", 100000, "--keep-last", 0, *common)
        teacher = teacher_out / "final"
    exits = out / "exits"
    if not (exits / "final" / "config.json").is_file():
        length = ["--max-steps", args.exit_steps] if args.exit_steps else ["--budget", args.exit_budget]
        berts("finetune", "--early-exit", "--model", teacher, "--train", args.exit_train or data["train"],
              "--out", exits, *length, "--batch-size", 32, "--lr", "5e-4", "--warmup", "0.05", "--seed", 0,
              "--keep-last", 0, *common)
    teacher_eval = json.loads(berts("evaluate", teacher, data["test"], "--json"))
    sweep = ["--json", "--sweep", "--speeds", args.speeds, "--patiences", args.patiences]
    dev_rows = json.loads(berts("evaluate", exits / "final", data["dev"], *sweep))
    rows = json.loads(berts("evaluate", exits / "final", data["test"], *sweep))
    from berts.compress.early_exit.exits import sweep_table

    full = next(r for r in rows if r["rule"] == "full")
    goal = [r for r in rows if r["rule"] != "full" and r["avg_layers"] <= full["avg_layers"] / 2
            and r["accuracy"] >= full["accuracy"] - 0.01]
    faster = [r for r in rows if r["rule"] != "full" and r["latency_b32_ms"] < full["latency_b32_ms"]]
    # the speed is chosen on dev: the largest that loses nothing there; its test row is the figure
    dev_full = next(r for r in dev_rows if r["rule"] == "full")["accuracy"]
    chosen = max((r["value"] for r in dev_rows if r["rule"] == "entropy" and r["accuracy"] >= dev_full), default=0)
    test_chosen = next(r for r in rows if r["rule"] == "entropy" and r["value"] == chosen)
    result = {"teacher": str(teacher), "teacher_test": teacher_eval, "sweep": rows, "dev_sweep": dev_rows,
              "dev_chosen_speed": chosen, "dev_chosen_test": test_chosen,
              "goal_2x_fewer_layers_within_1pt": [(r["rule"], r["value"]) for r in goal],
              "faster_than_full_at_batch_32": [(r["rule"], r["value"]) for r in faster]}
    (out / "fastbert.json").write_text(json.dumps(result, indent=2) + "\n")
    text = (f"teacher {teacher}: test accuracy {teacher_eval['accuracy']:.4f} ({teacher_eval['examples']} examples)\n\n"
            + "test:\n\n" + sweep_table(rows) + "\n\ndev:\n\n" + sweep_table(dev_rows) + "\n\n"
            + f"chosen on dev (the largest speed that loses nothing there): S = {chosen:g}; on test "
            f"{test_chosen['accuracy']:.4f} ({100 * (test_chosen['accuracy'] - full['accuracy']):+.2f} points) at "
            f"{test_chosen['avg_layers']:.2f} layers ({full['avg_layers'] / test_chosen['avg_layers']:.2f}x fewer)\n"
            + f">= 2x fewer layers within 1 point: {result['goal_2x_fewer_layers_within_1pt'] or 'none'}\n"
            + f"faster than the full model at batch 32: {result['faster_than_full_at_batch_32'] or 'none'}\n")
    (out / "fastbert.md").write_text(text)
    print(text)
    return result


if __name__ == "__main__":
    run()
