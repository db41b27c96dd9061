"""What the training and serving commands share: their flags and how flags become config values.
(Commands do not import each other; the runs themselves are library code in berts.runs: one module per run.)"""
from __future__ import annotations

from berts.errors import UserError
from berts.util.values import count, natural, nonnegative, positive, probability


def add_run_arguments(p) -> None:
    """The flags every training command shares. Where users know a flag from transformers'
    run_glue.py / TrainingArguments (``--learning_rate``, ``--warmup_ratio``, ...) or UER, its
    spelling is an alias of ours."""
    p.add_argument("--config", nargs="+", action="extend", metavar="FILE",
                   help="YAML config files (see configs/ and docs/config.md), merged left to right: a later "
                        "file's keys win; flags and --set override them")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set optim.lr=5e-4 (repeatable); --show-config "
                        "lists every key with its default and type")
    p.add_argument("--show-config", action="store_true",
                   help="print every --set key with its value (the defaults, then --config and the flags "
                        "given) and type, and exit")
    p.add_argument("--out", "--output-dir", "--output_dir", dest="out", metavar="DIR",
                   help="output directory (log.out); a new or empty one, this run's own with --resume, or "
                        "an earlier run's with --overwrite")
    p.add_argument("--overwrite", "--overwrite-output-dir", "--overwrite_output_dir", dest="overwrite",
                   action="store_true",
                   help="replace what an earlier berts run wrote in --out (config.yaml, metrics.jsonl, "
                        "checkpoints/, final/, best/, tb/, plots/); other files there are kept")
    p.add_argument("--budget", metavar="TIME",
                   help="wall-clock budget, e.g. 15m or 2h: the schedule follows the clock and the run ends "
                        "on time with a final checkpoint (train.budget)")
    p.add_argument("--resume", metavar="DIR|auto",
                   help="continue a run exactly (weights, optimizer, schedule, RNG, data position) from a "
                        "checkpoint, a run directory, or auto: the newest checkpoint in --out")
    p.add_argument("--max-steps", "--max_steps", dest="max_steps", type=natural, metavar="N",
                   help="optimizer steps (train.max_steps); given with --epochs, --max-steps ends the run")
    p.add_argument("--lr", "--learning-rate", "--learning_rate", dest="lr", type=positive, metavar="LR",
                   help="peak learning rate (optim.lr)")
    p.add_argument("--batch-size", "--per-device-train-batch-size", "--per_device_train_batch_size",
                   dest="batch_size", type=count, metavar="N",
                   help="global batch size: all processes and accumulation steps (train.batch_size; "
                        "run_glue's per-device spelling is accepted, and means the global batch here)")
    p.add_argument("--grad-accum", "--gradient-accumulation-steps", "--gradient_accumulation_steps",
                   dest="grad_accum", type=count, metavar="N",
                   help="micro-batches per optimizer step; the global batch stays --batch-size (train.grad_accum)")
    warm = p.add_mutually_exclusive_group()
    warm.add_argument("--warmup", type=nonnegative, metavar="R|N",
                      help="warm-up: a fraction of the run (< 1) or a number of steps (>= 1) (schedule.warmup)")
    warm.add_argument("--warmup-ratio", "--warmup_ratio", dest="warmup_ratio", type=nonnegative, metavar="R",
                      help="warm-up as a fraction of the run, in [0, 1) (schedule.warmup)")
    warm.add_argument("--warmup-steps", "--warmup_steps", dest="warmup_steps", type=natural, metavar="N",
                      help="warm-up in optimizer steps (schedule.warmup)")
    p.add_argument("--weight-decay", "--weight_decay", dest="weight_decay", type=nonnegative, metavar="WD",
                   help="AdamW/LAMB weight decay, not on biases and LayerNorm (optim.weight_decay)")
    p.add_argument("--adam-epsilon", "--adam_epsilon", dest="adam_epsilon", type=positive, metavar="EPS",
                   help="the optimizer's epsilon (optim.eps; berts' default 1e-6, torch's 1e-8)")
    p.add_argument("--max-grad-norm", "--max_grad_norm", dest="max_grad_norm", type=nonnegative, metavar="N",
                   help="clip the global gradient norm to N (optim.grad_clip)")
    p.add_argument("--seed", type=natural, metavar="N", help="weights, dropout and data order (train.seed)")
    p.add_argument("--dropout", type=probability, metavar="P",
                   help="the model's dropout: hidden and attention probabilities (model.hidden_dropout_prob, "
                        "model.attention_probs_dropout_prob; fine-tuning: model.classifier_dropout too)")
    p.add_argument("--save-steps", "--save_steps", dest="save_steps", type=count, metavar="N",
                   help="steps between resume checkpoints (train.save_every)")
    p.add_argument("--logging-steps", "--logging_steps", dest="logging_steps", type=count, metavar="N",
                   help="steps between metrics records (log.every)")
    p.add_argument("--report-to", "--report_to", dest="report_to", choices=("tensorboard", "all", "none"),
                   help="tensorboard/all: TensorBoard events in OUT/tb (the default); none: no events "
                        "(log.tensorboard; metrics.jsonl is always written)")
    p.add_argument("--keep-last", type=natural, metavar="N",
                   help="resume checkpoints kept (train.keep_last); 0: none, only final/ (and best/)")
    p.add_argument("--ignore-mismatched-sizes", "--ignore_mismatched_sizes", dest="ignore_mismatched_sizes",
                   action="store_true", default=None,
                   help="re-initialise the weights of the model directory whose shape does not fit (else an "
                        "error naming them) (model.ignore_mismatched_sizes)")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), help="impl.precision")
    p.add_argument("--device", metavar="DEV", help="auto, cpu, cuda, cuda:N (impl.device)")


