"""--task multi-label: transformers computes the same loss and logits (problem_type in config.json),
thresholds chosen on dev (by hand), the metrics by hand, the readers (separator, JSONL lists,
parquet, a saved dataset) and their one-line errors, and finetune -> evaluate -> predict."""
import json
import random
import string

import numpy as np
import pytest
import torch
import transformers
from conftest import padded_batch, randomize
from train_utils import cli

from berts import BertConfig, BertForSequenceClassification
from berts.errors import UserError
from berts.tasks.multi_label import choose_thresholds, f1s, label_matrix, read_multi_label, score

WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
TOPICS = {"animal": ("dog", "bird"), "colour": ("red", "blue", "green"), "place": ("house", "tree", "river", "hill")}
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def test_transformers_computes_the_same_loss_and_logits(tmp_path, tiny_config):
    names = ["a", "b", "c", "d"]
    cfg = tiny_config.replace(num_labels=4, problem_type="multi_label_classification",
                              id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})
    model = randomize(BertForSequenceClassification(cfg)).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification" and config["id2label"]["2"] == "c"
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert theirs.config.label2id == {"a": 0, "b": 1, "c": 2, "d": 3}
    y = torch.tensor([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 1]]).float()
    with torch.no_grad():
        a, b = model(**padded_batch(), labels=y), theirs(**padded_batch(), labels=y)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=0)
    by_hand = torch.nn.functional.binary_cross_entropy(torch.sigmoid(a.logits), y)
    torch.testing.assert_close(a.loss, by_hand, atol=1e-5, rtol=0)
    # and back: a transformers-written multi-label directory loads into berts with the same loss
    hf = randomize(transformers.BertForSequenceClassification(theirs.config), seed=3).eval()
    hf.save_pretrained(tmp_path / "hf")
    ours = BertForSequenceClassification.from_pretrained(tmp_path / "hf").eval()
    assert ours.classifier.multi_label
    with torch.no_grad():
        a, b = ours(**padded_batch(), labels=y), hf(**padded_batch(), labels=y)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=0)


def test_metrics_and_thresholds_by_hand():
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=np.float32)
    p = np.array([[1, 0], [1, 0], [1, 0], [0, 1]])
    micro, per = f1s(y, p)
    # label 0: tp 2 fp 1 fn 0 -> f1 4/5; label 1: tp 1 fp 0 fn 1 -> 2/3; micro: tp 3 fp 1 fn 1 -> 6/8
    assert micro == pytest.approx(0.75) and per == pytest.approx([0.8, 2 / 3])
    logits = np.log(np.array([[0.9, 0.2], [0.7, 0.3], [0.6, 0.1], [0.2, 0.8]]) /
                    (1 - np.array([[0.9, 0.2], [0.7, 0.3], [0.6, 0.1], [0.2, 0.8]])))
    probs = 1 / (1 + np.exp(-logits))
    # one threshold: 0.25 and 0.30 (tp 4, fp 1: 8/9) beat 0.65 (tp 3, fn 1: 6/7); ties -> the lowest
    t = choose_thresholds(probs, y, per_label=False)
    assert t.tolist() == [0.25, 0.25]
    assert f1s(y, probs >= 0.25)[0] == pytest.approx(8 / 9) and f1s(y, probs >= 0.65)[0] == pytest.approx(6 / 7)
    # per label: label 0 best from 0.65 (0.6 out, 0.7 in); label 1: 0.25 takes 0.3 and 0.8, not 0.2
    assert choose_thresholds(probs, y, per_label=True).tolist() == [0.65, 0.25]
    m = score(logits, y, np.array([0.65, 0.25]), ["x", "z"])
    assert m["micro_f1"] == 1.0 and m["macro_f1"] == 1.0 and m["subset_accuracy"] == 1.0
    m = score(logits, y, np.array([0.5, 0.5]), ["x", "z"])
    assert m["subset_accuracy"] == pytest.approx(2 / 4)  # rows 0 and 3 right; row 1 misses z, row 2 has x
    assert m["report"]["confusion_per_label"][0] == [[1, 1], [0, 2]]  # x: tn 1, fp 1 (row 2), tp 2


