"""The hostile pass, as a script anyone can re-run: a new user's mistakes thrown at every command.

    PYTHONPATH=src python experiments/2026-12-06-hostile/run.py [--out DIR] [--only CLASS] [--timeout S]

It builds tiny models of every kind (MLM, classifier, pair classifier, regression, early exit,
left-to-right LM, tagger, QA, multiple choice, multi-label, sentence encoder, a search index) and
small inputs, then runs each case in-process through ``berts.cli.main`` and judges it:

* ``traceback``: an exception escaped the command (a raw traceback for the user): always a failure;
* ``hang``: the case ran past --timeout: a failure;
* ``clobbered``: a fixture file (an input, a model's file) changed, or a device node was replaced:
  a failure;
* ``accepted``: exit 0 where the case says the request means nothing (must refuse): a failure;
* ``multi-line``: a refusal whose error is more than one line: a failure;
* ``ok``: a refusal in one line (exit != 0), or exit 0 where the case allows it.

The classes follow issue 30: outputs (an output that is an input, a model file, a link to one, a
user's file, a directory, a device), kinds (every model-consuming command on every other kind of
directory, and on broken ones), values (every numeric flag of every command, found by walking the
parser, given nan / inf / -1 / 0 / 2.5 / 1e999 / abc), inputs (missing, empty, a directory,
binary, latin-1, a malformed row), and dropped requests (flags a command cannot honour).
Writes cases.jsonl (one line a case) and prints the counts by class and every failure."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import stat
import string
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from berts.cli import build_parser, main  # noqa: E402

WORDS = ("the dog bird sat ran flew over under near a big small red blue green house tree river hill cat "
         "is on by and").split()
NAMES = "ann bob cid dan eve fay gus".split()


class Timeout(Exception):
    pass


# ------------------------------------------------------------------------------------------ fixtures
def tokenizer():
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *NAMES, "who", "?", ".", ",",
              *string.ascii_lowercase, *["##" + c for c in string.ascii_lowercase]]
    return Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})


def quiet_main(argv, timeout=120):
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([str(a) for a in argv])
    except SystemExit as e:
        rc = e.code
    assert rc == 0, (argv, err.getvalue()[-2000:])


def build_fixtures(root: Path) -> dict:
    """Every kind of model directory and input file the cases use; returns name -> path."""
    import random

    from berts.model.config import BertConfig
    from berts.model.encoder import BertModel
    from berts.model.heads import BertForMaskedLM, BertForSequenceClassification, BertForUnifiedLM

    tok = tokenizer()
    cfg = dict(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    f = {}
    f["mlm"] = root / "mlm"
    BertForMaskedLM(BertConfig(**cfg)).save_pretrained(f["mlm"], tok)
    f["bert"] = root / "bert"
    BertModel(BertConfig(**cfg)).save_pretrained(f["bert"], tokenizer=tok)
    lm = BertForUnifiedLM(BertConfig(**cfg))
    lm.config.extra["berts_lm_mode"] = "left-to-right"
    f["clm"] = root / "clm"
    lm.save_pretrained(f["clm"], tok)
    from berts.embed.st_format import write_st_dir

    f["st"] = root / "st"
    write_st_dir(f["st"], BertModel(BertConfig(**cfg)), tok, "mean", True, 64)

    rng = random.Random(0)

    def sentence():
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))

    # tables
    f["train.tsv"] = root / "train.tsv"
    f["train.tsv"].write_text("text\tlabel\n" + "".join(f"{sentence()}\t{'pos' if i % 2 else 'neg'}\n" for i in range(40)))
    f["dev.tsv"] = root / "dev.tsv"
    f["dev.tsv"].write_text("text\tlabel\n" + "".join(f"{sentence()}\t{'pos' if i % 2 else 'neg'}\n" for i in range(16)))
    f["pairs.tsv"] = root / "pairs.tsv"
    f["pairs.tsv"].write_text("a\tb\tlabel\n" + "".join(f"{sentence()}\t{sentence()}\t{i % 2}\n" for i in range(24)))
    f["reg.tsv"] = root / "reg.tsv"
    f["reg.tsv"].write_text("text\tlabel\n" + "".join(f"{sentence()}\t{rng.random():.3f}\n" for i in range(24)))
    f["corpus.txt"] = root / "corpus.txt"
    f["corpus.txt"].write_text("".join(f"{sentence()} .\n" + ("\n" if i % 5 == 4 else "") for i in range(60)))
    f["prompts.txt"] = root / "prompts.txt"
    f["prompts.txt"].write_text("the dog\na big red\n")
    # tagging, QA, multiple choice, multi-label
    lines = []
    for _ in range(30):
        for w in sentence().split():
            lines.append(f"{w} {'B-PER' if w in NAMES else 'O'}")
        n = rng.choice(NAMES)
        lines += [f"{n} B-PER", ""]
    f["ner.conll"] = root / "ner.conll"
    f["ner.conll"].write_text("\n".join(lines) + "\n")
    qa = []
    for i in range(24):
        ws = sentence().split()
        name = rng.choice(NAMES)
        ws.insert(rng.randrange(len(ws) + 1), name)
        ctx = " ".join(ws)
        qa.append({"id": f"q{i}", "question": "who ?", "context": ctx,
                   "answers": [{"text": name, "answer_start": (" " + ctx + " ").index(f" {name} ")}]})
    f["qa.jsonl"] = root / "qa.jsonl"
    f["qa.jsonl"].write_text("".join(json.dumps(r) + "\n" for r in qa))
    mc = []
    for i in range(24):
        ws = sentence().split()
        k = rng.randint(2, 4)
        label = rng.randrange(k)
        mc.append({"context": " ".join(ws), "choices": [ws[0] if j == label else "tree" for j in range(k)], "label": label})
    f["mc.jsonl"] = root / "mc.jsonl"
    f["mc.jsonl"].write_text("".join(json.dumps(r) + "\n" for r in mc))
    f["ml.tsv"] = root / "ml.tsv"
    f["ml.tsv"].write_text("text\tlabel\n" + "".join(f"{sentence()}\t{'a|b' if i % 3 == 0 else ('a' if i % 3 == 1 else 'b')}\n"
                                                      for i in range(30)))
    # fine-tuned directories (2 steps: their kind, not their accuracy, matters here)
    common = ["--max-steps", "2", "--batch-size", "8", "--lr", "1e-3", "--eval-every", "2", "--keep-last", "0",
              "--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none"]
    runs = {
        "clf": ["--task", "classification", "--train", f["train.tsv"], "--dev", f["dev.tsv"]],
        "pair": ["--task", "classification", "--train", f["pairs.tsv"], "--dev", f["pairs.tsv"],
                 "--text-column", "a", "--pair-column", "b"],
        "reg": ["--task", "regression", "--train", f["reg.tsv"], "--dev", f["reg.tsv"]],
        "exits": ["--task", "classification", "--train", f["train.tsv"], "--dev", f["dev.tsv"], "--early-exit"],
        "tagger": ["--task", "token-classification", "--train", f["ner.conll"], "--dev", f["ner.conll"]],
        "crf": ["--task", "token-classification", "--train", f["ner.conll"], "--dev", f["ner.conll"], "--crf"],
        "qa": ["--task", "qa", "--train", f["qa.jsonl"], "--dev", f["qa.jsonl"], "--max-length", "48", "--doc-stride", "16"],
        "mc": ["--task", "multiple-choice", "--train", f["mc.jsonl"], "--dev", f["mc.jsonl"]],
        "ml": ["--task", "multi-label", "--train", f["ml.tsv"], "--dev", f["ml.tsv"]],
    }
    for name, args in runs.items():
        model = f["clf"] if name == "exits" else f["bert"]  # exits are trained on a fine-tuned classifier
        quiet_main(["finetune", "--model", model, "--out", root / f"run-{name}", *args, *common])
        f[name] = root / f"run-{name}" / "final"
    f["shards"] = root / "shards"
    quiet_main(["prepare", f["corpus.txt"], "--tokenizer", f["mlm"], "--out", f["shards"], "--max-seq-length", "32"])
    f["index"] = root / "index"
    quiet_main(["index", f["corpus.txt"], "--model", f["st"], "--out", f["index"], "--quiet"])
    f["tokdir"] = f["mlm"]
    # broken directories and files
    f["empty_dir"] = root / "empty_dir"
    f["empty_dir"].mkdir()
    f["clf_copy"] = root / "clf_copy"
    shutil.copytree(f["clf"], f["clf_copy"])
    f["bad_config"] = root / "bad_config"
    shutil.copytree(f["clf"], f["bad_config"])
    (f["bad_config"] / "config.json").write_text("{not json")
    f["truncated"] = root / "truncated"
    shutil.copytree(f["clf"], f["truncated"])
    w = f["truncated"] / "model.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    f["long.tsv"] = root / "long.tsv"
    f["long.tsv"].write_text("text\tlabel\n" + " ".join(["dog"] * 200_000) + "\tpos\n")
    f["empty.txt"] = root / "empty.txt"
    f["empty.txt"].write_text("")
    f["binary.bin"] = root / "binary.bin"
    f["binary.bin"].write_bytes(bytes(range(256)) * 8)
    f["latin1.tsv"] = root / "latin1.tsv"
    f["latin1.tsv"].write_bytes("text\tlabel\ncaf\xe9 na\xefve\tpos\n".encode("latin-1"))
    f["badrow.tsv"] = root / "badrow.tsv"
    f["badrow.tsv"].write_text("text\tlabel\nthe dog\tpos\nno label here\nthe cat\tneg\n")
    f["badjson.jsonl"] = root / "badjson.jsonl"
    f["badjson.jsonl"].write_text('{"question": "who ?", "context": "ann sat"}\n{oops\n')
    f["user_file.txt"] = root / "user_file.txt"
    f["user_file.txt"].write_text("a file the user wrote\n")
    f["a_dir"] = root / "a_dir"
    f["a_dir"].mkdir()
    (f["a_dir"] / "keep.txt").write_text("keep me\n")
    (root / "links").mkdir()
    for name in ("train.tsv", "ner.conll", "qa.jsonl", "mc.jsonl", "ml.tsv", "corpus.txt"):
        f["link:" + name] = root / "links" / f"link-{name}"
        f["link:" + name].symlink_to(f[name])
        f["hard:" + name] = root / "links" / f"hard-{name}"
        os.link(f[name], f["hard:" + name])
    for name in ("clf", "tagger", "qa", "mc", "ml", "st", "mlm"):
        f["link:weights:" + name] = root / "links" / f"weights-{name}.safetensors"
        f["link:weights:" + name].symlink_to(f[name] / "model.safetensors")
    return f


def snapshot(root: Path) -> dict:
    """sha1 of every regular file under root (the fixtures), and the kind of the device nodes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p)] = hashlib.sha1(p.read_bytes()).hexdigest()
    for dev in ("/dev/null", "/dev/full"):
        if os.path.exists(dev):
            out[dev] = stat.S_ISCHR(os.stat(dev).st_mode)
    return out


