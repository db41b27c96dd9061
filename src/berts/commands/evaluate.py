"""`berts evaluate MODEL_DIR FILE`: the metrics of a fine-tuned model on a labelled file."""
from __future__ import annotations

import json
import sys

from berts.commands.common import add_data_arguments, data_settings


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="print the metrics of a fine-tuned model on a labelled file",
        description="Evaluate a fine-tuned classification/regression directory on a TSV/CSV/JSONL file. "
                    "Columns default to those the model was fine-tuned with. A label the model does not "
                    "know is an error naming the file and line.")
    p.add_argument("model", metavar="MODEL_DIR", help="a fine-tuned model directory (e.g. OUT/best)")
    p.add_argument("file", metavar="FILE", help="labelled data file")
    add_data_arguments(p)
    p.add_argument("--batch-size", type=int, default=64, metavar="N", help="examples per batch (default 64)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda (default auto)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.data.classification import ClassificationDataset
    from berts.metrics import compute_metrics
    from berts.train.recipes import check_max_length, drop_unknown_labels, load_classifier, read_table
    from berts.train.tasks import predict_logits

    model, tokenizer, label_map, settings = load_classifier(args.model, args.device)
    regression = label_map is None
    d = data_settings(args, settings, labels=True)
    d.max_length = check_max_length(d.max_length, model.config.max_position_embeddings)
    task = "regression" if regression else "classification"
    examples, report = read_table(args.file, d, task=task)
    examples = drop_unknown_labels(examples, label_map, report, d.skip_bad_rows)
    if report.num_skipped:
        print(report.summary(), file=sys.stderr)
    ds = ClassificationDataset(examples, tokenizer, label_map=label_map, max_length=d.max_length,
                               regression=regression)
    logits = predict_logits(model, ds, args.batch_size)
    metrics = compute_metrics(task, logits[:, 0] if regression else logits, ds.labels,
                              1 if regression else len(label_map))
    metrics["examples"] = len(ds)
    if args.json:
        print(json.dumps(metrics))
    else:
        print(f"{args.file}: " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in metrics.items()))
    return 0