class Data:
    text_column, pair_column, label_column, format, header = "text", None, "label", "auto", "auto"


def test_readers_and_errors(tmp_path):
    pytest.importorskip("datasets")
    from datasets import Dataset

    (tmp_path / "t.tsv").write_text("text\tlabel\nthe dog\tanimal|place\na tree\tplace\n")
    ex, _ = read_multi_label(tmp_path / "t.tsv", Data())
    assert [e.label for e in ex] == [("animal", "place"), ("place",)]
    (tmp_path / "t.jsonl").write_text('{"text": "the dog", "label": ["animal"]}\n{"text": "x", "label": []}\n'
                                      '{"text": "y", "label": "animal;place"}\n')
    class Semi(Data):
        pass
    ex, _ = read_multi_label(tmp_path / "t.jsonl", Semi(), ";")
    assert [e.label for e in ex] == [("animal",), (), ("animal", "place")]
    rows = {"text": ["the dog", "a tree"], "label": [["animal"], ["place", "animal"]]}
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "t.parquet"))
    Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    for path in (tmp_path / "t.parquet", tmp_path / "saved"):
        ex, report = read_multi_label(path, Data())
        assert [e.label for e in ex] == [("animal",), ("place", "animal")] and [e.line for e in ex] == [1, 2]
    with pytest.raises(UserError, match=r"t\.jsonl:2: unknown label 'plant' \(known: animal, place\)"):
        (tmp_path / "t.jsonl").write_text('{"text": "a", "label": ["animal"]}\n{"text": "b", "label": ["plant"]}\n')
        label_matrix(read_multi_label(tmp_path / "t.jsonl", Data())[0], ["animal", "place"])
    with pytest.raises(UserError, match=r"t\.parquet:2: field 'label' must be a list"):
        Dataset.from_dict({"text": ["a", "b"], "label": ["animal", None]}).to_parquet(str(tmp_path / "t.parquet"))
        read_multi_label(tmp_path / "t.parquet", Data())


@pytest.fixture
def base(tmp_path):
    from berts import BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32)).save_pretrained(tmp_path / "bert",
                                                                                           tokenizer=tok)
    return tmp_path / "bert"


