"""`berts evaluate MODEL_DIR FILE [--int8]`: the metrics of a fine-tuned model on a labelled file."""
from __future__ import annotations

import json
import sys

from berts.commands.common import add_data_arguments, add_int8_argument, data_settings
from berts.errors import UserError
from berts.util.values import count, natural


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate", help="print the metrics of a fine-tuned model on a labelled file",
        description="Evaluate a fine-tuned directory (classification, regression, multiple choice, multi-label) "
                    "on a TSV/CSV/JSONL/parquet file or a `datasets` directory: the metrics, and per class "
                    "precision/recall/F1 with the confusion matrix. "
                    "Columns default to those the model was fine-tuned with. A label the model does not "
                    "know is an error naming the file and line. A question-answering directory takes a SQuAD "
                    "JSON / JSONL file: SQuAD EM/F1 (v2.0 at the threshold chosen on dev) or CMRC's for Chinese.")
    p.add_argument("model", metavar="MODEL_DIR", help="a fine-tuned model directory (e.g. OUT/best)")
    p.add_argument("file", metavar="FILE", help="labelled data file")
    add_data_arguments(p)
    p.add_argument("--batch-size", type=count, default=64, metavar="N", help="examples per batch (default 64)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda (default auto)")
    add_int8_argument(p, "dynamic int8 linear layers (CPU); the fp32 metrics are printed beside the int8 ones.")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on stderr when it is a terminal, or with BERTS_PROGRESS=1)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--report-png", metavar="FILE",
                   help="also draw the per-class precision/recall/F1 and the confusion matrix as a PNG (a .png name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --report-png file (never an input)")
    from berts.compress.early_exit.flags import add_exit_arguments

    add_exit_arguments(p)
    p.add_argument("--sweep", action="store_true",
                   help="early exit: accuracy, average layers, FLOPs and latency (batch 1 and 32) over speeds "
                        "and patiences (--speeds, --patiences), and the model run to the end")
    p.add_argument("--speeds", default=None, metavar="S,...", help="--sweep's speeds (default 0,0.1,0.2,0.3,0.5,0.8)")
    p.add_argument("--patiences", default=None, metavar="K,...", help="--sweep's patiences (default 1,2,3)")
    p.add_argument("--latency-examples", type=natural, default=64, metavar="N",
                   help="--sweep: time each setting on N examples (default 64); 0: no timing, accuracy and layers only")
    p.add_argument("--strict", action="store_true",
                   help="token-classification: entities as seqeval's strict mode (well-formed in the scheme only)")
    p.add_argument("--tag-column", type=int, metavar="N",
                   help="token-classification: the CoNLL column holding the gold tag (default: the model's, else the last)")
    p.set_defaults(func=run)


def _line(name: str, metrics: dict) -> str:
    return f"{name}: " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())


def _grid(args) -> tuple[list[float], list[int]]:
    """--sweep's speeds and patiences, each item through the one validation layer's types (so
    "0.1,nan" is one line, before any model loads)."""
    import argparse

    from berts.util.values import count, probability

    def parse(flag, text, convert):
        try:
            items = [convert(x.strip()) for x in text.split(",") if x.strip()]
        except argparse.ArgumentTypeError as exc:
            raise UserError(f"{flag} {text!r}: {exc}") from None
        if not items:
            raise UserError(f"{flag} {text!r}: no values")
        return items

    return (parse("--speeds", args.speeds or "0,0.1,0.2,0.3,0.5,0.8", probability),
            parse("--patiences", args.patiences or "1,2,3", count))


def _sweep(args, clf, ds) -> int:
    from berts.compress.early_exit.exits import sweep, sweep_table

    speeds, patiences = _grid(args)
    clf.early_exit("entropy")  # the model must have students (one-line error if not)
    rows = sweep(clf, ds, speeds, patiences, latency_examples=args.latency_examples)
    print(json.dumps(rows) if args.json else sweep_table(rows))
    return 0


