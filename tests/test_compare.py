"""`berts compare`: the table's parameters and FLOPs per token equal hand counts on tiny BERT and
ALBERT classifiers (ALBERT: far fewer parameters, the same FLOPs but its embedding projection),
accuracy equals `berts evaluate`'s, latency is measured, ratios are to the first model, and the
markdown / JSON / PNG files are written. An early-exit directory gives a row per --speed (speed 0:
the plain row's accuracy and FLOPs; each row the Classifier's own exit layers and a hand FLOP
count); --int8 rows: agreement / accuracy / max_abs_diff equal to Classifier(int8) vs fp32 by hand,
same params and FLOPs, fewer MB (size_mb: the weights' bytes); a bad --speed is one line."""
import json

import pytest
from test_inference import make_classifier, sentences, tokenizer

from berts.cli import main


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("cmp")
    return make_classifier(root / "bert"), make_classifier(root / "albert", albert=True, seed=1)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "test.tsv"
    rows = [f"{t}\t{'pos' if i % 3 else 'neg'}" for i, t in enumerate(sentences(24, seed=4))]
    path.write_text("sentence\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def hand_params(V, H, I, L, C, P=64, T=2, E=None, shared=False):
    emb = (V + P + T) * (E or H) + 2 * (E or H) + ((E * H + H) if E else 0)
    layer = (3 * H * H + 3 * H) + (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H
    return emb + layer * (1 if shared else L) + (H * H + H) + (H * C + C)


def hand_flops_per_token(lengths, H, I, L, C, E=None):
    total = 0
    for n in lengths:
        total += L * (2 * n * (4 * H * H + 2 * H * I) + 4 * n * n * H) + 2 * H * H + 2 * H * C
        total += 2 * n * E * H if E else 0
    return total / sum(lengths)


def test_compare_table_equals_hand_counts(models, table, tmp_path, capsys):
    bert, albert = models
    out = tmp_path / "report"
    assert main([str(a) for a in ["compare", bert, albert, "--eval-file", table, "--out", out, "--threads", "1",
                                  "--repeats", "1", "--latency-examples", "8"]]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "compare.json").read_text())
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "compare.md").read_text().strip() in printed
    V = tokenizer().vocab_size
    assert rows[0]["params"] == hand_params(V, 32, 64, 2, 2)
    assert rows[1]["params"] == hand_params(V, 32, 64, 2, 2, E=16, shared=True)
    lengths = [len(x) for x in tokenizer()(sentences(24, seed=4), max_length=64, truncation=True)["input_ids"]]
    assert rows[0]["flops_per_token"] == pytest.approx(hand_flops_per_token(lengths, 32, 64, 2, 2))
    assert rows[1]["flops_per_token"] == pytest.approx(hand_flops_per_token(lengths, 32, 64, 2, 2, E=16))
    assert rows[1]["ratios"]["params"] == pytest.approx(rows[1]["params"] / rows[0]["params"]) and \
        rows[1]["ratios"]["params"] < 0.75  # sharing: fewer parameters ...
    assert 1.0 < rows[1]["ratios"]["flops_per_token"] < 1.05  # ... at the same FLOPs (+ the projection E -> H)
    assert rows[0]["ratios"] == {"params": 1.0, "flops_per_token": 1.0, "speedup_b1": 1.0, "speedup_b32": 1.0,
                                 "score": 1.0}
    for r, model in zip(rows, (bert, albert)):
        assert r["latency_b1_ms"] > 0 and r["throughput_b32"] > 0 and r["examples_timed"] == 8
        assert main(["evaluate", str(model), str(table), "--json"]) == 0
        assert r["score"] == json.loads(capsys.readouterr().out)["accuracy"]


# ----------------------------------------------------------------------------- speeds and int8 rows
def make_exits(path, layers=4, seed=0, scale=0.5):
    """An early-exit directory (as `berts finetune --early-exit` leaves it) with random weights and
    students confident enough to leave at various layers; labels neg/pos as ``table``."""
    from test_fastbert import exit_model


    model, tok = exit_model(layers, seed=seed, scale=scale, names=["neg", "pos"])
    model.config.finetune_data = {"task": "classification", "text_column": "sentence", "label_column": "label",
                                        "format": "auto", "header": "auto", "max_length": 64}
    model.save_pretrained(path, tokenizer=tok)
    return path