# ------------------------------------------------------------------------------------------ cases
def cases(f: dict, scratch: Path):
    """(class, name, argv, allowed) — allowed: "refuse" (must exit non-zero), "any" (exit 0 or a
    one-line refusal are both fine)."""
    S = scratch
    out = []

    def add(cls, name, argv, allowed="refuse"):
        out.append((cls, name, [str(a) for a in argv], allowed))

    # -------------------------------------------------------------------- class 1: outputs
    writers = {  # name: (argv for an output, its input file, its model directory)
        "predict": (lambda o: ["predict", f["clf"], f["train.tsv"], "--out", o, "--quiet"], "train.tsv", "clf"),
        "predict-tagger": (lambda o: ["predict", f["tagger"], f["ner.conll"], "--out", o, "--quiet"], "ner.conll", "tagger"),
        "predict-qa": (lambda o: ["predict", f["qa"], f["qa.jsonl"], "--out", o, "--quiet"], "qa.jsonl", "qa"),
        "predict-mc": (lambda o: ["predict", f["mc"], f["mc.jsonl"], "--out", o, "--quiet"], "mc.jsonl", "mc"),
        "predict-ml": (lambda o: ["predict", f["ml"], f["ml.tsv"], "--out", o, "--quiet"], "ml.tsv", "ml"),
        "embed": (lambda o: ["embed", f["st"], f["corpus.txt"], "--out", o, "--quiet"], "corpus.txt", "st"),
        "augment": (lambda o: ["augment", f["train.tsv"], "--model", f["mlm"], "--out", o, "--n", "1"], "train.tsv", "mlm"),
        "export": (lambda o: ["export", f["clf"], "--onnx", o, "--eval-file", f["train.tsv"]], "train.tsv", "clf"),
        "compare": (lambda o: ["compare", f["clf"], "--eval-file", f["train.tsv"], "--out", o, "--repeats", "1",
                               "--latency-examples", "2"], "train.tsv", "clf"),
        "evaluate-png": (lambda o: ["evaluate", f["clf"], f["train.tsv"], "--report-png", o, "--quiet"], "train.tsv", "clf"),
        "tokenizer-train": (lambda o: ["tokenizer", "train", "--corpus", f["corpus.txt"], "--out", o, "--vocab-size", "60"],
                            "corpus.txt", None),
    }
    for wname, (make, inp, model) in writers.items():
        targets = {
            "the input": f[inp],
            "a link to the input": f["link:" + inp],
            "a hard link to the input": f["hard:" + inp],
            "the input through ..": f["a_dir"] / ".." / inp,
            "a user's file": f["user_file.txt"],
            "a directory": f["a_dir"],
        }
        if model:
            targets["the model's weights"] = f[model] / "model.safetensors"
            targets["the model's config"] = f[model] / "config.json"
            targets["a link to the model's weights"] = f["link:weights:" + model]
        for tname, target in targets.items():
            # compare and tokenizer train write their files into a folder: an existing one is theirs to use
            ok_dir = tname == "a directory" and wname in ("compare", "tokenizer-train")
            add("outputs", f"{wname} --out {tname}", make(target), "any" if ok_dir else "refuse")
        add("outputs", f"{wname} --out a missing folder", make(S / "no" / "such" / "folder" / "x.out"), "any")
        if os.geteuid() == 0 and os.path.exists("/dev/full"):
            add("outputs", f"{wname} --out /dev/full", make("/dev/full"))
        add("outputs", f"{wname} --out /dev/null", make("/dev/null"), "any")
    targets = {"the input": f["train.tsv"], "a link to the input": f["link:train.tsv"],
               "the model's weights": f["clf"] / "model.safetensors"}
    for cmd in ("finetune", "pretrain", "distill", "prepare", "index"):
        for tname in ("the input", "a link to the input", "the model's weights"):
            target = targets[tname]
            argv = {"finetune": ["finetune", "--model", f["bert"], "--train", f["train.tsv"], "--dev", f["dev.tsv"],
                                 "--out", target, "--max-steps", "1"],
                    "pretrain": ["pretrain", "--data", f["shards"], "--out", target, "--max-steps", "1", "--preset", "tiny"],
                    "distill": ["distill", "--teacher", f["clf"], "--train", f["train.tsv"], "--dev", f["dev.tsv"],
                                "--student-layers", "0", "--out", target, "--max-steps", "1"],
                    "prepare": ["prepare", f["corpus.txt"], "--tokenizer", f["mlm"], "--out", target],
                    "index": ["index", f["corpus.txt"], "--model", f["st"], "--out", target, "--quiet"]}[cmd]
            add("outputs", f"{cmd} --out {tname}", argv)
        # the output is the model directory itself
    add("outputs", "finetune --out the model dir", ["finetune", "--model", f["bert"], "--train", f["train.tsv"],
                                                    "--dev", f["dev.tsv"], "--out", f["bert"], "--max-steps", "1"])
    add("outputs", "index --out the model dir", ["index", f["corpus.txt"], "--model", f["st"], "--out", f["st"]])
    add("outputs", "export --onnx inside the model dir", ["export", f["clf_copy"], "--onnx", f["clf_copy"] / "model.onnx"],
        "any")  # a new file beside the weights destroys nothing (a copy: embed would then find a task graph)

    # -------------------------------------------------------------------- class 2: kinds
    kinds = ["mlm", "bert", "clm", "st", "clf", "pair", "reg", "exits", "tagger", "crf", "qa", "mc", "ml",
             "empty_dir", "bad_config", "truncated", "corpus.txt"]
    consumers = {
        "generate": (lambda m: ["generate", m, "--prompt", "the dog", "--max-new-tokens", "3"], {"clm"}),
        "augment": (lambda m: ["augment", f["dev.tsv"], "--model", m, "--out", S / "aug.tsv", "--n", "1"],
                    # no MLM head: the embedding-neighbour candidates (TinyBERT's GloVe step), said in a note
                    {"mlm", "bert", "clm", "st", "clf", "pair", "reg", "exits", "tagger", "crf", "qa", "mc", "ml"}),
        "distill": (lambda m: ["distill", "--teacher", m, "--train", f["train.tsv"], "--dev", f["dev.tsv"],
                               "--student-layers", "0", "--out", S / "student", "--max-steps", "1"], {"clf", "exits"}),
        # a tagger reads a table's lines as raw text, a pair model TEXT<tab>PAIR lines (the documented rule)
        "predict-table": (lambda m: ["predict", m, f["dev.tsv"], "--out", S / "p.jsonl", "--quiet"],
                          {"clf", "exits", "pair", "reg", "tagger", "crf", "ml"}),
        "evaluate-table": (lambda m: ["evaluate", m, f["dev.tsv"], "--quiet"], {"clf", "exits"}),
        "predict-qa": (lambda m: ["predict", m, "--question", "who ?", "--context", "ann sat", "--out", S / "q.jsonl"], {"qa"}),
        "predict-text": (lambda m: ["predict", m, "--text", "ann sat by the river", "--out", S / "t.jsonl"], {"tagger", "crf"}),
        "embed": (lambda m: ["embed", m, f["corpus.txt"], "--out", S / "e.npy", "--quiet"],
                  {"st", "bert", "mlm", "clf", "pair", "reg", "exits", "clm", "tagger", "crf", "qa", "mc", "ml"}),
        "search-rerank": (lambda m: ["search", f["index"], "the dog", "--rerank", m], {"pair"}),
        "export": (lambda m: ["export", m, "--onnx", S / "m.onnx"], {"clf", "pair", "reg", "tagger", "crf", "qa",
                                                                     "mc", "ml", "bert", "mlm", "st", "clm", "exits"}),
        "compare": (lambda m: ["compare", m, "--eval-file", f["dev.tsv"], "--repeats", "1", "--latency-examples", "2"],
                    {"clf", "exits"}),
        "finetune-from": (lambda m: ["finetune", "--model", m, "--train", f["train.tsv"], "--dev", f["dev.tsv"],
                                     "--out", S / "ft", "--max-steps", "1", "--set", "log.progress=none"],
                          # a regression or multiple-choice head (1 output) does not fit 2 labels: one line naming
                          # --ignore-mismatched-sizes
                          {"bert", "mlm", "st", "clf", "pair", "exits", "clm", "tagger", "crf", "qa", "ml"}),
    }
    for cname, (make, fine) in consumers.items():
        for k in kinds:
            add("kinds", f"{cname} on {k}", make(f[k]), "pass" if k in fine else "refuse")
    add("kinds", "predict with pairs on a one-sentence model (API)", ["predict", f["clf"], f["pairs.tsv"],
                                                                      "--text-column", "a", "--pair-column", "b",
                                                                      "--out", S / "pp.jsonl"])
    add("kinds", "search with another model", ["search", f["index"], "the dog", "--model", f["bert"]])

    # -------------------------------------------------------------------- class 3: values
    base = {
        "prepare": ["prepare", f["corpus.txt"], "--tokenizer", f["mlm"], "--out", S / "shards"],
        "pretrain": ["pretrain", "--data", f["shards"], "--out", S / "pt", "--max-steps", "1", "--preset", "tiny",
                     "--batch-size", "4",
                     "--set", "log.progress=none"],
        "finetune": ["finetune", "--model", f["bert"], "--train", f["train.tsv"], "--dev", f["dev.tsv"], "--out", S / "ft",
                     "--max-steps", "1", "--set", "log.progress=none"],
        "evaluate": ["evaluate", f["clf"], f["dev.tsv"], "--quiet"],
        "predict": ["predict", f["clf"], f["dev.tsv"], "--out", S / "p.jsonl", "--quiet"],
        "generate": ["generate", f["clm"], "--prompt", "the dog", "--max-new-tokens", "3"],
        "export": ["export", f["clf"], "--onnx", S / "m.onnx"],
        "distill": ["distill", "--teacher", f["clf"], "--train", f["train.tsv"], "--dev", f["dev.tsv"],
                    "--student-layers", "0", "--out", S / "student", "--max-steps", "1", "--set", "log.progress=none"],
        "compare": ["compare", f["clf"], "--eval-file", f["dev.tsv"], "--repeats", "1", "--latency-examples", "2"],
        "baseline": ["baseline", "--train", f["train.tsv"], "--dev", f["dev.tsv"]],
        "augment": ["augment", f["dev.tsv"], "--model", f["mlm"], "--out", S / "aug.tsv", "--n", "1"],
        "embed": ["embed", f["st"], f["corpus.txt"], "--out", S / "e.npy", "--quiet"],
        "index": ["index", f["corpus.txt"], "--model", f["st"], "--out", S / "idx", "--quiet"],
        "search": ["search", f["index"], "the dog"],
    }
    qa_base = ["finetune", "--task", "qa", "--model", f["bert"], "--train", f["qa.jsonl"], "--dev", f["qa.jsonl"],
               "--out", S / "ftqa", "--max-steps", "1", "--max-length", "48", "--doc-stride", "16", "--batch-size", "4",
               "--set", "log.progress=none"]
    emb_base = ["finetune", "--task", "sentence-embedding", "--loss", "simcse", "--model", f["st"], "--train",
                f["train.tsv"], "--out", S / "ftemb", "--max-steps", "1", "--batch-size", "4",
                "--set", "log.progress=none"]
    # controls: every base command line runs as it is (else its cases test nothing but the base)
    for cname, argv0 in [*base.items(), ("finetune-qa", qa_base), ("finetune-embedding", emb_base)]:
        add("controls", f"{cname} as it is", argv0, "pass")
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    numeric_names = {"--doc-stride", "--max-answer-length", "--n-best", "--null-threshold", "--max-question-tokens",
                     "--temperature", "--budget", "--eval-every", "--lr", "--epochs", "--student-layers"}
    bad_values = ["nan", "inf", "-1", "0", "2.5", "1e999", "abc", ""]
    for cname, sp in sub.choices.items():
        if cname not in base and cname != "finetune":
            continue
        for a in sp._actions:
            if not a.option_strings or a.nargs == 0 or isinstance(a, (argparse._HelpAction,)):
                continue
            tname = getattr(a.type, "__name__", "")
            flag = a.option_strings[-1]
            if not (tname in ("count", "natural", "finite", "positive", "nonnegative", "probability",
                              "open_probability", "int", "float") or any(o in numeric_names for o in a.option_strings)):
                continue
            if flag in ("--seed",) or flag.startswith("--max_steps") and cname in ("distill",):
                pass
            argv0 = (qa_base if flag in ("--doc-stride", "--max-answer-length", "--n-best", "--null-threshold",
                                         "--max-question-tokens") else
                     emb_base if flag == "--temperature" and cname == "finetune" else base[cname])
            for v in bad_values:
                # a value that is legal for the flag (a seed of -1, a count of 2.5 is not) may run: "any";
                # nan / inf / 1e999 / abc / "" mean nothing for any numeric flag
                allowed = "refuse" if v in ("nan", "inf", "1e999", "abc", "") else "any"
                add("values", f"{cname} {flag} {v!r}", [*argv0, flag, v], allowed)
    add("values", "generate an empty prompt", ["generate", f["clm"], "--prompt", ""])
    add("values", "generate a prompt past the positions", ["generate", f["clm"], "--prompt", "the dog " * 80,
                                                           "--max-new-tokens", "2"], "any")
    add("values", "augment a 200,000-word line", ["augment", f["long.tsv"], "--model", f["mlm"], "--out", S / "aug2.tsv",
                                                  "--n", "2"], "any")
    add("values", "distill all loss weights 0", [*base["distill"], "--set", "distill.alpha_ce=0", "--set",
                                                 "distill.alpha_mlm=0", "--set", "distill.alpha_cos=0"])
    add("values", "generate --device cuda without CUDA", ["generate", f["clm"], "--prompt", "the", "--device", "cuda"],
        "refuse" if not torch.cuda.is_available() else "any")
    add("values", "predict --device cuda without CUDA", [*base["predict"], "--device", "cuda"],
        "refuse" if not torch.cuda.is_available() else "any")

    # -------------------------------------------------------------------- class 4: inputs
    readers = {
        "predict": lambda x: ["predict", f["clf"], x, "--out", S / "pi.jsonl", "--quiet"],
        "evaluate": lambda x: ["evaluate", f["clf"], x, "--quiet"],
        "predict-tagger": lambda x: ["predict", f["tagger"], x, "--out", S / "pt.jsonl", "--quiet"],
        "evaluate-tagger": lambda x: ["evaluate", f["tagger"], x, "--quiet"],
        "predict-qa": lambda x: ["predict", f["qa"], x, "--out", S / "pq.jsonl", "--quiet"],
        "evaluate-mc": lambda x: ["evaluate", f["mc"], x, "--quiet"],
        "evaluate-ml": lambda x: ["evaluate", f["ml"], x, "--quiet"],
        "finetune-train": lambda x: ["finetune", "--model", f["bert"], "--train", x, "--dev", f["dev.tsv"],
                                     "--out", S / "fi", "--max-steps", "1", "--set", "log.progress=none"],
        "baseline": lambda x: ["baseline", "--train", x, "--dev", f["dev.tsv"]],
        "embed": lambda x: ["embed", f["st"], x, "--out", S / "ei.npy", "--quiet"],
        "augment": lambda x: ["augment", x, "--model", f["mlm"], "--out", S / "ai.tsv", "--n", "1"],
        "prepare": lambda x: ["prepare", x, "--tokenizer", f["mlm"], "--out", S / "si"],
        "tokenizer-train": lambda x: ["tokenizer", "train", x, "--out", S / "ti", "--vocab-size", "60"],
        "generate-file": lambda x: ["generate", f["clm"], x, "--max-new-tokens", "2"],
        "search-queries": lambda x: ["search", f["index"], "--queries", x],
    }
    bad_inputs = {"missing": S / "no_such_file.tsv", "empty": f["empty.txt"], "a directory": f["a_dir"],
                  "binary": f["binary.bin"], "latin-1": f["latin1.tsv"], "a bad row": f["badrow.tsv"],
                  "bad JSON": f["badjson.jsonl"]}
    for rname, make in readers.items():
        for iname, x in bad_inputs.items():
            # an empty or odd file may be fine for some readers (embed of a latin-1 line...): "any";
            # a missing file and a directory must be refused
            allowed = "refuse" if iname in ("missing", "a directory", "binary") else "any"
            add("inputs", f"{rname} on {iname}", make(x), allowed)
    add("inputs", "search a corrupt index", ["search", f["bad_config"], "the dog"])
    # -------------------------------------------------------------------- class 5: dropped requests
    add("dropped", "finetune --early-exit on regression", ["finetune", "--task", "regression", "--model", f["bert"],
                                                          "--train", f["reg.tsv"], "--dev", f["reg.tsv"], "--out", S / "ee",
                                                          "--early-exit", "--max-steps", "1"])
    add("dropped", "predict --int8 --device cuda", [*base["predict"], "--int8", "--device", "cuda"])
    add("dropped", "export --max-length 0", ["export", f["clf"], "--onnx", S / "m0.onnx", "--max-length", "0"])
    add("dropped", "predict --speed on a model without exits", [*base["predict"], "--speed", "0.5"])
    add("dropped", "predict-qa --speed", ["predict", f["qa"], "--question", "who", "--context", "ann", "--speed", "0.5"])
    add("dropped", "predict --text on a classifier", ["predict", f["clf"], "--text", "the dog"])
    add("dropped", "predict --question on a classifier", ["predict", f["clf"], "--question", "who", "--context", "ann"])
    add("dropped", "search --nprobe on a flat index", ["search", f["index"], "the dog", "--nprobe", "4"], "any")
    add("dropped", "evaluate --speeds on a model without exits", [*base["evaluate"], "--speeds", "0.1,0.5"])
    add("dropped", "finetune --crf on classification", [*base["finetune"], "--crf"])
    add("dropped", "finetune --doc-stride on classification", [*base["finetune"], "--doc-stride", "16"])
    add("dropped", "finetune --label-sep on classification", [*base["finetune"], "--label-sep", ","])
    add("dropped", "embed --int8 --device cuda", [*base["embed"], "--int8", "--device", "cuda"])
    return out


