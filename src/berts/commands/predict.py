"""`berts predict MODEL_DIR [FILE|-] [--out FILE] [--id-column COL] [--int8]`: predictions as JSONL.

One rule for a file and for stdin (stdin is read as the same bytes in a file would be):

* ``line`` is the physical line of the example in the input, 1-based, a header line counted (a
  file's first example under a header is line 2, and so is stdin's when it carries the header);
* a TSV input whose first row names the model's text column (the column it was fine-tuned on)
  is a table with a header; otherwise, unless ``--text-column`` is given, it is plain lines: TEXT,
  or TEXT<tab>PAIR for a pair model (so `head -4 test.tsv | berts predict M` skips the header);
* each output object carries the input text (``text``, and ``pair`` for a pair model), or the
  value of ``--id-column`` (``id``) instead.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from berts.commands.common import add_data_arguments, add_int8_argument, data_settings
from berts.errors import UserError
from berts.serve.output import write_predictions
from berts.util.values import count

INT8_CHECK = 512  # examples predicted in fp32 too, for predict --int8's agreement line


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "predict", help="predict labels (JSONL) for a file or stdin",
        description="Run a fine-tuned model on a TSV/CSV/JSONL file, or on stdin (a table with the model's "
                    "header, or one text a line, or TEXT<tab>PAIR for a pair model). Writes one JSON object "
                    "per example: its input line (the physical line, a header counted, the same for a file "
                    "and for stdin), its text (or --id-column), label and probabilities (regression: value). A "
                    "question-answering model (berts finetune --task qa) takes --question Q --context C, or a "
                    "SQuAD JSON / JSONL (question, context) file, and writes answer, start, end (character "
                    "offsets into the context), score and probability per question.")
    p.add_argument("model", metavar="MODEL_DIR", help="a fine-tuned model directory (e.g. OUT/best)")
    p.add_argument("file", nargs="?", default="-", metavar="FILE", help="input file, or - for stdin (default)")
    p.add_argument("--out", metavar="FILE", help="output JSONL (default: stdout)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never an input)")
    add_data_arguments(p, labels=False)
    p.add_argument("--id-column", metavar="COL",
                   help="write this column's value as \"id\" instead of the text (a name or 0-based index)")
    p.add_argument("--batch-size", type=count, default=None, metavar="N",
                   help="examples per batch (default 64; a token-classification model on the CPU: 16)")
    p.add_argument("--device", default="auto", metavar="DEV", help="auto, cpu, cuda (default auto)")
    add_int8_argument(p, f"dynamic int8 linear layers (CPU); prints how often the labels agree with fp32 on "
                         f"the first {INT8_CHECK} examples.")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (shown on stderr when it is a terminal, or with BERTS_PROGRESS=1)")
    p.add_argument("--question", metavar="Q", help="question answering: the question (with --context)")
    p.add_argument("--context", metavar="C", help="question answering: the text holding the answer")
    from berts.compress.early_exit.flags import add_exit_arguments

    add_exit_arguments(p)  # --speed, --exit, --patience: each row then has "exit_layer"
    g = p.add_argument_group("token-classification models (NER)")
    g.add_argument("--text", action="append", metavar="TEXT",
                   help="raw text to tag instead of FILE (repeatable): its entities with character offsets")
    g.add_argument("--input-format", choices=("auto", "text", "conll", "jsonl"), default="auto",
                   help="FILE is raw text (one a line), CoNLL columns (a token a line) or JSONL (tokens or text); "
                        "auto: by extension (.conll/.bio/.bmes/.iob: CoNLL, .jsonl: JSONL, else text)")
    g.add_argument("--conll", action="store_true",
                   help="write CoNLL lines (TOKEN [GOLD] PREDICTED, a blank line between sentences) instead of JSONL")
    p.set_defaults(func=run)


def _stdin_to_file(fmt: str) -> Path:
    suffix = {"csv": ".csv", "jsonl": ".jsonl"}.get(fmt, ".tsv")
    fd, name = tempfile.mkstemp(prefix="berts-predict-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    return Path(name)


def _first_row(path: Path) -> list[str] | None:
    from berts.util.fileio import open_binary

    try:
        with open_binary(path) as f:
            for raw in f:
                text = raw.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")
                if text.strip():
                    return [c.strip() for c in text.split("\t")]
    except OSError:
        return None  # the reader says what is wrong
    return None


def _settings(args, clf, path: Path, fmt: str) -> dict:
    """The model's column settings, or plain lines (see the module docstring)."""
    settings = dict(clf.settings)
    named = settings.get("text_column")
    is_name = isinstance(named, str) and not named.lstrip("-").isdigit()
    if fmt != "tsv" or args.text_column is not None or (is_name and named in (_first_row(path) or [])):
        return settings
    pair = settings.get("pair_column") is not None
    if named is None and len(_first_row(path) or []) > 1 + pair:
        return settings  # a model without column settings, a table: the reader asks for --text-column
    if is_name or named is None:  # no header naming the model's column: plain lines, no header
        settings.update(format="tsv", header=False, text_column="0",
                        pair_column="1" if pair else None)
    return settings