def make_wide(path, hidden=128, intermediate=512):
    """A classifier whose Linears outweigh its embeddings (what int8 shrinks)."""
    import torch

    from berts import BertConfig, BertForSequenceClassification
    from berts.data.labels import LabelMap

    tok = tokenizer()
    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=intermediate, max_position_embeddings=64, **LabelMap(["neg", "pos"]).to_config()))
    model.config.finetune_data = {"task": "classification", "text_column": "sentence", "label_column": "label",
                                        "max_length": 64}
    model.save_pretrained(path, tokenizer=tok)
    return path


@pytest.fixture(scope="module")
def exits(tmp_path_factory):
    return make_exits(tmp_path_factory.mktemp("cmp_exits") / "exits")


FAST = dict(threads=1, repeats=1, latency_examples=4)


def test_speed_rows_of_an_exits_directory(exits, table):
    import numpy as np

    from berts.tools.compare import compare, encoder_flops, student_flops
    from berts.serve.predict import Classifier

    plain = compare([exits], table, **FAST)  # no speed: run to the end, one row
    assert len(plain) == 1 and "speed" not in plain[0] and plain[0]["precision"] == "fp32"
    speeds = [0.0, 0.2, 0.4, 0.6, 1.0]
    rows = compare([exits], table, speed="0,0.2,0.4,0.6,1", **FAST)  # the flag's text works too
    assert [r["speed"] for r in rows] == speeds
    assert compare([exits], table, speeds=[0.4], **FAST)[0]["avg_layers"] == rows[2]["avg_layers"]
    assert compare([exits], table, speed=0.4, **FAST)[0]["avg_layers"] == rows[2]["avg_layers"]  # a float
    # speed 0 is the final classifier: the plain row's accuracy, all 4 layers, the plain FLOPs (no student run)
    assert rows[0]["score"] == plain[0]["score"] and rows[0]["avg_layers"] == 4.0
    assert rows[0]["flops_per_token"] == pytest.approx(plain[0]["flops_per_token"])
    layers = [r["avg_layers"] for r in rows]
    assert all(a >= b for a, b in zip(layers, layers[1:])) and layers[-1] == 1.0 and len(set(layers)) >= 3
    # each row equals the Classifier's own early exit on the same examples, and its FLOPs a hand count
    clf = Classifier.from_pretrained(exits, device="cpu")
    texts = sentences(24, seed=4)
    labels = np.array(["neg" if i % 3 == 0 else "pos" for i in range(24)])
    lengths = [len(x) for x in tokenizer()(texts, max_length=64, truncation=True)["input_ids"]]
    cfg = clf.model.config
    for s, r in zip(speeds, rows):
        preds = clf.early_exit("entropy", speed=s).predict(texts)
        k = np.array([p.exit_layer for p in preds])
        assert r["avg_layers"] == pytest.approx(k.mean())
        assert r["score"] == pytest.approx(np.mean([p.label for p in preds] == labels))
        hand = sum(encoder_flops(cfg, n, layers=int(e), head=e == 4) + (0 if s == 0 else min(e, 3)) *
                   student_flops(cfg, 16, n) for n, e in zip(lengths, k))
        assert r["flops_per_token"] == pytest.approx(hand / sum(lengths))
        assert r["latency_b1_ms"] > 0 and r["size_mb"] == rows[0]["size_mb"]
    assert rows[-1]["flops_per_token"] < rows[0]["flops_per_token"] / 2


def test_int8_rows_agree_with_a_hand_computation(models, table):
    import numpy as np

    from berts.tools.compare import compare
    from berts.serve.predict import Classifier

    bert, albert = models
    rows = compare([bert, albert], table, int8=True, **FAST)
    assert [(r["model"], r["precision"]) for r in rows] == [
        (str(bert), "fp32"), (str(bert), "int8"), (str(albert), "fp32"), (str(albert), "int8")]
    texts = sentences(24, seed=4)
    labels = np.array(["neg" if i % 3 == 0 else "pos" for i in range(24)])
    for model, fp32, q in ((bert, rows[0], rows[1]), (albert, rows[2], rows[3])):
        a = [p.label for p in Classifier.from_pretrained(model, device="cpu").predict(texts)]
        b = [p.label for p in Classifier.from_pretrained(model, int8=True, device="cpu").predict(texts)]
        assert 0.0 <= q["agreement"] <= 1.0 and q["agreement"] == pytest.approx(np.mean(np.array(a) == np.array(b)))
        assert q["score"] == pytest.approx(np.mean(np.array(b) == labels))
        assert fp32["score"] == pytest.approx(np.mean(np.array(a) == labels))
        assert q["params"] == fp32["params"] and q["flops_per_token"] == fp32["flops_per_token"]
        assert "agreement" not in fp32 and q["latency_b32_ms"] > 0 and q["examples_timed"] == 4
    assert rows[1]["ratios"]["params"] == 1.0 and rows[0]["ratios"]["score"] == 1.0