def put(overrides: dict, dotted: str, value) -> None:
    """overrides[section][key] = value, unless the flag was not given (None)."""
    if value is not None:
        section, key = dotted.split(".")
        overrides.setdefault(section, {})[key] = value


def run_overrides(args) -> dict:
    """The shared flags as a nested dict of config values (applied before --set)."""
    o: dict = {}
    warmup = next((w for w in (args.warmup, args.warmup_ratio, args.warmup_steps) if w is not None), None)
    if args.warmup_ratio is not None and not 0 <= args.warmup_ratio < 1:
        raise UserError(f"--warmup-ratio {args.warmup_ratio:g}: a fraction of the run in [0, 1) "
                        "(or give --warmup-steps N)")
    if args.warmup_steps is not None and args.warmup_steps < 0:
        raise UserError(f"--warmup-steps {args.warmup_steps}: a number of steps, 0 or more")
    for dotted, value in (("log.out", args.out), ("train.budget", args.budget), ("train.max_steps", args.max_steps),
                          ("train.batch_size", args.batch_size), ("optim.lr", args.lr),
                          ("impl.precision", args.precision), ("impl.device", args.device),
                          ("train.grad_accum", args.grad_accum), ("schedule.warmup", warmup),
                          ("optim.weight_decay", args.weight_decay), ("optim.eps", args.adam_epsilon),
                          ("optim.grad_clip", args.max_grad_norm), ("train.seed", args.seed),
                          ("model.hidden_dropout_prob", args.dropout),
                          ("model.attention_probs_dropout_prob", args.dropout),
                          ("train.keep_last", args.keep_last), ("train.save_every", args.save_steps),
                          ("log.every", args.logging_steps),
                          ("log.tensorboard", None if args.report_to is None else args.report_to != "none"),
                          ("model.ignore_mismatched_sizes", args.ignore_mismatched_sizes)):
        put(o, dotted, value)
    if args.budget is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")  # the budget rules unless steps are also asked for
        put(o, "train.epochs", "null")
    return o


def show_config_or_load(cls, args, overrides: dict):
    """The run's config (defaults, --config, flags, --set); with --show-config, print every key
    of it and return None (the command exits 0 without running)."""
    from berts.config.loader import build_config, load_config, show_config

    if args.show_config:  # as it is, before the checks across keys (a half-written config is shown too)
        print(show_config(build_config(cls, args.config, args.set, overrides)))
        return None
    return load_config(cls, args.config, args.set, overrides)


def resolve_resume(args, cfg):
    """The checkpoint ``--resume`` names (None without the flag). Checkpoints skipped because they
    do not load are said once, by rank 0 (every torchrun rank resolves the same directory)."""
    import os
    import sys

    from berts.train import checkpoint

    if not args.resume:
        return None
    notes: list[str] = []
    resume = checkpoint.resolve_resume(args.resume, cfg.log.out, notes)
    if os.environ.get("RANK", "0") == "0":
        for note in notes:
            print(f"berts: warning: {note}", file=sys.stderr)
    return resume


def launch(recipe, cfg, args):
    """Run a training recipe as every training command does: join the process group (torchrun),
    build the run, fit, leave the group together. Returns (exit status, result, is rank 0): a
    run stopped by SIGINT/SIGTERM checkpoints first and exits with 128 + the signal."""
    from berts.train import distributed
    from berts.train.trainer import TrainingInterrupted

    resume = resolve_resume(args, cfg)
    dist = distributed.setup(cfg.impl.device)
    try:
        trainer = recipe(cfg, resume, dist, resume_requested=args.resume, overwrite=args.overwrite)
        try:
            return 0, trainer.fit(), dist.is_main
        except TrainingInterrupted as exc:
            return (interrupted(exc, cfg.log.out) if dist.is_main else 128 + exc.signum), None, dist.is_main
        finally:
            del trainer  # DDP holds the process group: free it before the group goes
    finally:
        distributed.teardown()