def _tag(args) -> int:
    """A token-classification directory on a tagged file (CoNLL columns or JSONL tokens/tags):
    entity precision / recall / F1 (micro, per type; seqeval's default mode, or --strict), token
    accuracy, invalid transitions of the predictions under the model's scheme."""
    from berts.data.tagging import read_tagged, tag_fields
    from berts.metrics.report import print_report, save_report_png
    from berts.metrics.tagging import entity_report
    from berts.serve.predict import check_batch_size
    from berts.serve.tagger import Tagger
    from berts.util.progress import progress_on

    check_batch_size(args.batch_size)
    tagger = Tagger.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    column = args.tag_column if args.tag_column is not None else int(tagger.tagging.get("tag_column", -1))
    tokens_field, tags_field = tag_fields(args.text_column, args.label_column)  # the flags, else the model's
    if args.text_column is None:
        tokens_field = tagger.tagging.get("tokens_field", tokens_field)
    if args.label_column is None:
        tags_field = tagger.tagging.get("tags_field", tags_field)
    sentences = read_tagged(args.file, tag_column=column, format=args.format, tokens_field=tokens_field,
                            tags_field=tags_field)
    mode = "strict" if args.strict else "default"
    report, _ = tagger.evaluate(sentences, args.batch_size, mode, progress_on(args.quiet))
    if args.int8:  # int8 is never reported alone: beside fp32's, on this file
        from berts.compress.transforms import quantize_int8

        quantize_int8(tagger.model, args.int8)
        fp32 = {k: report[k] for k in ("f1", "precision", "recall", "accuracy")}
        report, _ = tagger.evaluate(sentences, args.batch_size, mode, progress_on(args.quiet))
        report["fp32"] = fp32
    if args.report_png:  # per-type P/R/F1 bars beside the entity confusion, as classification's
        save_report_png(entity_report(report), args.report_png, title=f"{args.model} on {args.file} (entities)")
    if args.json:
        print(json.dumps(report))
        return 0
    head = {k: report[k] for k in ("f1", "precision", "recall", "accuracy")}
    head.update(entities=report["true"], predicted=report["predicted"], sentences=report["sentences"])
    print(_line(f"{args.file}{' (int8)' if args.int8 else ''} [{mode}, {report.get('scheme', '?')}]", head))
    if args.int8:
        print(_line(f"{args.file} (fp32)", report["fp32"]))
    print_report(entity_report(report))  # per type, then which type each gold entity was found as
    print("(entity confusion by overlap: row (none) = spurious predictions, column (none) = missed gold entities)")
    bad = report.get("invalid_transitions")
    if bad is not None:
        kinds = ", ".join(f"{k} x{v}" for k, v in list(bad["predicted_by_kind"].items())[:5])
        print(f"invalid transitions: predicted {bad['predicted']}" + (f" ({kinds})" if kinds else "")
              + f", gold {bad['gold']}")
    return 0


