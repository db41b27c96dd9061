"""Extractive-QA serving speed: berts' predict path (berts.serve.qa.QuestionAnswerer: windows,
batched forward with the fast paths, n-best postprocessing) against transformers'
``pipeline("question-answering")`` on the same berts-saved directory, CPU, same threads, the two
alternated round by round (medians), and the share of questions both answer with the same text.

    .venv/bin/python benchmarks/qa_predict.py --threads 2 --out bench_out/qa_predict.json

Model: a randomly initialised BertForQuestionAnswering of ``--preset`` (speed does not depend on
the weights) with a WordPiece vocabulary trained on the texts, saved by berts; transformers loads
that directory (AutoModelForQuestionAnswering + its fast tokenizer). Questions: ``--n``
paragraphs of CPython's reference manual (real text, real lengths; each one window at
``--max-length``) as contexts, each asked a question made of a few of its words. Both sides get
the same settings (max length, doc stride, longest answer, no null answer). The pipeline runs with
its default batch size (1) and, as a second row, ``batch_size=32``.
Measured 2026-12-06 (``--threads 2 --repeats 3``, mini preset, 64 questions of one window each at
384, transformers 5.25.0 so the v4 steps by hand, torch 2.13 CPU, a shared 2-core machine at load
about 15-18, alternated rounds, medians): berts 6.2 questions/s, pipeline (batch 1) 0.66/s, the
same with batch_size 32 3.1/s: **9.3x** the pipeline's default, 1.97x its batch-32; same answers
63/64 (0.984).

Same answers: within one window, the pipeline's best span (product of the start and end softmaxes
over the context tokens) is berts' (sum of the two logits), so the texts must agree.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch


def build(workdir: Path, preset_name: str, vocab: int, texts: list[str]) -> Path:
    from berts.model.config import preset
    from berts.tasks.qa import BertForQuestionAnswering
    from berts.tokenizer.wordpiece import Tokenizer

    corpus = workdir / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    tok = Tokenizer.train([corpus], vocab, show_progress=False)
    torch.manual_seed(0)
    config = preset(preset_name).replace(vocab_size=tok.vocab_size, max_position_embeddings=512)
    model = BertForQuestionAnswering(config)
    # spread the span scores (init's 0.02 leaves every logit near 0: near-ties that 1e-6 flips)
    torch.nn.init.normal_(model.qa_outputs.weight, std=1.0)
    model.save_pretrained(workdir / "qa", tokenizer=tok)
    return workdir / "qa"


class V4Pipeline:
    """transformers 4's ``QuestionAnsweringPipeline`` steps on a transformers model and fast
    tokenizer, for a transformers that no longer ships it (5.x): per ``batch_size`` windows, the
    tokenizer with ``return_overflowing_tokens`` / ``stride`` / offsets ("only_second"), the
    model's forward, then per window its postprocess: softmax of start and end over the context
    tokens (the rest masked with -10000), scores = outer product, spans with start <= end and
    at most ``max_answer_len`` tokens, the best over the windows, back to characters."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer = model, tokenizer

    def __call__(self, inputs, batch_size=1, max_seq_len=384, doc_stride=128, max_answer_len=15, **_):
        import numpy as np

        feats = []  # (question index, encoding row)
        for k, x in enumerate(inputs):
            enc = self.tokenizer(x["question"], x["context"], truncation="only_second", max_length=max_seq_len,
                                 stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True)
            for j in range(len(enc["input_ids"])):
                feats.append((k, {key: enc[key][j] for key in ("input_ids", "token_type_ids", "attention_mask")},
                              enc["offset_mapping"][j], enc.sequence_ids(j)))
        best = [None] * len(inputs)
        for lo in range(0, len(feats), batch_size):
            chunk = feats[lo:lo + batch_size]
            batch = self.tokenizer.pad([f[1] for f in chunk], return_tensors="pt")
            with torch.inference_mode():
                out = self.model(**batch)
            for row, (k, f, offsets, seq) in enumerate(chunk):
                n = len(f["input_ids"])
                undesired = np.array([s != 1 for s in seq])
                start = out.start_logits[row, :n].numpy().copy()
                end = out.end_logits[row, :n].numpy().copy()
                start[undesired], end[undesired] = -10000.0, -10000.0
                start = np.exp(start - start.max()); start /= start.sum()
                end = np.exp(end - end.max()); end /= end.sum()
                scores = np.tril(np.triu(np.outer(start, end)), max_answer_len - 1)
                i, j = np.unravel_index(scores.argmax(), scores.shape)
                if best[k] is None or scores[i, j] > best[k][0]:
                    best[k] = (scores[i, j], offsets[i][0], offsets[j][1])
        return [{"answer": x["context"][a:b], "score": float(sc), "start": a, "end": b}
                for x, (sc, a, b) in zip(inputs, best)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="mini", help="model size preset (default mini)")
    p.add_argument("--n", type=int, default=64, help="questions (default 64)")
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--quick", action="store_true", help="toy sizes: a check that the script runs")
    args = p.parse_args()
    if args.quick:
        args.preset, args.n, args.repeats, args.vocab, args.max_length, args.doc_stride = "tiny", 8, 1, 500, 128, 32
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")

    import transformers

    from berts.data.qa import QAExample
    from berts.serve.export import real_texts
    from berts.serve.qa import QuestionAnswerer

    texts = [t for t in real_texts(4 * args.n) if 200 <= len(t) <= 1200][:args.n]
    rng = random.Random(0)
    questions = []
    for t in texts:
        words = t.split()
        k = rng.randrange(max(1, len(words) - 4))
        questions.append("What " + " ".join(words[k:k + 4]) + "?")
    with tempfile.TemporaryDirectory(prefix="berts-qa-bench-") as tmp:
        directory = build(Path(tmp), args.preset, args.vocab, texts)
        settings = dict(max_length=args.max_length, doc_stride=args.doc_stride, max_answer_length=30, n_best=20,
                        version_2=False, null_threshold=0.0)
        ours = QuestionAnswerer.from_pretrained(directory, device="cpu", **settings)
        examples = [QAExample(str(i), q, c) for i, (q, c) in enumerate(zip(questions, texts))]
        hf_model = transformers.AutoModelForQuestionAnswering.from_pretrained(directory).eval()
        hf_tok = transformers.AutoTokenizer.from_pretrained(directory)
        kw = dict(max_seq_len=args.max_length, doc_stride=args.doc_stride, max_answer_len=30,
                  handle_impossible_answer=False)
        inputs = [{"question": q, "context": c} for q, c in zip(questions, texts)]
        try:
            pipe = transformers.pipeline("question-answering", model=hf_model, tokenizer=hf_tok, device=-1)
            reference = "pipeline"
        except KeyError:  # transformers 5 removed the question-answering pipeline: its v4 steps, by hand
            pipe = V4Pipeline(hf_model, hf_tok)
            reference = "v4 pipeline steps (transformers 5 has no question-answering pipeline)"

        def run_ours():
            return [r["text"] for r in ours.answer_examples(examples, 32)]

        def run_pipe(batch_size):
            def go():
                out = pipe(inputs, batch_size=batch_size, **kw)
                out = out if isinstance(out, list) else [out]
                return [r["answer"] for r in out]
            return go

        engines = {"berts": run_ours, "pipeline": run_pipe(1), "pipeline_b32": run_pipe(32)}
        answers = {name: fn() for name, fn in engines.items()}  # untimed warm-up, and the answers
        times = {name: [] for name in engines}
        for _ in range(args.repeats):  # alternated rounds
            for name, fn in engines.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(v) for name, v in times.items()}
    same = sum(a == b for a, b in zip(answers["berts"], answers["pipeline"])) / len(examples)
    result = {"benchmark": "qa_predict", "preset": args.preset, "questions": len(examples), "threads": args.threads,
              "max_length": args.max_length, "repeats": args.repeats,
              "seconds": med, "questions_per_s": {k: len(examples) / v for k, v in med.items()},
              "speedup_vs_pipeline": med["pipeline"] / med["berts"],
              "speedup_vs_pipeline_b32": med["pipeline_b32"] / med["berts"], "same_answers": same,
              "reference": reference, "torch": torch.__version__, "transformers": transformers.__version__}
    print(f"| engine | questions/s | berts speed-up |\n|---|---|---|")
    for name in engines:
        print(f"| {name} | {len(examples) / med[name]:.1f} | {med[name] / med['berts']:.2f}x |")
    print(f"reference: {reference}")
    print(f"same answers as the pipeline: {same:.3f} ({len(examples)} questions, {args.preset}, "
          f"{args.threads} threads)")
    print(json.dumps(result))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
