"""`berts tokenizer train|encode|import`: WordPiece vocabularies as Hugging Face directories."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from berts.errors import UserError
from berts.util.fileio import TOKENIZER_NAMES, claim_output_dir, release_output_dir
from berts.util.values import count


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tokenizer", help="train, inspect or import a WordPiece tokenizer",
        description="Train a BERT WordPiece tokenizer, encode a text with one, or import a "
                    "Google/HF vocab.txt. Directories load with transformers.AutoTokenizer.")
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: _no_action(parser))

    train = sub.add_parser("train", help="train a WordPiece vocabulary on text files",
                           description="Train a WordPiece vocabulary. The corpus is read as `berts prepare` "
                                       "reads it: files, directories, globs, .gz; formats bert, plain or "
                                       "jsonl (text in --text-field), detected per file by default.")
    train.add_argument("--corpus", nargs="+", required=True, metavar="INPUT",
                       help="corpus files, directories or glob patterns")
    train.add_argument("--format", dest="input_format", choices=("auto", "bert", "plain", "jsonl"), default="auto",
                       help="input format (default: detected per file)")
    train.add_argument("--text-field", default="text", metavar="NAME", help="JSONL field holding the text (default text)")
    train.add_argument("--vocab-size", type=count, required=True, metavar="N", help="vocabulary size, specials included")
    train.add_argument("--out", required=True, metavar="DIR",
                       help="output directory: new, empty, or (with --overwrite) an earlier tokenizer's")
    train.add_argument("--overwrite", action="store_true",
                       help="replace the tokenizer files berts wrote in --out (other files are kept)")
    train.add_argument("--cased", action="store_true", help="keep case and accents (default: lowercase, strip accents)")
    train.add_argument("--min-frequency", type=count, default=2, metavar="N",
                       help="minimum count for a merge (default: 2)")
    train.add_argument("--limit-alphabet", type=count, default=1000, metavar="N",
                       help="keep at most N distinct characters (default: 1000)")
    train.add_argument("--model-max-length", type=count, default=512, metavar="N",
                       help="model_max_length written to tokenizer_config.json (default: 512)")
    train.set_defaults(func=_train)

    encode = sub.add_parser("encode", help="print the tokens and ids of a text")
    encode.add_argument("dir", metavar="DIR", help="tokenizer directory (or vocab.txt)")
    encode.add_argument("text", metavar="TEXT")
    encode.add_argument("--pair", metavar="TEXT", help="second text of a pair")
    encode.add_argument("--max-length", type=count, metavar="N", help="truncate to N tokens, specials included")
    encode.set_defaults(func=_encode)

    imp = sub.add_parser("import", help="write a tokenizer directory from a Google/HF vocab.txt")
    imp.add_argument("vocab", metavar="VOCAB_TXT", help="vocab.txt (one token a line, id = line number)")
    imp.add_argument("--out", required=True, metavar="DIR",
                     help="output directory: new, empty, or (with --overwrite) an earlier tokenizer's")
    imp.add_argument("--overwrite", action="store_true",
                     help="replace the tokenizer files berts wrote in --out (other files are kept)")
    imp.add_argument("--cased", action="store_true", help="cased vocabulary (default: uncased)")
    imp.set_defaults(func=_import)


def _no_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _case(lowercase: bool) -> str:
    return "uncased" if lowercase else "cased"


def _train(args) -> int:
    from berts.tokenizer.wordpiece import Tokenizer

    # refused before the (long) training, not after: a new, empty or (--overwrite) earlier tokenizer's directory
    out = claim_output_dir(args.out, "tokenizer", overwrite=args.overwrite, protect=_inputs(args.corpus))
    try:
        tok = Tokenizer.train(args.corpus, args.vocab_size, lowercase=not args.cased,
                              min_frequency=args.min_frequency, limit_alphabet=args.limit_alphabet,
                              model_max_length=args.model_max_length, input_format=args.input_format,
                              text_field=args.text_field,
                              # tokenizers' bars go to stderr but it also writes blank lines to stdout:
                              # only when someone watches, so a piped stdout holds just the summary
                              show_progress=sys.stderr.isatty())
        tok.save_pretrained(out)
    except BaseException:
        if not any((out / n).exists() for n in TOKENIZER_NAMES):
            release_output_dir(out)  # nothing written: leave no empty directory behind
        raise
    s = tok.train_stats
    skipped = f", skipped {s['skipped_lines']} (see the warnings)" if s["skipped_lines"] else ""
    print(f"tokenizer: vocab {tok.vocab_size} ({_case(tok.lowercase)}) from {s['files']} file(s), "
          f"{s['lines']} lines{skipped}, in {s['seconds']:.1f}s -> {out}")
    return 0


def _inputs(patterns) -> list[Path]:
    """The corpus paths that exist as named (globs are matched later, by the corpus reader)."""
    return [Path(p) for p in patterns if Path(p).exists()]


def _encode(args) -> int:
    from berts.tokenizer.wordpiece import load_tokenizer

    if args.max_length is not None and args.max_length < 1:
        raise UserError(f"--max-length must be at least 1, got {args.max_length}")
    tok = load_tokenizer(args.dir)
    enc = tok.encode(args.text, args.pair, max_length=args.max_length)
    print("tokens:", " ".join(tok.convert_ids_to_tokens(enc["input_ids"])))
    print("ids:", " ".join(map(str, enc["input_ids"])))
    if args.pair is not None:
        print("type_ids:", " ".join(map(str, enc["token_type_ids"])))
    return 0


def _import(args) -> int:
    from berts.tokenizer.wordpiece import Tokenizer

    path = Path(args.vocab)
    if path.is_dir():
        path = path / "vocab.txt"
    tok = Tokenizer.from_vocab(path, lowercase=not args.cased)
    out = claim_output_dir(args.out, "tokenizer", overwrite=args.overwrite, protect=[path])
    try:
        tok.save_pretrained(out)
    except BaseException:
        if not any((out / n).exists() for n in TOKENIZER_NAMES):
            release_output_dir(out)
        raise
    print(f"tokenizer: imported {tok.vocab_size} tokens ({_case(tok.lowercase)}) from {path} -> {args.out}")
    return 0