def _format(args, settings: dict, path: Path | None) -> str:
    from berts.data.tables import _format_of

    fmt = args.format or settings.get("format") or "auto"
    if path is None:  # stdin: no name to go by
        return fmt if fmt != "auto" else "tsv"
    return _format_of(path, fmt)


def _tag(args) -> int:
    """A token-classification directory: entities (raw text) or a tag per word (CoNLL / JSONL
    words), as JSONL or CoNLL lines; everything is predicted before anything is written."""
    from berts.data.tagging import TaggedSentence, conll_text
    from berts.serve.predict import check_batch_size
    from berts.serve.tagger import Tagger, read_words
    from berts.util.progress import progress_on

    if args.batch_size is not None:
        check_batch_size(args.batch_size)
    tagger = Tagger.from_pretrained(args.model, device="cpu" if args.int8 else args.device, int8=args.int8)
    if args.text:
        kind, rows = "text", [(i, t) for i, t in enumerate(args.text, 1)]
    else:
        stdin = args.file == "-"
        path = _stdin_to_file("text" if args.input_format == "auto" else args.input_format) if stdin else Path(args.file)
        try:
            kind, rows = read_words(path, args.input_format, "<stdin>" if stdin else None)
        finally:
            if stdin:
                path.unlink(missing_ok=True)
    out_rows, conll = [], []
    if kind == "text":
        for (line, text), r in zip(rows, tagger.predict_words([t for _, t in rows], args.batch_size,
                                                                          progress_on(args.quiet))):
            out_rows.append({"line": line, "text": text, "entities": r["entities"]})
            conll.append((TaggedSentence(r["words"], [], "", line), r["tags"]))
    else:
        from berts.data.tagging import bio_entities

        tags, scores = tagger.tag([s.tokens for s in rows], args.batch_size, progress=progress_on(args.quiet))
        for s, t, sc in zip(rows, tags, scores):
            ents = [{"type": typ, "text": " ".join(s.tokens[a:b]), "start": a, "end": b,
                     "score": round(float(sum(sc[a:b]) / (b - a)), 6)} for typ, a, b in bio_entities(t, tagger.scheme)]
            out_rows.append({"line": s.line, "tokens": s.tokens, "tags": t, "entities": ents})
            conll.append((s, t))
    if args.conll:  # TOKEN [GOLD] PREDICTED, a blank line between sentences
        write_predictions([conll_text([s for s, _ in conll], [t for _, t in conll])], args.out, "text",
                          "tagged", len(conll))
    else:
        for row in out_rows:
            for e in row["entities"]:
                e["score"] = round(e["score"], 6)
        write_predictions(out_rows, args.out, what="tagged")
    return 0


# predict's flags that only one kind of directory honours: given to another, refused in one line
# (they were accepted and ignored: a --question to a tagger read stdin, a --text to a QA model too)
_OWN_FLAGS = {"question": ("question-answering", "--question"), "context": ("question-answering", "--context"),
              "text": ("token-classification", "--text"), "conll": ("token-classification", "--conll")}


def _refuse_foreign(args, kind: str) -> None:
    for dest, (owner, flag) in _OWN_FLAGS.items():
        if owner != kind and getattr(args, dest, None) not in (None, False, []):
            raise UserError(f"{args.model}: {flag} is for {owner} models; this directory is a {kind} model")