# ------------------------------------------------------------------------------------------ running
def run_case(argv, timeout):
    out, err = io.StringIO(), io.StringIO()

    def alarm(*_):
        raise Timeout()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    t = time.perf_counter()
    escaped = None
    stdin = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except Timeout:
        rc, escaped = None, "hang"
    except BaseException:  # noqa: BLE001  anything else escaping main is a traceback for the user
        rc, escaped = None, traceback.format_exc(limit=-3)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        sys.stdin = stdin
    return rc, escaped, out.getvalue(), err.getvalue(), time.perf_counter() - t


def judge(rc, escaped, err, allowed, changed):
    if escaped == "hang":
        return "hang"
    if escaped is not None or "Traceback (most recent call last)" in err:
        return "traceback"
    if changed:
        return "clobbered"
    if allowed == "pass":
        return "ok" if rc == 0 else "control-failed"
    if rc == 0:
        return "ok" if allowed == "any" else "accepted"
    lines = [x for x in err.splitlines() if x.strip()]
    errors = [x for x in lines if "error" in x.lower() or x.startswith("berts")]
    last = lines[-1] if lines else ""
    if not lines or not ("error" in last.lower() or last.startswith("berts")):
        return "multi-line"  # no one-line reason at the end
    if len(errors) > 1 and not last.startswith("berts"):
        return "multi-line"
    return "ok"


