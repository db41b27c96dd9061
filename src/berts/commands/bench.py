"""`berts bench`: tokens/s of berts and transformers side by side (see berts/bench/)."""
from __future__ import annotations

import json
from pathlib import Path

from berts.errors import UserError
from berts.util.values import count, natural


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark training and inference against transformers",
        description="Pretraining step (MLM + NSP), fine-tuning step (sequence classification) and inference "
                    "of berts and transformers, in one process, on the same batches, config and threads: "
                    "tokens/s, ratio, useful GFLOP/s against a measured matmul ceiling, peak memory. Also "
                    "`berts prepare` MB/s and tokenizer throughput. With --only infer --engines: one classifier "
                    "in berts, transformers, onnxruntime and their int8 forms.")
    p.add_argument("--preset", help="model size preset (default mini)")
    p.add_argument("--seq", type=count, metavar="N", help="sequence length (default 128)")
    p.add_argument("--batch", type=count, metavar="N", help="batch size (default 32)")
    p.add_argument("--steps", type=count, metavar="N", help="timed steps per implementation (default 5)")
    p.add_argument("--warmup", type=natural, metavar="N", help="untimed steps first (default 2)")
    p.add_argument("--threads", type=count, metavar="N", help="torch CPU threads for both (default: torch's)")
    p.add_argument("--device", help="cpu or cuda[:N] (default cpu)")
    p.add_argument("--corpus", metavar="FILE",
                   help="real text for the variable lengths and the prepare/tokenizer timings: a paragraph a "
                        "line, blank line between documents (default: the Python reference manual's topics "
                        "that ship with CPython)")
    p.add_argument("--only", metavar="LIST",
                   help="comma-separated parts: pretrain, finetune, infer, prepare, tokenizer (default all)")
    p.add_argument("--lengths", metavar="LIST",
                   help="fixed (every row --seq tokens), real (corpus paragraphs, padded per batch), prepared "
                        "(pretraining only: `berts prepare` instances through our collator); default all")
    p.add_argument("--fast-paths", metavar="LIST",
                   help="berts fast paths to switch on (the others off): unpad, pack, sparse_output, "
                        "fast_dropout, or none (default: all)")
    p.add_argument("--compile", action="store_true", default=None,
                   help="torch.compile berts (falls back with a warning)")
    p.add_argument("--no-transformers", action="store_true", default=None, help="berts alone")
    p.add_argument("--seed", type=natural, help="default 0")
    p.add_argument("--engines", metavar="LIST",
                   help="with --only infer: one classifier served by each of these engines, side by side (those "
                        "installed): berts, berts-int8, transformers, torch-int8, onnxruntime, onnxruntime-int8; "
                        "batch 1 and --batch, sequence cap --seq")
    p.add_argument("--model", metavar="DIR", help="with --engines: a fine-tuned classifier (default: a random "
                                                   "--preset one)")
    p.add_argument("--eval-file", metavar="FILE", help="with --engines and --model: a labelled file; its texts are "
                                                       "the benchmark's, and each engine's accuracy is reported")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--options", nargs="+", action="extend", metavar="FILE",
                   help="YAML files of bench options (KEY: VALUE, any field of berts.tools.bench.options."
                        "BenchOptions), merged left to right; the flags above and --set override them")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one bench option, e.g. --set mask_prob=0.3 (repeatable; --show-options lists them)")
    p.add_argument("--show-options", action="store_true",
                   help="print every option with its value and type, and exit")
    p.set_defaults(func=run)


def _fast_paths(text: str) -> dict:
    from berts.model.encoder import FAST_PATHS

    names = {x.strip() for x in text.split(",") if x.strip()} - {"none"}
    unknown = names - set(FAST_PATHS)
    if unknown:
        raise UserError(f"--fast-paths: unknown {', '.join(sorted(unknown))} (known: {', '.join(FAST_PATHS)}, none)")
    return {name: name in names for name in FAST_PATHS}


def options(args):
    """BenchOptions from the defaults, --options files, the flags given, then --set."""
    from berts.config.loader import load_settings, set_key
    from berts.tools.bench import BenchOptions

    def items(text):
        return None if text is None else tuple(x.strip() for x in text.split(",") if x.strip())

    opts = load_settings(BenchOptions(), args.options)
    flags = {"preset": args.preset, "seq": args.seq, "batch": args.batch, "steps": args.steps,
             "warmup": args.warmup, "threads": args.threads, "device": args.device, "corpus": args.corpus,
             "only": items(args.only), "regimes": items(args.lengths), "compile": args.compile,
             "transformers": None if args.no_transformers is None else not args.no_transformers, "seed": args.seed,
             "fast_path": None if args.fast_paths is None else _fast_paths(args.fast_paths)}
    for key, value in flags.items():
        if value is not None:
            set_key(opts, "", key, value, f"--{key.replace('_', '-')}")
    return load_settings(opts, sets=args.set)


def run(args) -> int:
    from berts.tools.bench import format_table, run_bench

    if args.engines is None and (args.model or args.eval_file):
        raise UserError("--model and --eval-file go with --engines (the inference engines benchmark)")
    opts = options(args)
    if opts.threads is not None and opts.threads < 1:
        raise UserError(f"--threads must be >= 1, got {opts.threads}")
    if args.show_options:
        from berts.config.loader import show_config

        print(show_config(opts))
        return 0
    if args.engines is not None:
        from berts.tools.bench.engines import format_engines, parse_engines, run_engines

        if opts.only != ("infer",):
            raise UserError("--engines compares inference engines: use it with --only infer")
        result = run_engines(opts, parse_engines(args.engines), args.model, args.eval_file,
                             batches=tuple(dict.fromkeys((1, opts.batch))))
        print(format_engines(result))
    else:
        result = run_bench(opts)
        print(format_table(result))
    if args.json:
        path = Path(args.json)
        if path.parent and not path.parent.exists():
            raise UserError(f"{path.parent}: no such directory for --json")
        path.write_text(json.dumps(result, indent=2) + "\n")
    return 0
