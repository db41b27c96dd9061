"""Serving an extractive-QA directory (``berts finetune --task qa``, or transformers'
``...ForQuestionAnswering``): :class:`QuestionAnswerer` in Python, and what ``berts predict`` /
``berts evaluate`` do with such a directory (serve.load.served_by sends them here).

    qa = QuestionAnswerer.from_pretrained("runs/qa/best")
    qa("Who led the Norse?", context)   # {"text": "Rollo", "start": 228, "end": 233, "score": 9.1, ...}

Each answer: ``text`` (the context's characters ``start:end``, end exclusive), ``score`` (start +
end logit of the span), ``probability`` (softmax over the n-best spans), and for a SQuAD v2.0
model ``null_score_diff`` (the text is "" and start = end = -1 when it is above the threshold chosen
on dev). The settings (doc stride, window length, answer length, n-best, threshold) are the ones
saved with the model (config.json's ``finetune_data.qa``); keyword arguments override them per call.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from berts.errors import UserError
from berts.compress.transforms import quantize_int8
from berts.data.qa import QAExample
from berts.data.qa import read_qa
from berts.hf import load
from berts.serve.output import write_predictions
from berts.serve.predict import check_batch_size
from berts.tasks.qa import BertForQuestionAnswering
from berts.tasks.qa import answer
from berts.tasks.qa import detect_lang, score
from berts.tasks.qa import settings_of
from berts.tokenizer.wordpiece import load_tokenizer
from berts.util.device import resolve_device
from berts.util.progress import progress_on


class QuestionAnswerer:
    def __init__(self, model, tokenizer, settings: dict | None = None):

        self.model, self.tokenizer = model, tokenizer
        self.settings = {**settings_of(model), **(settings or {})}

    @classmethod
    def from_pretrained(cls, directory, device: str = "auto", **settings) -> QuestionAnswerer:

        model = load(directory)
        if not isinstance(model, BertForQuestionAnswering):
            raise UserError(f"{directory}: a {type(model).__name__}, not a question-answering model "
                            "(fine-tune one with `berts finetune --task qa`)")
        model.to(resolve_device(device)).eval()
        # serving: linear layers on real tokens only, packed attention rows
        model.set_fast_path(unpad=True, pack=True)
        return cls(model, load_tokenizer(directory), settings)

    def answer_examples(self, examples, batch_size: int = 32, progress: bool = False, **settings) -> list[dict]:
        """One answer dict per berts.data.qa.QAExample (see the module docstring)."""

        if not examples:
            return []
        return answer(self.model, self.tokenizer, examples, batch_size=batch_size, device=self.model.device,
                      settings={**self.settings, **settings}, progress="predict" if progress else None)

    def predict(self, questions: Sequence[str], contexts: Sequence[str], batch_size: int = 32,
                progress: bool = False, **settings) -> list[dict]:

        if len(questions) != len(contexts):
            raise ValueError(f"{len(questions)} questions but {len(contexts)} contexts")
        examples = [QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, contexts))]
        return [_public(r) for r in self.answer_examples(examples, batch_size, progress, **settings)]

    def __call__(self, question: str, context: str, **settings) -> dict:
        return self.predict([question], [context], **settings)[0]


def _public(r: dict) -> dict:
    out = {k: r[k] for k in ("text", "start", "end", "score", "probability")}
    if "null_score_diff" in r:
        out["null_score_diff"] = r["null_score_diff"]
    return out


def _round(x: float) -> float:
    return round(float(x), 6) if x == x and abs(x) != float("inf") else x


# ----------------------------------------------------------------------------- the commands
def _refuse_exit(args) -> None:
    if any(getattr(args, k, None) is not None for k in ("speed", "exit", "patience")) or getattr(args, "sweep", False):
        raise UserError(f"{args.model}: early exit (--speed/--exit/--patience/--sweep) is for classification "
                        "models only, not question answering")


def _examples(args):
    """The questions of ``berts predict``: --question/--context, or a SQuAD JSON / JSONL file (or stdin)."""

    if args.question is not None or args.context is not None:
        if args.question is None or args.context is None:
            raise UserError("--question and --context go together (or give a JSONL/SQuAD file)")
        if args.file != "-":
            raise UserError(f"{args.file}: give a file or --question/--context, not both")
        return [QAExample("1", args.question, args.context, line=None)]
    if args.file == "-":
        import tempfile

        with tempfile.TemporaryDirectory(prefix="berts-qa-") as tmp:
            path = Path(tmp) / "stdin.jsonl"
            path.write_bytes(sys.stdin.buffer.read())
            try:
                return read_qa(path)
            except UserError as exc:
                raise UserError(str(exc).replace(str(path), "<stdin>")) from None
    return read_qa(args.file)


def predict_command(args, data_settings=None) -> int:
    """``berts predict QA_DIR (--question Q --context C | FILE)``: one JSON object per question."""

    check_batch_size(args.batch_size)
    _refuse_exit(args)
    examples = _examples(args)  # bad input fails here, before anything is written
    if not examples:
        raise UserError(f"{args.file}: no questions")
    qa = QuestionAnswerer.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    if args.int8:
        quantize_int8(qa.model, args.int8)  # a scheme; smooth needs calibration: refused in one line
    results = qa.answer_examples(examples, args.batch_size, progress_on(getattr(args, "quiet", False)))
    rows = []
    for e, r in zip(examples, results):
        row = {"line": e.line} if e.line is not None else {}
        row.update(id=e.id, question=e.question, answer=r["text"], start=r["start"], end=r["end"],
                   score=_round(r["score"]), probability=_round(r["probability"]))
        if "null_score_diff" in r:
            row["null_score_diff"] = _round(r["null_score_diff"])
        rows.append(row)
    write_predictions(rows, args.out, what="answers")
    return 0


def evaluate_command(args, data_settings=None) -> int:
    """``berts evaluate QA_DIR FILE``: SQuAD EM/F1 (v2.0: at the saved threshold, + HasAns/NoAns
    and the best threshold on this file) or CMRC's for Chinese; ``--int8`` beside fp32."""

    check_batch_size(args.batch_size)
    _refuse_exit(args)
    examples = read_qa(args.file)
    if not examples:
        raise UserError(f"{args.file}: no questions")
    qa = QuestionAnswerer.from_pretrained(args.model, device="cpu" if args.int8 else args.device)
    s = qa.settings
    lang = s["lang"] if s["lang"] != "auto" else detect_lang(examples)
    version_2 = bool(s["version_2"]) or any(e.is_impossible for e in examples)

    def metrics():
        results = qa.answer_examples(examples, args.batch_size, progress_on(getattr(args, "quiet", False)),
                                     version_2=version_2, null_threshold=float("inf"))
        m = score(examples, results, lang=lang, version_2=version_2,
                  null_threshold=float(s["null_threshold"]) if version_2 else None)
        m["examples"] = len(examples)
        return m

    out = metrics()
    if args.int8:
        quantize_int8(qa.model, args.int8)  # a scheme; smooth needs calibration: refused in one line
        fp32, out = out, metrics()
        out["fp32"] = {k: v for k, v in fp32.items() if k != "examples"}
    if args.json:
        print(json.dumps(out))
        return 0

    def line(name, m):
        return f"{name}: " + "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in m.items() if not isinstance(v, dict))
    print(line(f"{args.file} (int8)" if args.int8 else str(args.file), out))
    if args.int8:
        print(line(f"{args.file} (fp32)", out["fp32"]))
    return 0