def run(args) -> int:
    if args.sweep:
        _grid(args)  # a bad grid is one line before the model loads
    if (args.speeds is not None or args.patiences is not None) and not args.sweep:  # accepted and ignored before
        raise UserError(f"{'--speeds' if args.speeds is not None else '--patiences'} sets --sweep's grid: add "
                        "--sweep, or give one operating point with --speed / --patience")
    if args.report_png is not None:  # before any model loads: an input or someone's file is refused
        from berts.util.fileio import claim_output_file

        claim_output_file(args.report_png, inputs=[args.file], model_dirs=[args.model], overwrite=args.overwrite,
                          flag="--report-png", suffixes=(".png",))
    from berts.serve.tagger import is_tagger

    if is_tagger(args.model):  # a token-classification directory (NER)
        return _tag(args)
    from berts.commands.common import check_task_serving
    from berts.serve.load import served_by
    from berts.tasks.registry import load

    server = served_by(args.model)  # a task with its own serving (question answering, multiple choice, ...)
    if server is not None:
        check_task_serving(args, args.model)
        return load(f"{server}:evaluate_command")(args, data_settings)
    from berts.serve.predict import Classifier, agreement, check_batch_size
    from berts.util.progress import progress_on
    from berts.metrics import compute_metrics
    from berts.data.tables import check_max_length, read_table
    from berts.data.labels import drop_unknown_labels

    check_batch_size(args.batch_size)
    if args.int8 and args.device not in ("auto", "cpu"):  # it ran on the CPU, ignoring the flag
        raise UserError(f"--int8 runs on the CPU (dynamic int8 linear layers): --device {args.device} cannot be "
                        "honoured; leave --device out")
    clf = Classifier.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    d = data_settings(args, clf.settings, labels=True)
    d.max_length = check_max_length(d.max_length, clf.model.config.max_position_embeddings)
    task = "regression" if clf.regression else "classification"
    examples, report = read_table(args.file, d, task=task)
    examples = drop_unknown_labels(examples, clf.label_map, report, d.skip_bad_rows)
    if report.num_skipped:
        print(report.summary(), file=sys.stderr)
    ds = clf.dataset(examples, d.max_length)
    num_labels = 1 if clf.regression else len(clf.label_map)

    def score(logits):
        m = compute_metrics(task, logits[:, 0] if clf.regression else logits, ds.labels, num_labels)
        m["examples"] = len(ds)
        if not clf.regression:  # per-class precision / recall / F1 and the confusion matrix
            from berts.metrics.report import classification_report

            m["report"] = classification_report(ds.labels, logits.argmax(-1), clf.label_map.names)
        return m

    from berts.compress.early_exit.exits import apply_exit_arguments

    if args.sweep:
        return _sweep(args, clf, ds)
    exits = apply_exit_arguments(clf, args)
    if exits and args.int8:
        raise UserError("--int8 and early exit (--speed/--exit/--patience) are one or the other here")
    bar = progress_on(args.quiet)
    fp32_logits = clf.logits(ds, args.batch_size, progress=bar)
    metrics = score(fp32_logits)
    if exits:  # the layer each example left at (file order) and their summary
        from berts.compress.early_exit.exits import exit_summary

        metrics.update(exit_summary(clf.exit_layers, clf.model.config.num_hidden_layers))
        if args.json:
            metrics["exit_layers"] = [int(x) for x in clf.exit_layers]
        else:
            print(_line(args.file, {k: v for k, v in metrics.items() if k not in ("exit_counts", "report")}))
            print("exit layers: " + "  ".join(f"{k}: {v}" for k, v in metrics["exit_counts"].items()))
            return 0
    if args.int8:  # int8 is never reported alone: its metrics against fp32's, on this file
        clf.quantize(args.int8, examples, args.batch_size)  # smooth: calibrated on the file's first texts
        int8_logits = clf.logits(ds, args.batch_size, progress=bar)
        fp32, metrics = metrics, score(int8_logits)
        metrics["fp32"] = {k: v for k, v in fp32.items() if k != "examples"}
        metrics["int8_vs_fp32"] = agreement(fp32_logits, int8_logits, clf.regression)
    if args.report_png and "report" in metrics:
        from berts.metrics.report import save_report_png

        save_report_png(metrics["report"], args.report_png, title=f"{args.model} on {args.file}")
    if args.json:
        print(json.dumps(metrics))
        return 0
    report = metrics.pop("report", None)
    if not args.int8:
        print(_line(args.file, metrics))
        _print_report(report)
        return 0
    fp32, versus = metrics.pop("fp32"), metrics.pop("int8_vs_fp32")
    fp32.pop("report", None)
    print(_line(f"{args.file} (int8)", metrics))
    print(_line(f"{args.file} (fp32)", fp32))
    key = "accuracy" if "accuracy" in fp32 else "pearson"
    print(f"int8 vs fp32: {key} {metrics[key] - fp32[key]:+.4f}; " + "  ".join(f"{k} {v:.4f}" for k, v in versus.items()))
    _print_report(report)
    return 0


def _print_report(report) -> None:
    if report is not None:
        from berts.metrics.report import print_report

        print_report(report)
