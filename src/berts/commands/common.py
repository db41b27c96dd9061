"""What the training and serving commands share: their flags and how flags become config values.
(Commands do not import each other; the runs themselves are library code in berts.train.recipes.)"""
from __future__ import annotations


def add_run_arguments(p) -> None:
    """The flags every training command shares."""
    p.add_argument("--config", metavar="FILE", help="YAML config (see configs/); flags and --set override it")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config value, e.g. --set optim.lr=5e-4 (repeatable)")
    p.add_argument("--out", metavar="DIR", help="output directory (log.out)")
    p.add_argument("--budget", metavar="TIME",
                   help="wall-clock budget, e.g. 15m or 2h: the schedule follows the clock and the run ends "
                        "on time with a final checkpoint (train.budget)")
    p.add_argument("--resume", metavar="DIR|auto",
                   help="continue a run exactly (weights, optimizer, schedule, RNG, data position) from a "
                        "checkpoint, a run directory, or auto: the newest checkpoint in --out")
    p.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps (train.max_steps)")
    p.add_argument("--lr", type=float, metavar="LR", help="peak learning rate (optim.lr)")
    p.add_argument("--batch-size", type=int, metavar="N", help="global batch size (train.batch_size)")
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
    for dotted, value in (("log.out", args.out), ("train.budget", args.budget), ("train.max_steps", args.max_steps),
                          ("train.batch_size", args.batch_size), ("optim.lr", args.lr),
                          ("impl.precision", args.precision), ("impl.device", args.device)):
        put(o, dotted, value)
    if args.budget is not None and args.max_steps is None:
        put(o, "train.max_steps", "null")  # the budget rules unless steps are also asked for
        put(o, "train.epochs", "null")
    return o


def add_data_arguments(p, *, labels: bool = True) -> None:
    """How to read a table (finetune, evaluate, predict)."""
    p.add_argument("--text-column", metavar="COL", help="text column: a header name or a 0-based index")
    p.add_argument("--pair-column", metavar="COL", help="second text column, for sentence-pair tasks")
    if labels:
        p.add_argument("--label-column", metavar="COL", help="label column (name or 0-based index)")
    p.add_argument("--format", choices=("auto", "tsv", "csv", "jsonl"), help="file format (default: by extension)")
    p.add_argument("--header", choices=("auto", "yes", "no"), help="whether the first row names the columns")
    p.add_argument("--skip-bad-rows", action="store_true", default=None,
                   help="skip malformed rows (and count them) instead of stopping at the first")
    p.add_argument("--max-length", type=int, metavar="N", help="tokens per example, [CLS]/[SEP] included")


def data_settings(args, settings: dict, *, labels: bool):
    """A FinetuneData section from the data flags, falling back on a model's fine-tuning settings."""
    from berts.train.config import FinetuneData, set_key

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
