"""`berts export MODEL_DIR --onnx OUT.onnx [--optimize] [--int8]`: an ONNX graph, checked in onnxruntime."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from berts.commands.common import add_data_arguments, data_settings
from berts.errors import UserError
from berts.util.values import count


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="export a model to ONNX, checked in onnxruntime",
        description="Export a berts or Hugging Face BERT/ALBERT directory as ONNX (inputs input_ids, "
                    "attention_mask, token_type_ids with dynamic batch and sequence axes; output the logits, "
                    "or the hidden states of a bare encoder). The graph is then run in onnxruntime on real text "
                    "(--eval-file, or the Python reference manual's paragraphs) and compared with berts in fp32: "
                    "more than 1e-4 apart is an error. Needs the onnx extra: pip install 'berts[onnx]'.")
    p.add_argument("model", metavar="MODEL_DIR", help="a model directory (e.g. OUT/best)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.onnx (and OUT.int8.onnx) if they exist")
    p.add_argument("--optimize", action="store_true",
                   help="run onnxruntime's transformer optimizer on the graph (fuses LayerNorm and GELU, not "
                        "attention, on the graph torch exports; measured: no speed-up, see docs/commands/export.md)")
    p.add_argument("--int8", action="store_true",
                   help="also write OUT.int8.onnx (dynamic int8), reported against the fp32 graph")
    p.add_argument("--eval-file", metavar="FILE",
                   help="texts to check on (a classifier's labelled file: int8 accuracy is reported too), read "
                        "with the model's column settings")
    add_data_arguments(p)
    p.add_argument("--threads", type=count, metavar="N", help="onnxruntime threads (default: its own)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def _texts(args):
    """(texts, pairs, labels) of --eval-file, read with the model's settings (None: real text)."""
    if not args.eval_file:
        return None, None, None
    from berts.hf import read_config
    from berts.data.tables import read_table
    from berts.serve.load import served_by

    if served_by(args.model) == "berts.serve.qa":  # question answering: (question, context) pairs of a QA file
        from berts.data.qa import read_qa

        examples = read_qa(args.eval_file)
        return [e.question for e in examples], [e.context for e in examples], None

    config = read_config(args.model)
    settings = dict(config.finetune_data or {})
    labelled = config.id2label is not None and (args.label_column or settings.get("label_column")) is not None
    d = data_settings(args, settings, labels=labelled)
    if d.text_column is None:
        raise UserError(f"{args.eval_file}: give --text-column (the model keeps no column settings)")
    examples, _ = read_table(args.eval_file, d, labels=labelled, task="classification")
    pairs = [e.text_pair for e in examples] if d.pair_column is not None else None
    return [e.text for e in examples], pairs, ([e.label for e in examples] if labelled else None)


def run(args) -> int:
    from berts.serve.export import export_onnx

    from berts.serve.export import int8_path
    from berts.util.fileio import claim_output_file

    outs = [args.onnx] + ([int8_path(Path(args.onnx))] if args.int8 else [])
    for out in outs:  # the graph is read back by onnxruntime: a regular file, never a stream
        claim_output_file(out, inputs=[args.eval_file], model_dirs=[args.model], overwrite=args.overwrite,
                          streams=False, flag="--onnx")
    texts, pairs, labels = _texts(args)
    r = export_onnx(args.model, args.onnx, optimize=args.optimize, int8=args.int8, texts=texts, pairs=pairs,
                    labels=labels, threads=args.threads, max_length=args.max_length)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"export: {r['architecture']} -> {r['files']['fp32']} (outputs {', '.join(r['outputs'])}; "
          f"{r['export_s']:.1f}s)")
    if r["architecture"].endswith("WithExits"):  # never silently: the graph is the full-depth classifier
        print("export: note: the early exits are not in the graph (it runs every layer: the final classifier's "
              "logits); exits run in berts predict --speed", file=sys.stderr)
    elif "ForUnifiedLM" in r["architecture"] or "ForMaskedLM" in r["architecture"]:
        print("export: note: the graph is the encoder (last_hidden_state), without the language-model head",
              file=sys.stderr)
    print(f"onnxruntime vs berts on {r['texts']} texts: max |diff| {r['max_abs_diff']:.2e}"
          + (f"; optimized graph {r['optimized_max_abs_diff']:.2e}" if "optimized_max_abs_diff" in r else "")
          + f" (tolerance {r['tolerance']:g})")
    if "int8" in r:
        print(f"int8 -> {r['files']['int8']}: against the fp32 graph: "
              + "  ".join(f"{k} {v:.4f}" for k, v in r["int8"].items()), file=sys.stdout)
    return 0