def main_(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="write cases.jsonl here (default: a temporary folder)")
    ap.add_argument("--only", default=None, help="one class: outputs, kinds, values, inputs, dropped")
    ap.add_argument("--grep", default=None, help="only cases whose name contains this")
    ap.add_argument("--timeout", type=int, default=90)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("BERTS_PROGRESS", "0")
    work = Path(tempfile.mkdtemp(prefix="berts-hostile-"))
    fixtures_root = work / "fixtures"
    fixtures_root.mkdir()
    t0 = time.perf_counter()
    f = build_fixtures(fixtures_root)
    print(f"fixtures: {len(f)} in {time.perf_counter() - t0:.0f} s ({fixtures_root})", flush=True)
    before = snapshot(fixtures_root)
    scratch = work / "scratch"
    todo = [c for c in cases(f, scratch) if (a.only is None or c[0] == a.only) and (a.grep is None or a.grep in c[1])]
    print(f"{len(todo)} cases", flush=True)
    results = []
    out_dir = Path(a.out) if a.out else work
    out_dir.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    with open(out_dir / "cases.jsonl", "w") as log:
        for i, (cls, name, argv, allowed) in enumerate(todo, 1):
            if scratch.exists():
                shutil.rmtree(scratch)
            scratch.mkdir()
            os.chdir(scratch)
            try:
                rc, escaped, so, se, secs = run_case(argv, a.timeout)
            finally:
                os.chdir(cwd)
            after = snapshot(fixtures_root)
            # what existed and changed or vanished (a new file beside the fixtures destroys nothing)
            changed = sorted(k for k in before if before[k] != after.get(k))
            verdict = judge(rc, escaped, se, allowed, changed)
            if changed:  # restore: rebuild what changed from a fresh copy is costly; rebuild all
                shutil.rmtree(fixtures_root)
                fixtures_root.mkdir()
                f2 = build_fixtures(fixtures_root)
                assert f2.keys() == f.keys()
                before = snapshot(fixtures_root)
            lines = [x for x in se.splitlines() if x.strip()]
            row = {"class": cls, "case": name, "verdict": verdict, "rc": rc, "allowed": allowed,
                   "seconds": round(secs, 2), "last_line": (lines[-1] if lines else "")[:300],
                   "argv": " ".join(argv).replace(str(work), "$W")}
            if escaped:
                row["escaped"] = escaped[-1500:]
            if changed:
                row["changed"] = [c.replace(str(work), "$W") for c in changed]
            results.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
            mark = "" if verdict == "ok" else f"  <-- {verdict.upper()}"
            print(f"[{i}/{len(todo)}] {cls}: {name}: rc {rc}{mark}", flush=True)
    print()
    classes = sorted({r["class"] for r in results})
    for c in classes:
        rs = [r for r in results if r["class"] == c]
        bad = [r for r in rs if r["verdict"] != "ok"]
        print(f"{c:8s} {len(rs):4d} cases, {len(rs) - len(bad):4d} ok, {len(bad):3d} not")
    bad = [r for r in results if r["verdict"] != "ok"]
    print(f"all      {len(results):4d} cases, {len(results) - len(bad):4d} ok, {len(bad):3d} not "
          f"({time.perf_counter() - t0:.0f} s; cases.jsonl in {out_dir})")
    for r in bad:
        print(f"- {r['verdict']}: [{r['class']}] {r['case']}: {r.get('escaped', r['last_line'])[-400:]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_())
