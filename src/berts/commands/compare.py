"""`berts compare DIR... --eval-file F [--speed S,S] [--int8] [--out DIR]`: models side by side on
one labelled file (parameters, size, FLOPs per token, CPU latency at batch 1 and 32, the metric,
ratios to the first; early-exit speeds and int8 as rows of their own).
The work is ``berts.tools.compare``'s; this file is flags -> compare() -> reports."""
from __future__ import annotations

from pathlib import Path

from berts.commands.common import add_data_arguments, add_int8_argument
from berts.util.values import count


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare", help="compare fine-tuned models: size, FLOPs, latency, accuracy",
        description="Run fine-tuned classifiers (a teacher first, then its students, an ALBERT, ...) on one "
                    "labelled file: parameters, FLOPs per token, CPU latency at batch 1 and 32 (same examples "
                    "and threads for every model, the models alternated, medians), the metric, and each as a "
                    "ratio to the first. --speed 0.3,0.5: a row per speed for early-exit directories; --int8: "
                    "a dynamic-int8 row after each fp32 one. Prints a markdown table (with each row's weights "
                    "in MB); --out DIR writes compare.md, compare.json and compare.png (the metric against "
                    "latency).")
    p.add_argument("models", nargs="+", metavar="DIR", help="fine-tuned model directories; the first is the reference")
    p.add_argument("--eval-file", required=True, metavar="FILE", help="labelled file (columns: the models' own); a BEIR "
                   "folder for sentence encoders (retrieval nDCG@10)")
    add_data_arguments(p)
    p.add_argument("--out", metavar="DIR", help="write compare.md, compare.json, compare.png here")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier comparison's compare.md/.json/.png in --out (other files are kept)")
    p.add_argument("--threads", type=count, metavar="N", help="torch CPU threads for every model (default: torch's)")
    p.add_argument("--latency-examples", type=count, default=64, metavar="N",
                   help="examples timed per model and batch size (default 64)")
    p.add_argument("--repeats", type=count, default=5, metavar="R", help="timing rounds; medians (default 5)")
    p.add_argument("--speed", metavar="S[,S...]",
                   help="run early-exit directories (berts finetune --early-exit) at these speeds (entropy rule, "
                        "each in [0, 1], comma-separated: 0.3,0.5,0.7): one row per speed")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on stderr when it is a terminal, or with BERTS_PROGRESS=1)")
    add_int8_argument(p, "after each fp32 row (not the early-exit speeds), the same directory in dynamic int8: "
                         "accuracy, latency, size, and its agreement with fp32's predictions.")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.tools.compare import check_speeds, compare, markdown, write_reports
    from berts.util.progress import progress_on
    from berts.errors import UserError

    if args.latency_examples < 1 or args.repeats < 1:
        raise UserError("--latency-examples and --repeats must be at least 1")
    speeds = check_speeds(args.speed)  # before any model is loaded: a bad list fails at once
    if args.out:  # claimed before the models run: a user's compare.md is not replaced without --overwrite
        from berts.util.fileio import check_not_input, claim_output_dir

        from berts.util.fileio import read_marker

        check_not_input(args.out, inputs=[args.eval_file], model_dirs=args.models)
        marker = read_marker(args.out) if Path(args.out).is_dir() else None
        if marker and marker["kind"] != "compare":
            raise UserError(f"--out {args.out}: holds a berts {marker['kind']} run; write the comparison to "
                            "another directory")
        claim_output_dir(args.out, "compare", overwrite=args.overwrite, protect=[args.eval_file, *args.models])
    try:
        rows = compare(args.models, args.eval_file, latency_examples=args.latency_examples, repeats=args.repeats,
                       threads=args.threads, speeds=speeds, int8=args.int8, data_args=args,
                       progress=progress_on(args.quiet))
    except BaseException:
        if args.out:
            from berts.util.fileio import release_output_dir

            release_output_dir(args.out)  # nothing written: no marked empty directory left behind
        raise
    print(markdown(rows))
    if args.out:
        paths = write_reports(rows, args.out)
        print(f"compare: {', '.join(str(p) for p in paths.values())}")
    return 0