def run(args) -> int:
    if args.out is not None:  # every task's predictions, before any model loads: an input or someone's file is refused
        from berts.util.fileio import claim_output_file

        claim_output_file(args.out, inputs=[f for f in [getattr(args, "file", None)] if f is not None],
                          model_dirs=[args.model], overwrite=args.overwrite)
    from berts.serve.tagger import is_tagger

    if is_tagger(args.model):  # a token-classification directory (NER): its own inputs and outputs
        from berts.commands.common import check_task_serving

        _refuse_foreign(args, "token-classification")
        check_task_serving(args, args.model)  # early exit is classification's
        return _tag(args)
    if args.batch_size is None:  # the tagger picks its own (berts.serve.tagger.CPU_BATCH); every other task 64
        args.batch_size = 64
    from berts.commands.common import check_task_serving
    from berts.serve.load import served_by
    from berts.tasks.registry import load

    server = served_by(args.model)  # a task with its own serving (question answering, multiple choice, ...)
    if server is not None:
        check_task_serving(args, args.model)
        _refuse_foreign(args, "question-answering" if server == "berts.serve.qa" else server.rsplit(".", 1)[-1]
                        .replace("_", "-"))
        return load(f"{server}:predict_command")(args, data_settings)
    _refuse_foreign(args, "sequence classification")
    from berts.data.tables import check_max_length, read_table
    from berts.serve.predict import Classifier, agreement, check_batch_size
    from berts.util.progress import progress_on

    check_batch_size(args.batch_size)
    if args.out is None and sys.stdout is None:  # `berts predict M f >&-`
        raise UserError("stdout is closed: nowhere to write the predictions (give --out FILE)")
    if args.int8 and args.device not in ("auto", "cpu"):  # it ran on the CPU, ignoring the flag
        raise UserError(f"--int8 runs on the CPU (dynamic int8 linear layers): --device {args.device} cannot be "
                        "honoured; leave --device out")
    clf = Classifier.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    if clf.pair_model is False and args.pair_column is not None:  # it would read a second text and use it
        raise UserError(f"{args.model}: --pair-column {args.pair_column}: this model was fine-tuned on one sentence "
                        f"(column {clf.settings.get('text_column')!r}), not on pairs")
    stdin = args.file == "-"
    fmt = _format(args, clf.settings, None if stdin else Path(args.file))
    path = _stdin_to_file(fmt) if stdin else Path(args.file)
    shown = "<stdin>" if stdin else str(path)
    try:
        settings = _settings(args, clf, path, fmt)
        d = data_settings(args, settings, labels=False)
        d.max_length = check_max_length(d.max_length, clf.model.config.max_position_embeddings)
        task = "regression" if clf.regression else "classification"
        examples, report = read_table(path, d, labels=False, task=task)
        ids = None
        if args.id_column is not None:
            d.text_column, d.pair_column = args.id_column, None
            rows, _ = read_table(path, d, labels=False, task=task)
            ids = {e.line: e.text for e in rows}
            missing = next((e.line for e in examples if e.line not in ids), None)
            if missing is not None:
                raise UserError(f"{path}:{missing}: no value in the id column {args.id_column}")
    except UserError as exc:
        raise UserError(str(exc).replace(str(path), shown)) from None
    finally:
        if stdin:
            path.unlink(missing_ok=True)
    if report.num_skipped:
        print(report.summary().replace(str(path), shown), file=sys.stderr)
    ds = clf.dataset(examples, d.max_length)
    if args.int8:
        check = clf.dataset(examples[:INT8_CHECK], d.max_length)
        fp32 = clf.logits(check, args.batch_size)
        clf.quantize(args.int8, examples, args.batch_size)  # smooth: calibrated on the first input texts
        versus = agreement(fp32, clf.logits(check, args.batch_size), clf.regression)
        print(f"predict --int8: against fp32 on the first {len(check)} examples: "
              + "  ".join(f"{k} {v:.4f}" for k, v in versus.items())
              + " (`berts evaluate --int8` measures accuracy on a labelled file)", file=sys.stderr)
    from berts.compress.early_exit.exits import apply_exit_arguments

    apply_exit_arguments(clf, args)
    logits = clf.logits(ds, args.batch_size, progress=progress_on(args.quiet))
    predictions = clf.decode(logits, clf.exit_layers if clf.exit is not None else None)
    pair = any(e.text_pair is not None for e in examples)
    rows = []
    for e, p in zip(examples, predictions):
        row = {"line": e.line}
        if ids is not None:
            row["id"] = ids[e.line]
        else:
            row["text"] = e.text
            if pair:
                row["pair"] = e.text_pair
        if clf.regression:
            row["value"] = round(p.value, 6)
        else:
            row["label"] = p.label
            row["probabilities"] = {n: round(x, 6) for n, x in p.probabilities.items()}
        if p.exit_layer is not None:
            row["exit_layer"] = p.exit_layer
        rows.append(row)
    write_predictions(rows, args.out)
    return 0