def test_int8_regression_row_reports_the_largest_difference(tmp_path):
    import numpy as np

    from berts.tools.compare import compare
    from berts.serve.predict import Classifier

    reg = make_classifier(tmp_path / "reg", regression=True)
    texts = sentences(16, seed=5)
    path = tmp_path / "reg.tsv"
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{i / 4}\n" for i, t in enumerate(texts)), encoding="utf-8")
    rows = compare([reg], path, int8=True, **FAST)
    assert [r["precision"] for r in rows] == ["fp32", "int8"] and "agreement" not in rows[1]
    a = np.array([p.value for p in Classifier.from_pretrained(reg, device="cpu").predict(texts)])
    b = np.array([p.value for p in Classifier.from_pretrained(reg, int8=True, device="cpu").predict(texts)])
    assert rows[1]["max_abs_diff"] == pytest.approx(np.abs(a - b).max(), abs=1e-6) and rows[1]["max_abs_diff"] > 0


def test_size_mb_is_the_weights_bytes_and_int8_is_smaller(tmp_path, table):
    import torch

    from berts.tools.compare import compare
    from berts.serve.predict import Classifier

    wide = make_wide(tmp_path / "wide")
    fp32, q = compare([wide], table, int8=True, **FAST)
    model = Classifier.from_pretrained(wide, device="cpu").model
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6
    assert weights <= fp32["size_mb"] <= weights * 1.02 + 0.05  # torch.save's framing is small
    # the Linears are ~3/4 of the bytes and shrink 4x (int8 + a scale); embeddings stay fp32
    linear = sum(m.weight.numel() for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and n != "classifier") * 4 / 1e6
    assert linear > 0.6 * weights
    assert q["size_mb"] < fp32["size_mb"] - 0.7 * linear


def test_cli_prints_the_new_rows(models, exits, table, tmp_path, capsys):
    bert, _ = models
    out = tmp_path / "report"
    assert main([str(a) for a in ["compare", bert, exits, "--eval-file", table, "--speed", "0,1", "--int8",
                                  "--out", out, "--threads", "1", "--repeats", "1", "--latency-examples", "4"]]) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "compare.json").read_text())
    assert [(r["precision"], r.get("speed")) for r in rows] == [("fp32", None), ("int8", None), ("fp32", 0.0),
                                                               ("fp32", 1.0)]
    table_md = (out / "compare.md").read_text()
    assert table_md.strip() in printed and "| MB |" in table_md.splitlines()[0]
    lines = table_md.splitlines()[2:]
    assert lines[0].startswith(f"| {bert} | ") and lines[1].startswith(f"| {bert} (int8) | ")
    assert lines[2].startswith(f"| {exits} (speed 0, 4.00 layers) | ")
    assert lines[3].startswith(f"| {exits} (speed 1, 1.00 layers) | ")
    assert f"| {rows[1]['size_mb']:.2f} ({rows[1]['size_mb'] / rows[0]['size_mb']:.2f}x) |" in lines[1]
    from berts.tools.compare import short_name

    assert [short_name(r) for r in rows] == ["bert", "bert int8", "exits S=0", "exits S=1"]
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("speed", ["0.3,x", "1.5", "-0.1", "0.3,,0.5", "nan"])
def test_bad_speed_is_a_one_line_error(models, table, speed, capsys):
    bert, _ = models
    assert main(["compare", str(bert), "--eval-file", str(table), f"--speed={speed}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--speed" in err


def test_api_errors(models, table):
    from berts.tools.compare import compare
    from berts.errors import UserError

    bert, _ = models
    with pytest.raises(UserError, match="--speed"):
        compare([bert], table, speeds=[0.5, 2])
    with pytest.raises(UserError, match="--int8 runs on the CPU"):
        compare([bert], table, int8=True, device="cuda")
