"""`berts prepare INPUT... --tokenizer DIR --out DIR`: text corpora -> pretraining shards."""
from __future__ import annotations

from berts.errors import UserError
from berts.objectives import registry
from berts.util.progress import progress_on
from berts.util.values import count, natural, probability


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "prepare", help="tokenize corpora into pretraining instances (NSP/SOP pairs, reorder, distance), in shards",
        description="Make pretraining instances with Google BERT's algorithm and write them as memory-mapped "
                    "shards. Inputs: files, directories, globs, .gz; formats: bert (a sentence a line, blank "
                    "line between documents), plain (a paragraph a line, sentences split automatically, blank "
                    "line between documents), jsonl (a document a record, text in a field). Masking happens "
                    "later, at batch time.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="corpus files, directories or glob patterns")
    p.add_argument("--tokenizer", required=True, metavar="DIR", help="tokenizer directory (berts tokenizer train)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory for the shards")
    p.add_argument("--objective", choices=registry.sentence_names(), default="nsp",
                   help="the sentence-level objective the instances are made for (default nsp): "
                        + "; ".join(f"{n}: {registry.get(n).help}" for n in registry.names("sentence"))
                        + "; none: one segment, no sentence label (RoBERTa)")
    p.add_argument("--max-seq-length", "--max_seq_length", dest="max_seq_length", type=count, default=128, metavar="N", help="tokens per instance (default 128)")
    p.add_argument("--short-seq-prob", type=probability, default=0.1, metavar="P",
                   help="probability of a shorter random target length (default 0.1)")
    p.add_argument("--dupe-factor", type=count, default=1, metavar="N",
                   help="passes over the corpus with different cuts (default 1)")
    p.add_argument("--seed", type=natural, default=12345, help="random seed (default 12345)")
    p.add_argument("--workers", type=count, default=2, metavar="N", help="worker processes (default 2)")
    p.add_argument("--format", dest="input_format", choices=("auto", "bert", "plain", "jsonl"), default="auto",
                   help="input format (default: detected per file)")
    p.add_argument("--text-field", default="text", metavar="NAME", help="JSONL field holding the text (default text)")
    p.add_argument("--segmenter", choices=("auto", "none", "jieba", "gold", "lexicon"), default="auto",
                   help="Chinese word boundaries for whole-word masking: jieba, gold (words separated by "
                        "spaces in the corpus), lexicon (--lexicon), none; auto = jieba when the corpus has "
                        "Chinese (default)")
    p.add_argument("--lexicon", metavar="FILE",
                   help="word/entity list, one a line: entity units for entity masking (and the words of "
                        "--segmenter lexicon)")
    p.add_argument("--shard-size", type=count, default=1_000_000, metavar="N", help="instances per shard (default 1M)")
    p.add_argument("--overwrite", action="store_true", help="replace prepared data already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from berts.data.pipeline import format_summary, prepare
    from berts.util.fileio import check_not_input

    check_not_input(args.out, inputs=args.inputs, model_dirs=[args.tokenizer])

    if args.workers < 1:
        raise UserError(f"--workers must be >= 1, got {args.workers}")
    summary = prepare(
        args.inputs, args.tokenizer, args.out, objective=args.objective, max_seq_length=args.max_seq_length,
        short_seq_prob=args.short_seq_prob, dupe_factor=args.dupe_factor, seed=args.seed, workers=args.workers,
        input_format=args.input_format, segmenter=None if args.segmenter == "none" else args.segmenter,
        lexicon=args.lexicon, text_field=args.text_field, shard_size=args.shard_size, overwrite=args.overwrite,
        progress=progress_on(args.quiet))
    print(format_summary(summary))
    return 0
