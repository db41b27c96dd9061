"""`berts augment FILE --model DIR --out FILE`: TinyBERT's data augmentation (berts/augment.py),
more task text for `berts distill --method tinybert --train OUT`."""
from __future__ import annotations

from berts.commands.common import add_data_arguments, data_settings
from berts.util.progress import progress_on
from berts.util.values import count, count_at_most, natural, probability

MAX_VARIANTS = 1000  # per text (the reference uses 20-30): a larger --n is a typo, not a plan


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "augment", help="TinyBERT data augmentation: new task text by word replacement",
        description="Write FILE's rows and up to N variants of each, made as TinyBERT's data_augmentation.py "
                    "does: every alphabetic non-stop word is replaced with probability P by one of its TOP_K "
                    "candidates, the masked language model's predictions at its position (a one-piece word, "
                    "when --model has an MLM head) or its nearest words in the model's input embeddings (the "
                    "reference's GloVe step; every word when --model has no MLM head). Labels are copied: "
                    "use the output for TinyBERT task distillation, which learns from the teacher's soft "
                    "targets. Output: a TSV with a header (text, [text_pair,] label).")
    p.add_argument("file", metavar="FILE", help="the table to augment (a training split)")
    p.add_argument("--model", required=True, metavar="DIR",
                   help="model directory whose tokenizer splits the words and whose MLM head or embeddings "
                        "give the candidates")
    p.add_argument("--out", required=True, metavar="FILE", help="the augmented TSV to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never an input)")
    p.add_argument("--n", type=count_at_most(MAX_VARIANTS), default=20, metavar="N", help="variants per text (default 20, the reference's SST-2)")
    p.add_argument("--p", type=probability, default=0.4, metavar="P", help="replacement probability per word (default 0.4)")
    p.add_argument("--top-k", type=count, default=15, metavar="K", help="candidates per word (default 15)")
    p.add_argument("--seed", type=natural, default=0, help="seed (text i draws from (seed, i))")
    p.add_argument("--batch-size", type=count, default=64, metavar="B", help="MLM rows per forward (default 64)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_data_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:

    from berts.tools.augment import augment_file
    from berts.util.fileio import claim_output_file
    from berts.errors import UserError

    if args.n < 1 or not 0.0 <= args.p <= 1.0 or args.top_k < 1:
        raise UserError(f"--n {args.n} >= 1, --p {args.p} in [0, 1], --top-k {args.top_k} >= 1")
    claim_output_file(args.out, inputs=[args.file], model_dirs=[args.model], overwrite=args.overwrite)
    from berts.hf.kinds import require_kind

    kind = require_kind(args.model, "encoder", "berts augment")  # config.json: before the weights load
    if "mlm" not in kind.heads:  # allowed (the reference's GloVe step), but never silently
        import sys

        print(f"berts: note: {args.model} is {kind.describe()}: no MLM head, so every candidate comes from "
              "the nearest words of its input embeddings (give a model with an MLM head for TinyBERT's "
              "contextual candidates)", file=sys.stderr)
    data = data_settings(args, {}, labels=True)
    stats = augment_file(args.file, args.out, data, model_dir=args.model, n=args.n, p=args.p, top_k=args.top_k,
                         seed=args.seed, batch_size=args.batch_size, progress=progress_on(args.quiet))
    if stats.cut:
        import sys

        print(f"berts: warning: {stats.cut:,} texts longer than the model's window: their variants are of "
              f"their first {stats.window} words", file=sys.stderr)
    print(f"augmented {args.file}: {stats.texts:,} texts -> {stats.rows:,} rows in {args.out} "
          f"({stats.variants:,} variants; {stats.candidate_words:,} candidate words: {stats.by_mlm:,} by the MLM "
          f"head, {stats.by_embedding:,} by embedding neighbours, {stats.kept:,} of several pieces kept; {stats.seconds:.1f}s)")
    return 0
