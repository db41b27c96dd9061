"""`berts generate MODEL [--prompt TEXT | FILE | -]`: text from a BERT trained to generate
(pretrain --objective clm / seq2seq / unilm, finetune --task seq2seq). One prompt (or seq2seq
source) a line from FILE or stdin, or --prompt; one generated text a line on stdout (--jsonl:
{"prompt", "text"} objects). Greedy by default; --sample (with --temperature, --top-k,
--top-p, --seed), or --num-beams with --length-penalty. The work is berts.serve.generate's."""
from __future__ import annotations

import json
import sys

from berts.errors import UserError
from berts.util.values import count, finite, natural, open_probability, positive


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="generate text with a model trained as a (seq2seq) language model",
        description="Continue each prompt (left-to-right) or answer each source (seq2seq) with a BERT trained by "
                    "`berts pretrain --set data.objective=clm|seq2seq|unilm` or `berts finetune --task seq2seq`. "
                    "The mode and the readout come from the model's config.json; generation stops at [SEP] or "
                    "after --max-new-tokens. A key/value cache makes each token cost one position.")
    p.add_argument("model", metavar="MODEL_DIR", help="a model directory with its tokenizer files")
    p.add_argument("file", nargs="?", default=None, metavar="FILE",
                   help="prompts, one a line, or - for stdin (default: stdin, unless --prompt)")
    p.add_argument("--prompt", metavar="TEXT", help="one prompt (instead of FILE)")
    p.add_argument("--max-new-tokens", type=count, default=32, metavar="N", help="tokens to generate at most (32)")
    p.add_argument("--sample", action="store_true", help="sample instead of taking the most likely token")
    p.add_argument("--temperature", type=positive, default=1.0, metavar="T", help="sampling temperature (1.0)")
    p.add_argument("--top-k", type=natural, default=0, metavar="K", help="sample among the K most likely (0: all)")
    p.add_argument("--top-p", type=open_probability, default=1.0, metavar="P", help="nucleus sampling mass (1.0: all)")
    p.add_argument("--num-beams", type=count, default=1, metavar="N", help="beam search with N beams (1: off)")
    p.add_argument("--length-penalty", type=finite, default=1.0, metavar="A",
                   help="beam score = log-probability / length ** A (1.0)")
    p.add_argument("--seed", type=natural, default=0, help="sampling seed (0); prompt i of a file uses SEED + i")
    p.add_argument("--mode", choices=("left-to-right", "seq2seq"), help="default: the model's (config.json)")
    p.add_argument("--readout", choices=("next", "mask"),
                   help="next: the last position predicts the next token (clm, seq2seq); mask: a [MASK] "
                        "appended is predicted (unilm's masked objective); default: the model's")
    p.add_argument("--no-cache", action="store_true", help="recompute the whole sequence each step (slower)")
    p.add_argument("--jsonl", action="store_true", help='write {"prompt": ..., "text": ...} objects')
    p.add_argument("--device", default="cpu", metavar="DEV", help="cpu or cuda (default cpu)")
    p.set_defaults(func=run)


def _prompts(args) -> list[str]:
    if args.prompt is not None:
        if args.file is not None:
            raise UserError("give --prompt or FILE, not both")
        return [args.prompt]
    if args.file in (None, "-"):
        if sys.stdin.isatty() and args.file is None:
            raise UserError("no prompt: give --prompt TEXT, a FILE, or - with prompts on stdin")
        return [line.rstrip("\r\n") for line in sys.stdin]
    from berts.util.fileio import read_text

    return read_text(args.file).splitlines()


def run(args) -> int:
    from dataclasses import replace

    from berts.serve.generate import GenerationConfig, TextGenerator

    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=args.sample, temperature=args.temperature,
                           top_k=args.top_k, top_p=args.top_p, num_beams=args.num_beams,
                           length_penalty=args.length_penalty, seed=args.seed,
                           use_cache=not args.no_cache).validate()
    prompts = _prompts(args)
    empty = next((i for i, p in enumerate(prompts) if not p.strip()), None)
    if empty is not None:  # before the model loads; the line of a file, so it can be found
        where = "--prompt" if args.prompt is not None else f"{args.file if args.file not in (None, '-') else '<stdin>'}:{empty + 1}"
        raise UserError(f"{where}: an empty prompt: nothing to generate from")
    gen = TextGenerator.load(args.model, mode=args.mode, readout=args.readout, device=args.device)
    import warnings

    with warnings.catch_warnings():  # a library warning (a prompt cut to the window) as one line
        warnings.showwarning = lambda message, *_a, **_k: print(f"berts: warning: {message}", file=sys.stderr)
        for i, prompt in enumerate(prompts):
            # prompt i samples with seed SEED + i: its text does not depend on the other prompts, and
            # two prompts never share one random stream (the same seed for all made them echo each other)
            text = gen(prompt, config=replace(cfg, seed=None if cfg.seed is None else cfg.seed + i))
            sys.stdout.write(json.dumps({"prompt": prompt, "text": text}, ensure_ascii=False) + "\n" if args.jsonl
                             else text + "\n")
    sys.stdout.flush()
    return 0
