"""`berts compare`: the table's parameters and FLOPs per token equal hand counts on tiny BERT and
ALBERT classifiers (ALBERT: far fewer parameters, the same FLOPs but its embedding projection),
accuracy equals `berts evaluate`'s, latency is measured, ratios are to the first model, and the
markdown / JSON / PNG files are written."""
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
