"""Extractive QA (berts.tasks.qa, ``berts finetune --task qa``): the head against transformers'
BertForQuestionAnswering both ways (logits and loss, 1e-5), the training run through the command
line with its logged EM/F1 recomputed by hand, ``berts predict`` / ``berts evaluate`` and their errors."""
import json
import string
import warnings

import pytest
import torch

import berts
from berts.tasks.qa import BertForQuestionAnswering
from conftest import padded_batch, randomize

ATOL = 1e-5


def test_saved_directory_loads_in_transformers_with_the_same_logits(tiny_config, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = randomize(BertForQuestionAnswering(tiny_config)).eval()
    ours.save_pretrained(tmp_path / "ours")
    cfg = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert cfg["architectures"] == ["BertForQuestionAnswering"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "ours").eval()
    assert type(theirs).__name__ == "BertForQuestionAnswering" and theirs.config.num_labels == 2
    batch = padded_batch()
    # positions: inside, [CLS], and past the end (clamped to S and ignored by both)
    targets = dict(start_positions=torch.tensor([3, 0, 40]), end_positions=torch.tensor([5, 0, 2]))
    with torch.no_grad():
        a, b = ours(**batch, **targets), theirs(**batch, **targets)
    torch.testing.assert_close(a.start_logits, b.start_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.end_logits, b.end_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=ATOL, rtol=0)
    assert a.start_logits.shape == (3, 13) and a.logits is None
    # by hand: mean of the start and end cross-entropies over the rows not ignored
    s, e = a.start_logits, a.end_logits
    start = (torch.nn.functional.cross_entropy(s[:2], torch.tensor([3, 0]), reduction="sum")) / 2
    end = torch.nn.functional.cross_entropy(e, torch.tensor([5, 0, 2]))
    assert float(a.loss) == pytest.approx(float((start + end) / 2), abs=1e-6)


def test_a_transformers_directory_loads_into_berts_equal(tiny_config, tmp_path):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(1)
    theirs = randomize(transformers.BertForQuestionAnswering(hf_config), seed=3).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = berts.load(tmp_path / "hf")
    assert isinstance(ours, BertForQuestionAnswering)
    batch = padded_batch()
    with torch.no_grad():
        a, b = ours.eval()(**batch), theirs(**batch)
    torch.testing.assert_close(a.start_logits, b.start_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.end_logits, b.end_logits, atol=ATOL, rtol=0)
    # the fast paths (unpadded rows, packed attention) give the same numbers
    ours.set_fast_path(unpad=True, pack=True, sparse_output=True)
    with torch.no_grad():
        c = ours(**batch)
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(c.start_logits[mask], b.start_logits[mask], atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- the run, end to end
WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
NAMES = "ann bob cid dan eve fay gus".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def cli(argv):
    from berts.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def base(tmp_path):
    """A tiny berts BertModel directory with its tokenizer."""
    from berts import BertConfig, BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *NAMES, "who", "?", ".",
              *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path / "bert",
                                                                                           tokenizer=tok)
    return tmp_path / "bert"


def qa_rows(n, seed, impossible=0.0):
    """'who ?' on a context of words holding one name (its answer), or none (unanswerable)."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 30))]
        row = {"id": f"q{i}", "question": "who ?", "answers": []}
        if rng.random() >= impossible:
            name = rng.choice(NAMES)
            words.insert(rng.randrange(len(words)), name)
            context = " ".join(words)
            row["answers"] = [{"text": name, "answer_start": context.index(f" {name} ") + 1
                               if f" {name} " in context else context.index(name)}]
        else:
            context = " ".join(words)
        row["context"] = context
        rows.append(row)
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_finetune_evaluate_predict(base, tmp_path, capsys):
    from berts.data.qa import read_qa
    from berts.tasks.qa import answer, score

    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(48, 1))
    dev = write_jsonl(tmp_path / "dev.jsonl", qa_rows(16, 2))
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "qa", "--model", base, "--train", train, "--dev", dev, "--out", out,
                "--max-steps", "6", "--batch-size", "8", "--lr", "3e-3", "--eval-every", "3", "--keep-last", "0",
                "--max-length", "24", "--doc-stride", "8", "--max-answer-length", "4", *COMMON]) == 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [3, 6] and set(evals[-1]) >= {"f1", "exact_match"}
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["architectures"] == ["BertForQuestionAnswering"]
    assert cfg["finetune_data"]["qa"]["doc_stride"] == 8 and cfg["finetune_data"]["qa"]["max_answer_length"] == 4
    assert cfg["finetune_data"]["qa"]["version_2"] is False and cfg["finetune_data"]["qa"]["lang"] == "en"
    # by hand: the final model's answers (the predict path), scored as SQuAD does
    model = berts.load(out / "final").eval()
    from berts.tokenizer.wordpiece import load_tokenizer

    examples = read_qa(dev)
    results = answer(model, load_tokenizer(out / "final"), examples)
    from berts.metrics.qa import squad_scores

    hand = squad_scores({r["id"]: r["text"] for r in results}, {e.id: [a for a, _ in e.answers] for e in examples})
    assert evals[-1]["f1"] == pytest.approx(hand["f1"], abs=1e-6)
    assert evals[-1]["exact_match"] == pytest.approx(hand["exact_match"], abs=1e-6)
    assert score(examples, results)["f1"] == pytest.approx(hand["f1"])
    for r, e in zip(results, examples):  # offsets point into the context
        assert r["text"] == e.context[r["start"]:r["end"]]

    # berts predict: --question/--context, and a JSONL file; the same answers as the Python API
    from berts.serve.qa import QuestionAnswerer

    assert berts.QuestionAnswerer is QuestionAnswerer and berts.BertForQuestionAnswering is BertForQuestionAnswering
    qa = QuestionAnswerer.from_pretrained(out / "final", device="cpu")
    e = examples[0]
    mine = qa(e.question, e.context)
    assert mine["text"] == results[0]["text"] and mine["start"] == results[0]["start"]
    capsys.readouterr()
    assert cli(["predict", out / "final", "--question", e.question, "--context", e.context]) == 0
    (row,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (row["answer"], row["start"], row["end"]) == (mine["text"], mine["start"], mine["end"])
    assert row["score"] == pytest.approx(mine["score"], abs=1e-5)
    assert cli(["predict", out / "final", dev, "--out", tmp_path / "answers.jsonl"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "answers.jsonl").read_text().splitlines()]
    assert [r["answer"] for r in rows] == [r["text"] for r in results]
    assert [r["line"] for r in rows] == list(range(1, 17)) and rows[3]["id"] == "q3"

    # berts evaluate: the logged metrics again
    capsys.readouterr()
    assert cli(["evaluate", out / "final", dev, "--json"]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["f1"] == pytest.approx(hand["f1"], abs=1e-6) and m["examples"] == 16

    # bad input: one line naming file:line, non-zero exit, nothing written
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "who ?", "context": "ann sat", "answers": [{"text": "ann", "answer_start": 0}]}\n'
                   '{"question": "who ?", "context": "bob sat", "answers": [{"text": "bob", "answer_start": 1}]}\n')
    target = tmp_path / "never.jsonl"
    assert cli(["predict", out / "final", bad, "--out", target]) != 0
    assert "bad.jsonl:2: answer 'bob' does not match" in capsys.readouterr().err and not target.exists()
    assert cli(["evaluate", out / "final", bad]) != 0
    assert "bad.jsonl:2:" in capsys.readouterr().err
    assert cli(["predict", out / "final", "--question", "who ?"]) != 0
    assert "--question and --context go together" in capsys.readouterr().err
    assert cli(["predict", out / "final", "--question", "q", "--context", "c", "--speed", "0.3"]) != 0
    assert "early exit" in capsys.readouterr().err


def test_version_2_threshold_chosen_on_dev_and_saved(base, tmp_path, capsys):
    from berts.data.qa import read_qa
    from berts.metrics.qa import squad_v2_scores
    from berts.serve.qa import QuestionAnswerer

    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(40, 3, impossible=0.3))
    dev = write_jsonl(tmp_path / "dev.jsonl", qa_rows(16, 4, impossible=0.3))
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "qa", "--model", base, "--train", train, "--dev", dev, "--out", out,
                "--max-steps", "4", "--batch-size", "8", "--lr", "3e-3", "--keep-last", "0",
                "--max-length", "48", "--doc-stride", "16", *COMMON]) == 0
    (last,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    cfg = json.loads((out / "final" / "config.json").read_text())["finetune_data"]["qa"]
    assert cfg["version_2"] is True  # auto: the data has unanswerable questions
    assert cfg["null_threshold"] == pytest.approx(last["null_threshold"])
    assert last["f1"] == pytest.approx(last["best_f1"], abs=1e-6)  # on dev, the chosen threshold is the best one
    # by hand: the served answers ("" above the saved threshold) scored by evaluate-v2.0.py's rules
    examples = read_qa(dev)
    qa = QuestionAnswerer.from_pretrained(out / "final", device="cpu")
    preds = {e.id: r["text"] for e, r in zip(examples, qa.answer_examples(examples))}
    v2 = squad_v2_scores(preds, {e.id: [a for a, _ in e.answers] for e in examples})
    assert last["f1"] == pytest.approx(v2["f1"], abs=1e-6) and last["HasAns_f1"] == pytest.approx(v2["HasAns_f1"])


def test_threshold_and_chinese_scores_by_hand():
    from berts.data.qa import QAExample
    from berts.tasks.qa import choose_threshold, detect_lang, score

    answers = {"a": ["x"], "b": [], "c": ["y"]}
    spans, diffs = {"a": "x", "b": "z", "c": "w"}, {"a": -2.0, "b": 1.0, "c": 0.5}
    # answering nothing: F1 0 + 1 + 0; answering a (diff -2) too: 1 + 1 + 0 = 2, the best; c and b add 0, -1
    assert choose_threshold(spans, diffs, answers) == -2.0
    assert choose_threshold({"b": "z"}, {"b": 1.0}, {"b": []}) == -1e9  # answer nothing: below every diff
    examples = [QAExample(q, "?", "ctx", [(t, 0) for t in answers[q]]) for q in answers]
    results = [{"id": q, "text": spans[q], "null_score_diff": diffs[q]} for q in spans]
    m = score(examples, results, version_2=True)
    assert (m["f1"], m["exact_match"], m["null_threshold"]) == (pytest.approx(200 / 3), pytest.approx(200 / 3), -2.0)
    assert m["HasAns_f1"] == 50.0 and m["NoAns_f1"] == 100.0
    # CMRC: characters; LCS 2 of predicted 3 and gold 2 -> F1 0.8; EM after removing its punctuation
    zh = [QAExample("1", "谁?", "北京大学在北京。", [("北京大学", 0)]), QAExample("2", "哪?", "在北京。", [("北京", 1)])]
    assert detect_lang(zh) == "zh" and detect_lang(examples) == "en"
    m = score(zh, [{"id": "1", "text": "北京大"}, {"id": "2", "text": "北京。"}], lang="zh")
    p, r = 3 / 3, 3 / 4
    assert m["f1"] == pytest.approx(100 * (2 * p * r / (p + r) + 1.0) / 2) and m["exact_match"] == 50.0


def test_distill_qa_logits(base, tmp_path, capsys):
    """berts distill --method qa-logits: a 1-layer student of a QA teacher; its logged f1 is the one
    `berts evaluate` gives its best/ directory, which serves as a QA model."""
    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(32, 1))
    dev = write_jsonl(tmp_path / "dev.jsonl", qa_rows(12, 2))
    teacher = tmp_path / "teacher"
    common = ["--batch-size", "8", "--lr", "3e-3", "--keep-last", "0", "--max-length", "40", *COMMON]
    assert cli(["finetune", "--task", "qa", "--model", base, "--train", train, "--dev", dev, "--out", teacher,
                "--max-steps", "4", "--doc-stride", "8", *common]) == 0
    out = tmp_path / "student"
    assert cli(["distill", "--method", "qa-logits", "--teacher", teacher / "final", "--student-layers", "0",
                "--train", train, "--dev", dev, "--out", out, "--max-steps", "4", *common]) == 0
    (last,) = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    cfg = json.loads((out / "best" / "config.json").read_text())
    assert cfg["architectures"] == ["BertForQuestionAnswering"] and cfg["finetune_data"]["qa"]["doc_stride"] == 8
    capsys.readouterr()
    assert cli(["evaluate", out / "best", dev, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["f1"] == pytest.approx(last["f1"], abs=1e-6)
    # a classifier method on a QA teacher: one line saying which method to use
    assert cli(["distill", "--method", "logit-mse", "--teacher", teacher / "final", "--student-layers", "0",
                "--train", train, "--out", tmp_path / "x", *common]) != 0
    assert "distil it with --method qa-logits" in capsys.readouterr().err
    # berts compare: teacher and student (+ int8 rows) on the QA file; f1 as berts evaluate gives it
    capsys.readouterr()
    assert cli(["compare", teacher / "final", out / "best", "--eval-file", dev, "--int8", "--repeats", "1",
                "--latency-examples", "4", "--out", tmp_path / "cmp"]) == 0
    rows = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["precision"] for r in rows] == ["fp32", "int8", "fp32", "int8"] and rows[0]["metric"] == "f1"
    assert rows[2]["score"] == pytest.approx(last["f1"], abs=1e-6) and rows[2]["layers"] == 1
    assert 0 <= rows[1]["agreement"] <= 1 and rows[2]["ratios"]["params"] == 1.0  # a 1-layer teacher
