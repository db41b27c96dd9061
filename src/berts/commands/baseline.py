"""`berts baseline --train F --dev F [--test F]`: TF-IDF n-grams + logistic regression, the
classical baseline (berts/baselines.py), on the same files and columns as `berts finetune`."""
from __future__ import annotations

import json

from berts.commands.common import add_data_arguments, data_settings


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "baseline", help="TF-IDF n-grams + logistic regression on a classification task (scikit-learn)",
        description="Fit TF-IDF n-grams + logistic regression (scikit-learn) on --train, choose C on --dev, and "
                    "report dev and --test accuracy: the figure a fine-tuned BERT has to beat. Files and "
                    "columns as for `berts finetune`; a pair's two texts are joined with ' [SEP] '.")
    p.add_argument("--train", required=True, metavar="FILE", help="labelled training file")
    p.add_argument("--dev", required=True, metavar="FILE", help="labelled dev file (chooses C)")
    p.add_argument("--test", metavar="FILE", help="labelled test file (scored once, with the dev-chosen C)")
    add_data_arguments(p)
    p.add_argument("--analyzer", default="char", choices=("char", "char_wb", "word"),
                   help="n-grams of characters (default; Chinese) or of words (English)")
    p.add_argument("--ngrams", default="1,2", metavar="MIN,MAX", help="n-gram range (default 1,2)")
    p.add_argument("--C", default="1", metavar="C,...", help="inverse regularisation; several: chosen on dev (default 1)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on stderr when it is a terminal, or with BERTS_PROGRESS=1)")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.tools.baselines import tfidf_baseline
    from berts.errors import UserError

    try:
        lo, hi = (int(x) for x in args.ngrams.split(","))
        cs = [float(x) for x in args.C.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"--ngrams {args.ngrams!r} (MIN,MAX) / --C {args.C!r} (numbers, comma-separated)") from None
    if not 1 <= lo <= hi:
        raise UserError(f"--ngrams {args.ngrams!r}: 1 <= MIN <= MAX")
    data = data_settings(args, {}, labels=True)
    from berts.util.progress import progress_on

    result = tfidf_baseline(args.train, args.dev, args.test, data, analyzer=args.analyzer, ngrams=(lo, hi), Cs=cs,
                            progress=progress_on(args.quiet))
    if args.json:
        print(json.dumps(result))
    else:
        test = f", test accuracy {result['test_accuracy']:.4f}" if "test_accuracy" in result else ""
        print(f"TF-IDF {args.analyzer} {lo}-{hi}-grams + logistic regression (C={result['C']:g}, "
              f"{result['features']:,} features): dev accuracy {result['dev_accuracy']:.4f}{test} "
              f"({result['seconds']:.1f}s)")
    return 0