def interrupted(exc, out) -> int:
    """A run stopped by SIGINT/SIGTERM (``TrainingInterrupted``): one line, the usual status 128 + signal."""
    import signal
    import sys

    name = signal.Signals(exc.signum).name
    if exc.checkpoint is not None:
        what = f"checkpoint at step {exc.step} in {exc.checkpoint}: continue with --resume auto"
    else:
        what = f"no checkpoint written at step {exc.step} (train.keep_last 0)"
    print(f"berts: interrupted by {name}: {what}", file=sys.stderr)
    return 128 + exc.signum


def add_data_arguments(p, *, labels: bool = True) -> None:
    """How to read a table (finetune, evaluate, predict)."""
    p.add_argument("--text-column", metavar="COL", help="text column: a header name or a 0-based index")
    p.add_argument("--pair-column", metavar="COL", help="second text column, for sentence-pair tasks")
    if labels:
        p.add_argument("--label-column", metavar="COL", help="label column (name or 0-based index)")
    p.add_argument("--format", choices=("auto", "tsv", "csv", "jsonl", "parquet", "datasets"),
                   help="file format (default: by extension; a directory: a `datasets` save_to_disk)")
    p.add_argument("--header", choices=("auto", "yes", "no"), help="whether the first row names the columns")
    p.add_argument("--skip-bad-rows", action="store_true", default=None,
                   help="skip malformed rows (and count them) instead of stopping at the first")
    p.add_argument("--max-length", "--max-seq-length", "--max_seq_length", dest="max_length", type=count, metavar="N",
                   help="tokens per example, [CLS]/[SEP] included")


def data_overrides(args) -> list[tuple[str, object]]:
    """(dotted key, value) for the flags of ``add_data_arguments`` plus --train / --dev (the
    training commands: finetune, distill)."""
    return [("data.train", args.train), ("data.dev", args.dev), ("data.text_column", args.text_column),
            ("data.pair_column", args.pair_column), ("data.label_column", args.label_column),
            ("data.format", args.format), ("data.header", {"yes": True, "no": False}.get(args.header, args.header)),
            ("data.skip_bad_rows", args.skip_bad_rows), ("data.max_length", args.max_length)]


def data_settings(args, settings: dict, *, labels: bool):
    """A FinetuneData section from the data flags, falling back on a model's fine-tuning settings."""
    from berts.config.loader import set_key
    from berts.config.schema import FinetuneData

    values = {k: settings[k] for k in ("text_column", "pair_column", "label_column", "format", "header",
                                       "max_length", "task") if settings.get(k) is not None}
    for key in ("text_column", "pair_column", "label_column", "format", "max_length", "skip_bad_rows"):
        value = getattr(args, key, None)
        if value is not None:
            values[key] = value
    if args.header is not None:
        values["header"] = {"yes": True, "no": False}.get(args.header, args.header)
    data = FinetuneData()
    for key, value in values.items():
        set_key(data, "data", key, value, "command line")
    if not labels:
        data.label_column = None
    return data


def task_server(directory):
    """The module that serves a fine-tuned directory of a task with its own serving, or None
    (berts.serve.load.served_by: config.json alone, no torch)."""
    from berts.serve.load import served_by

    return served_by(directory)


def check_task_serving(args, directory) -> None:
    """Early exit (--speed / --exit / --patience / --sweep) is classification's: refused in one line
    for a task with its own serving."""
    asked = [f for f in ("speed", "exit", "patience") if getattr(args, f, None) is not None]
    if getattr(args, "sweep", False):
        asked.append("sweep")
    if asked:
        from berts.errors import UserError

        raise UserError(f"{directory}: --{asked[0]}: early exit is for classification directories "
                        f"(berts finetune --early-exit), not this task's")


# berts.compress.transforms.INT8_SCHEMES (spelled here: --help must not import torch; a test keeps them equal)
INT8_SCHEMES = ("per-channel", "per-tensor", "smooth")


def add_int8_argument(p, help: str) -> None:
    """`--int8 [SCHEME]`: a bare --int8 is per-channel (the default scheme); per-tensor is the
    int8 of before, smooth calibrates SmoothQuant scales on the first 256 input texts."""
    p.add_argument("--int8", nargs="?", const="per-channel", default=None, choices=INT8_SCHEMES, metavar="SCHEME",
                   help=help + " SCHEME: per-channel (the default of a bare --int8: weights per output channel, "
                        "8-bit activations), smooth (SmoothQuant scales calibrated on the first 256 input texts: "
                        "the closest to fp32), per-tensor (torch's defaults, the int8 of berts <= 0.x)")
