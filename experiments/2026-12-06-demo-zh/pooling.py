"""The label-efficiency runs of a finished `berts demo --lang zh` again, with the classifier reading the
mean of the last layer's tokens (`model.classifier_pooling=mean`) instead of [CLS], at the same number
of optimizer steps each run took: dev accuracy of both poolings side by side (the test split is not read).

    PYTHONPATH=src .venv/bin/python -m berts demo --lang zh --budget 12m --out OUT
    PYTHONPATH=src .venv/bin/python experiments/2026-12-06-demo-zh/pooling.py OUT

Why: an MLM-only model never trains its [CLS] output (no NSP), while a random encoder's attention is
near-uniform, so its [CLS] row is close to a mean of the tokens: with 100-1,000 labels the pretrained
model sat below its random twin in every earlier run (README.md here).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from berts.cli import main as berts
from berts.demo.report import best_eval, run_summary


def main(out: Path, labels=("100", "300", "1000")) -> dict:
    rep = json.loads((out / "report.json").read_text())
    s, zh = rep["settings"], out / "zh"
    data, pre = zh / "data", zh / "pretrain" / "final"
    res = {}
    for name in ("reviews", "headlines"):
        for label in labels:
            for init in ("pretrained", "random"):
                cls = rep["zh"]["labels"][name]["points"][label][init]
                train = data / name / f"train.{label}.tsv"
                n = sum(1 for line in train.read_text(encoding="utf-8").splitlines()[1:] if line.strip())
                every = max(10, min(max(10, s["eval_every"] // 2), math.ceil(n / s["batch_size"]) * 5))
                start = ["--model", pre] if init == "pretrained" else ["--from-scratch", pre, "--tokenizer", pre]
                run = zh / "pooling" / name / f"{label}-{init}-mean"
                berts([str(a) for a in [
                    "finetune", *start, "--out", run, "--overwrite", "--train", train, "--dev", data / name / "dev.tsv",
                    "--text-column", "text", "--label-column", "label", "--max-length",
                    min(s["finetune_max_length"], s["max_seq_length"]), "--lr", s["finetune_lr"],
                    "--epochs", s["label_epochs"], "--max-steps", max(1, cls["steps"]), "--batch-size", s["batch_size"],
                    "--metric", "accuracy", "--eval-every", every, "--keep-last", "0",
                    "--set", "model.classifier_pooling=mean", "--set", "log.progress=none"]])
                mean = best_eval(run_summary(run)).get("accuracy")
                res[f"{name}/{label}/{init}"] = {"steps": cls["steps"], "dev_cls": cls["dev_accuracy"], "dev_mean": mean}
                print(name, label, init, res[f"{name}/{label}/{init}"], flush=True)
    (out / "pooling.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main(Path(sys.argv[1]))