def table(path, n, seed):
    rng = random.Random(seed)
    lines = ["text\tlabel"]
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
        topics = [t for t, ws in TOPICS.items() if any(w in ws for w in words)] or ["animal"]
        lines.append(" ".join(words) + "\t" + "|".join(topics))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_finetune_evaluate_predict_through_the_command_line(base, tmp_path, capsys):
    from berts.tasks.multi_label import MultiLabelPredictor

    train, dev = table(tmp_path / "train.tsv", 48, 1), table(tmp_path / "dev.tsv", 20, 2)
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "multi-label", "--model", base, "--train", train, "--dev", dev,
                "--out", out, "--max-steps", "4", "--batch-size", "8", "--lr", "1e-3", "--eval-every", "4",
                "--keep-last", "0", "--threshold-per-label", *COMMON]) == 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert set(evals[-1]) >= {"micro_f1", "macro_f1", "subset_accuracy", "loss"}
    config = json.loads((out / "final" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    assert sorted(config["id2label"].values()) == ["animal", "colour", "place"]
    thresholds = config["finetune_data"]["multi_label"]["thresholds"]
    assert len(thresholds) == 3
    # the saved thresholds are those chosen on dev by the final model's probabilities
    pred = MultiLabelPredictor.from_pretrained(out / "final", device="cpu")
    d = Data()
    examples, _ = read_multi_label(dev, d)
    ds = pred.dataset(examples)
    logits = pred.logits(ds)
    probs = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert choose_thresholds(probs, ds.labels, per_label=True).tolist() == thresholds
    expected = score(logits, ds.labels, np.array(thresholds), pred.names)
    assert evals[-1]["micro_f1"] == pytest.approx(expected["micro_f1"], abs=1e-9)
    capsys.readouterr()

    png = tmp_path / "report.png"
    assert cli(["evaluate", str(out / "final"), str(dev), "--json", "--device", "cpu", "--report-png", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["micro_f1"] == pytest.approx(expected["micro_f1"]) and result["examples"] == 20
    assert [c["name"] for c in result["report"]["classes"]] == ["animal", "colour", "place"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert cli(["predict", str(out / "final"), str(dev), "--out", str(tmp_path / "p.jsonl"), "--device", "cpu"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rows] == list(range(2, 22))
    for r, p in zip(rows, probs):
        on = {n for n, x, t in zip(pred.names, p, thresholds) if x >= t}
        assert set(r["labels"]) == on
        assert r["probabilities"] == {n: round(float(x), 6) for n, x in zip(pred.names, p)}

    # int8 (torch dynamic): reported against fp32; berts compare: an fp32 and an int8 row
    assert cli(["evaluate", str(out / "final"), str(dev), "--json", "--int8"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["fp32"] == {k: v for k, v in result.items() if k not in ("report", "examples")}
    from berts.tools.compare import compare

    fp32_row, int8_row = compare([out / "final"], dev, int8=True, latency_examples=8, repeats=1)
    assert fp32_row["metric"] == "micro_f1" and fp32_row["score"] == pytest.approx(expected["micro_f1"])
    assert int8_row["score"] == pytest.approx(q["micro_f1"])
    assert int8_row["agreement"] == pytest.approx(q["int8_vs_fp32"]["agreement"])

    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nthe dog\tanimal\na tree\tplant\n")
    capsys.readouterr()
    assert cli(["evaluate", str(out / "final"), str(bad), "--device", "cpu"]) == 2
    assert capsys.readouterr().err.strip().endswith("bad.tsv:3: unknown label 'plant' (known: animal, colour, place)")


def test_python_api(tmp_path, tiny_config):
    """berts.MultiLabelPredictor / berts.ChoicePredictor on directories saved by hand: the API's
    answers are the probabilities of the model's own logits, at the saved thresholds."""
    import berts
    from berts.tokenizer.wordpiece import Tokenizer

    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])})
    cfg = tiny_config.replace(vocab_size=tok.vocab_size, num_labels=2, problem_type="multi_label_classification",
                              id2label={0: "x", 1: "y"}, label2id={"x": 0, "y": 1})
    model = randomize(BertForSequenceClassification(cfg)).eval()
    model.config.finetune_data = {**(model.config.finetune_data or {}), "multi_label": {"thresholds": [0.2, 0.9], "label_sep": "|"}}
    model.save_pretrained(tmp_path / "ml", tokenizer=tok)
    (row,) = berts.MultiLabelPredictor.from_pretrained(tmp_path / "ml", device="cpu").predict(["the big dog"])
    enc = tok(["the big dog"])
    with torch.no_grad():
        p = torch.sigmoid(model(input_ids=torch.tensor(enc["input_ids"])).logits[0]).tolist()
    assert row["probabilities"] == {"x": round(p[0], 6), "y": round(p[1], 6)}
    assert set(row["labels"]) == {n for n, q, t in zip("xy", p, (0.2, 0.9)) if q >= t}

    from berts.tasks.multiple_choice import BertForMultipleChoice

    mc = randomize(BertForMultipleChoice(tiny_config.replace(vocab_size=tok.vocab_size))).eval()
    mc.save_pretrained(tmp_path / "mc", tokenizer=tok)
    (out,) = berts.ChoicePredictor.from_pretrained(tmp_path / "mc", device="cpu").predict(
        [{"question": "the dog", "choices": ["sat", "ran", "flew"]}])
    enc = tok(["the dog"] * 3, ["sat", "ran", "flew"])
    with torch.no_grad():
        q = mc(input_ids=torch.tensor(enc["input_ids"])[None],
               token_type_ids=torch.tensor(enc["token_type_ids"])[None]).logits[0].softmax(-1)
    assert out["choice"] == int(q.argmax()) and out["text"] == ["sat", "ran", "flew"][out["choice"]]
    assert out["probabilities"] == pytest.approx(q.tolist(), abs=1e-6)
