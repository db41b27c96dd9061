"""Task data (TSV/CSV/JSONL reading, label maps, the batch dataset) and metrics (scipy as the oracle)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from berts.data.sampler import ResumableBatchSampler
from berts.data.classification import ClassificationDataset
from berts.data.labels import LabelMap
from berts.data.tables import Example, read_examples
from berts.errors import UserError
from berts.metrics import (accuracy, better, compute_metrics, f1_binary, f1_macro, higher_is_better,
                           matthews_corrcoef, mse, pearson, rankdata, spearman)
from berts.tokenizer.wordpiece import Tokenizer

WORDS = ("the a cat dog sat on mat it is charming journey he said wow good bad movie film not very "
         "and of to was fun , . ' \" ! ? 0 1 2 3 4 5").split()


@pytest.fixture(scope="module")
def tok():
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, "##s", "##ing", "##ed"]
    return Tokenizer.from_vocab({t: i for i, t in enumerate(vocab)})


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- reading
def test_sst2_tsv_header_quotes_are_text(tmp_path):
    path = write(tmp_path, "train.tsv",
                 'sentence\tlabel\n'
                 '"it \'s a charming journey \t1\n'
                 'he said "wow" , bad\t0\n'
                 '\n'
                 'a "film\t1\n')
    examples, report = read_examples(path, text_column="sentence", label_column="label")
    assert [e.text for e in examples] == ['"it \'s a charming journey ', 'he said "wow" , bad', 'a "film']
    assert [e.label for e in examples] == ["1", "0", "1"]
    assert [e.line for e in examples] == [2, 3, 5]
    assert examples[0].text_pair is None and examples[0].path == str(path)
    assert report.header == ["sentence", "label"] and report.rows == 3 and report.num_skipped == 0
    assert report.format == "tsv"


MRPC = ("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n"
        "1\t702876\t702977\tHe said \"the cat sat\" .\tThe cat sat , he said .\n"
        "0\t2108705\t2108831\tA dog 's movie\tNot a film\n"
        "1\t1330381\t1330521\tgood fun\tvery good fun\n")


@pytest.mark.parametrize("header", ["auto", True])
def test_mrpc_columns_by_index_with_header(tmp_path, header):
    path = write(tmp_path, "msr_paraphrase_train.txt", MRPC)
    examples, report = read_examples(path, text_column=3, text_pair_column=4, label_column=0, header=header)
    assert len(examples) == 3 and report.header[0] == "Quality"
    assert examples[0] == Example('He said "the cat sat" .', "The cat sat , he said .", "1", 2, str(path))
    assert [e.label for e in examples] == ["1", "0", "1"]
    # digit strings (as a command line passes them) are indices too
    again, _ = read_examples(path, text_column="3", text_pair_column="4", label_column="0", header=header)
    assert again == examples


def test_headerless_tsv_cola(tmp_path):
    path = write(tmp_path, "in_domain_train.tsv",
                 "gj04\t1\t\tthe cat sat .\n"
                 "gj04\t0\t*\tcat the sat .\n"
                 "gj04\t1\t\ta dog sat on the mat .\n")
    examples, report = read_examples(path, text_column=3, label_column=1)
    assert report.header is None
    assert [(e.text, e.label, e.line) for e in examples] == [
        ("the cat sat .", "1", 1), ("cat the sat .", "0", 2), ("a dog sat on the mat .", "1", 3)]
    examples, _ = read_examples(path, text_column=-1, label_column=1, header=False)
    assert examples[2].text == "a dog sat on the mat ."
    # a prediction file: no label column
    examples, _ = read_examples(path, text_column=3)
    assert len(examples) == 3 and all(e.label is None for e in examples)


def test_stsb_regression(tmp_path):
    path = write(tmp_path, "dev.tsv",
                 "index\tgenre\tsentence1\tsentence2\tscore\n"
                 "0\tmain-captions\tA cat sat.\tThe cat sat.\t5.000\n"
                 "1\tmain-captions\tA dog.\tNot a dog.\t0.5\n")
    examples, _ = read_examples(path, text_column="sentence1", text_pair_column="sentence2",
                                label_column="score", task="regression")
    assert [e.label for e in examples] == [5.0, 0.5]
    assert examples[1].text_pair == "Not a dog."
    # by index, the header is found because "score" is not a number
    examples, report = read_examples(path, text_column=2, text_pair_column=3, label_column=4, task="regression")
    assert [e.label for e in examples] == [5.0, 0.5] and report.header[4] == "score"

    bad = write(tmp_path, "bad.tsv", "sentence1\tsentence2\tscore\na\tb\t1.5\nc\td\tabout 3\ne\tf\tnan\n")
    with pytest.raises(UserError, match=r"bad\.tsv:3: regression label 'about 3' is not a finite number"):
        read_examples(bad, text_column=0, text_pair_column=1, label_column="score", task="regression")
    examples, report = read_examples(bad, text_column=0, text_pair_column=1, label_column="score",
                                     task="regression", skip_bad_rows=True)
    assert len(examples) == 1 and report.skipped == {"bad label": 2}


def test_csv_quoted_commas_and_newlines(tmp_path):
    path = write(tmp_path, "data.csv",
                 'text,label\n'
                 '"the cat, the dog",pos\n'
                 '"he said ""wow""",neg\n'
                 '"two\nlines",pos\n'
                 'plain,neg\n')
    examples, report = read_examples(path, text_column="text", label_column="label")
    assert [e.text for e in examples] == ["the cat, the dog", 'he said "wow"', "two\nlines", "plain"]
    assert [e.line for e in examples] == [2, 3, 4, 6]
    assert report.format == "csv"

    unclosed = write(tmp_path, "unclosed.csv", 'text,label\nok,pos\n"never closed,neg\nmore,pos\n')
    with pytest.raises(UserError, match=r"unclosed\.csv:3: malformed CSV \(a quote opened on this line is never closed"):
        read_examples(unclosed, text_column="text", label_column="label")


def test_jsonl(tmp_path):
    rows = [{"premise": "a cat", "hypothesis": "a dog", "label": "neutral"},
            {"premise": "the mat", "hypothesis": "a mat", "label": 1},
            {"premise": "fun", "hypothesis": "not fun", "label": True}]
    path = write(tmp_path, "nli.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    examples, _ = read_examples(path, text_column="premise", text_pair_column="hypothesis", label_column="label")
    assert [(e.text, e.text_pair, e.label, e.line) for e in examples] == [
        ("a cat", "a dog", "neutral", 1), ("the mat", "a mat", "1", 2), ("fun", "not fun", "true", 3)]

    bad = write(tmp_path, "bad.jsonl", '{"text": "ok", "label": "a"}\n{"text": "oops",\n{"label": "b"}\n[1]\n')
    with pytest.raises(UserError, match=r"bad\.jsonl:2: invalid JSON \(.*\)$"):
        read_examples(bad, text_column="text", label_column="label")
    examples, report = read_examples(bad, text_column="text", label_column="label", skip_bad_rows=True)
    assert len(examples) == 1
    assert report.skipped == {"invalid JSON": 2, "missing field": 1}
    assert report.first_skipped[1] == f"{bad}:3: no field 'text'"
    with pytest.raises(UserError, match="JSONL fields are named"):
        read_examples(bad, text_column=0)


def test_wrong_column_count_error_and_skip(tmp_path):
    lines = ["sentence\tlabel", "good\t1", "bad\t0\textra", "fine\t1", "no label here"]
    path = write(tmp_path, "train.tsv", "\n".join(lines) + "\n")
    with pytest.raises(UserError) as info:
        read_examples(path, text_column="sentence", label_column="label")
    assert str(info.value) == f"{path}:3: expected 2 columns, found 3"
    examples, report = read_examples(path, text_column="sentence", label_column="label", skip_bad_rows=True)
    assert [e.text for e in examples] == ["good", "fine"]
    assert report.skipped == {"wrong column count": 2} and report.num_skipped == 2
    assert report.first_skipped == [f"{path}:3: expected 2 columns, found 3", f"{path}:5: expected 2 columns, found 1"]
    assert "skipped 2 bad rows" in report.summary()


def test_empty_text_and_label(tmp_path):
    path = write(tmp_path, "train.tsv", "sentence\tlabel\ngood\t1\n  \t0\nok\t\n")
    with pytest.raises(UserError, match=r"train\.tsv:3: empty text in column 'sentence'$"):
        read_examples(path, text_column="sentence", label_column="label")
    _, report = read_examples(path, text_column="sentence", label_column="label", skip_bad_rows=True)
    assert report.skipped == {"empty text": 1, "empty label": 1}


def test_invalid_utf8_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_bytes(b"sentence\tlabel\ngood\t1\nbad \xff\xfe bytes\t0\ncaf\xc3\xa9\t1\n")
    with pytest.raises(UserError, match=r"train\.tsv:3: not valid UTF-8 \(invalid start byte at byte 4\)"):
        read_examples(path, text_column="sentence", label_column="label")
    examples, report = read_examples(path, text_column="sentence", label_column="label", skip_bad_rows=True)
    assert [e.text for e in examples] == ["good", "café"] and [e.line for e in examples] == [2, 4]
    assert report.skipped == {"invalid UTF-8": 1}
    csv_path = tmp_path / "train.csv"
    csv_path.write_bytes(b"text,label\n\"a\xff\",1\nok,0\n")
    with pytest.raises(UserError, match=r"train\.csv:2: not valid UTF-8"):
        read_examples(csv_path, text_column="text", label_column="label")
    examples, _ = read_examples(csv_path, text_column="text", label_column="label", skip_bad_rows=True)
    assert [(e.text, e.line) for e in examples] == [("ok", 3)]


def test_file_and_column_errors(tmp_path):
    with pytest.raises(UserError, match=r"nope\.tsv: no such file"):
        read_examples(tmp_path / "nope.tsv", text_column=0)
    path = write(tmp_path, "t.tsv", "sentence\tlabel\na\t1\n")
    with pytest.raises(UserError, match=r"no column 'text' in the header \(columns: sentence, label\)"):
        read_examples(path, text_column="text", label_column="label")
    with pytest.raises(UserError, match="text column 5 is out of range"):
        read_examples(path, text_column=5, header=True)
    with pytest.raises(UserError, match="is a name but the file has no header"):
        read_examples(path, text_column="sentence", header=False)
    with pytest.raises(UserError, match="cannot tell the format"):
        read_examples(write(tmp_path, "t.data", "a\n"), text_column=0)
    only_header = write(tmp_path, "h.tsv", "sentence\tlabel\n")
    with pytest.raises(UserError, match=r"h\.tsv: no examples"):
        read_examples(only_header, text_column="sentence", label_column="label")
    all_bad = write(tmp_path, "b.tsv", "sentence\tlabel\n\t1\n")
    with pytest.raises(UserError, match=r"no examples \(1 bad rows skipped; first: .*b\.tsv:2: empty text"):
        read_examples(all_bad, text_column="sentence", label_column="label", skip_bad_rows=True)


# ----------------------------------------------------------------------------- labels
def test_label_map_sorting_and_round_trip():
    numeric = LabelMap.from_labels(["10", "2", "1", "2", "-1"])
    assert numeric.names == ["-1", "1", "2", "10"]
    assert numeric.id2label == {0: "-1", 1: "1", 2: "2", 3: "10"} and numeric.label2id["10"] == 3
    names = LabelMap.from_examples([Example("x", label=lab) for lab in ["neutral", "entailment", "contradiction"]])
    assert names.names == ["contradiction", "entailment", "neutral"]
    assert names.encode("neutral") == 2 and names.decode([2, 0]) == ["neutral", "contradiction"]

    config = names.to_config()
    assert config["num_labels"] == 3 and config["problem_type"] == "single_label_classification"
    assert LabelMap.from_config(config) == names
    assert LabelMap.from_config(json.loads(json.dumps(config))) == names  # config.json: string keys
    from berts import BertConfig
    model_config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=16, **config)
    assert model_config.num_labels == 3 and LabelMap.from_config(model_config) == names
    with pytest.raises(UserError, match="ids must be 0..1"):
        LabelMap.from_config({"id2label": {"0": "a", "2": "b"}})


def test_unknown_label_names_file_and_line(tmp_path, tok):
    train, _ = read_examples(write(tmp_path, "train.tsv", "sentence\tlabel\ngood\tyes\nbad\tno\n"),
                             text_column="sentence", label_column="label")
    label_map = LabelMap.from_examples(train)
    dev_path = write(tmp_path, "dev.tsv", "sentence\tlabel\ngood\tyes\nhm\tmaybe\n")
    dev, _ = read_examples(dev_path, text_column="sentence", label_column="label")
    with pytest.raises(UserError) as info:
        ClassificationDataset(dev, tok, label_map=label_map)
    assert str(info.value) == f"{dev_path}:3: unknown label 'maybe' (known: no, yes)"
    with pytest.raises(UserError, match=r"^x\.tsv:7: unknown label 'z' \(known: no, yes\)$"):
        label_map.encode("z", "x.tsv", 7)


# ----------------------------------------------------------------------------- dataset
def _examples(n=37, pairs=False, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS[:25], rng.integers(1, 20)))
        pair = " ".join(rng.choice(WORDS[:25], rng.integers(1, 12))) if pairs else None
        out.append(Example(text, pair, str(rng.integers(0, 3)), i + 1, "mem"))
    return out


def test_dataset_batches_shapes_padding_labels(tok):
    examples = _examples()
    ds = ClassificationDataset(examples, tok, max_length=16)
    assert len(ds) == 37 and ds.num_labels == 3 and ds.label_map.names == ["0", "1", "2"]
    expected = [tok.encode(e.text, max_length=16)["input_ids"] for e in examples]
    assert ds.lengths.tolist() == [len(ids) for ids in expected]
    sampler = ResumableBatchSampler(len(ds), 8, seed=3, drop_last=False, lengths=ds.lengths, bucket_size=2)
    loader = torch.utils.data.DataLoader(ds, batch_size=None, sampler=sampler)
    seen = []
    for step, batch in enumerate(loader):
        ids, mask, types = batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]
        index = batch["index"].tolist()
        assert batch["epoch"] == 0 and batch["step"] == step
        assert ids.dtype == mask.dtype == types.dtype == batch["labels"].dtype == torch.long
        width = ids.shape[1]
        longest = max(len(expected[i]) for i in index)
        assert ids.shape == (len(index), width) and (width % 8 == 0 or width == 16)
        assert longest <= width < longest + 8
        for row, i in enumerate(index):
            n = len(expected[i])
            assert ids[row, :n].tolist() == expected[i] and (ids[row, n:] == tok.pad_id).all()
            assert mask[row].tolist() == [1] * n + [0] * (width - n)
        assert not types.any()
        assert batch["labels"].tolist() == [int(examples[i].label) for i in index]
        seen += index
    assert sorted(seen) == list(range(37))
    # the same (epoch, step, indices) gives the same batch; order follows the indices given
    a, b = ds[(1, 4, np.array([5, 2, 9]))], ds[(1, 4, np.array([5, 2, 9]))]
    assert all(torch.equal(a[k], b[k]) for k in ("input_ids", "attention_mask", "token_type_ids", "labels"))
    assert a["index"].tolist() == [5, 2, 9] and (a["epoch"], a["step"]) == (1, 4)
    # one example, unpadded
    one = ds[2]
    assert one["input_ids"].tolist() == expected[2] and one["labels"].item() == int(examples[2].label)


def test_dataset_pairs_token_types(tok):
    examples = _examples(20, pairs=True, seed=1)
    ds = ClassificationDataset(examples, tok, max_length=24)
    batch = ds[(0, 0, np.arange(20))]
    ids, types, mask = batch["input_ids"], batch["token_type_ids"], batch["attention_mask"]
    assert ids.shape[1] % 8 == 0 or ids.shape[1] == 24
    for row, e in enumerate(examples):
        enc = tok.encode(e.text, e.text_pair, max_length=24)
        n = len(enc["input_ids"])
        assert ids[row, :n].tolist() == enc["input_ids"]
        seps = (ids[row] == tok.sep_id).nonzero().flatten().tolist()
        assert len(seps) == 2
        expected_types = torch.zeros(ids.shape[1], dtype=torch.long)
        expected_types[seps[0] + 1:seps[1] + 1] = 1  # exactly the second segment and its [SEP]
        assert torch.equal(types[row], expected_types)
        assert mask[row].sum().item() == n


def test_dataset_regression_unlabelled_and_cap(tok):
    reg = [Example("the cat", "a dog", 4.5, 1), Example("fun", "bad", 0.25, 2)]
    ds = ClassificationDataset(reg, tok, regression=True)
    batch = ds[(0, 0, [1, 0])]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [0.25, 4.5]
    assert ds.num_labels == 1 and ds.label_map is None
    assert batch["input_ids"].shape == (2, 8)

    unlabelled = ClassificationDataset([Example("the cat sat")], tok)
    assert "labels" not in unlabelled[(0, 0, [0])] and unlabelled.labels is None
    # the rounded length never passes max_length (position embeddings)
    long = ClassificationDataset([Example(" ".join(["cat"] * 50))], tok, max_length=12)
    assert long[(0, 0, [0])]["input_ids"].shape == (1, 12)
    with pytest.raises(UserError, match="max length must be at least 3"):
        ClassificationDataset(reg, tok, max_length=1)


# ----------------------------------------------------------------------------- metrics
def test_classification_metrics_hand_computed():
    y = np.array([1, 1, 1, 0, 0, 0])
    p = np.array([1, 1, 0, 0, 0, 1])  # tp 2, tn 2, fp 1, fn 1
    assert accuracy(p, y) == pytest.approx(4 / 6)
    assert f1_binary(p, y) == pytest.approx(2 / 3)
    assert f1_binary(p, y, positive=0) == pytest.approx(2 / 3)
    assert matthews_corrcoef(p, y) == pytest.approx(1 / 3)
    assert f1_binary([0, 0, 1], [0, 1, 1]) == pytest.approx(2 / 3)  # precision 1, recall 1/2

    y3 = np.array([0, 0, 1, 1, 2, 2])
    p3 = np.array([0, 0, 1, 2, 2, 2])
    assert f1_macro(p3, y3) == pytest.approx((1 + 2 / 3 + 4 / 5) / 3)
    assert matthews_corrcoef(p3, y3) == pytest.approx(18 / np.sqrt(24 * 22))
    assert matthews_corrcoef(y3, y3) == pytest.approx(1.0)
    assert matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)

    logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.4], [1.0, 0.0]])
    got = compute_metrics("classification", logits, np.array([1, 0, 0, 0]), num_labels=2)
    assert set(got) == {"accuracy", "f1", "f1_macro", "mcc"}
    assert got["accuracy"] == 0.75 and got["f1"] == pytest.approx(2 / 3)
    multi = compute_metrics("classification", p3, y3, num_labels=3)
    assert multi["f1"] == multi["f1_macro"]


def test_degenerate_cases_no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert matthews_corrcoef([1, 1, 1, 1], [0, 1, 0, 1]) == 0.0
        assert matthews_corrcoef([0, 0], [0, 0]) == 0.0
        assert f1_binary([0, 0, 0], [0, 0, 0]) == 0.0
        assert pearson([1.0, 1.0, 1.0], [0.1, 0.5, 0.9]) == 0.0
        assert pearson([0.1] * 5, [1, 2, 3, 4, 5]) == 0.0
        assert spearman([2.0, 2.0, 2.0], [1, 2, 3]) == 0.0
        assert pearson([1.0], [2.0]) == 0.0
        assert np.isnan(pearson([np.nan, 1.0, 2.0], [1, 2, 3]))
        assert compute_metrics("classification", np.zeros(4, int), np.array([0, 1, 0, 1]), 2)["mcc"] == 0.0


def test_regression_metrics_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(3, 60))
        x = rng.integers(0, 6, n).astype(float) if trial % 2 else rng.normal(size=n)  # ties on odd trials
        y = 0.5 * x + rng.normal(size=n) if trial % 3 else rng.integers(0, 3, n).astype(float)
        if np.all(y == y[0]) or np.all(x == x[0]):
            continue
        assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
        np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
    got = compute_metrics("regression", np.array([[1.0], [2.0], [4.0]]), np.array([1.0, 3.0, 3.0]))
    assert set(got) == {"pearson", "spearman", "mse"}
    assert got["mse"] == pytest.approx(2 / 3) == mse([1, 2, 4], [1, 3, 3])
    assert got["spearman"] == pytest.approx(stats.spearmanr([1, 2, 4], [1, 3, 3])[0])


def test_better():
    assert better("accuracy", 0.9, 0.8) and not better("accuracy", 0.8, 0.9)
    assert better("eval_loss", 0.5, 0.6) and better("mse", 0.1, 0.2) and better("eval/mse", 0.1, 0.2)
    assert not higher_is_better("mlm_loss") and higher_is_better("mcc") and higher_is_better("f1_macro")
    assert better("mcc", 0.0, None) and better("loss", 3.0, float("nan"))
    assert not better("accuracy", float("nan"), 0.1) and not better("accuracy", 0.5, 0.5)


def test_roc_auc_equals_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    from berts.metrics import roc_auc

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.15
    z = np.round(rng.normal(size=500) + 0.8 * y, 1)  # rounded: many ties
    assert roc_auc(z, y) == pytest.approx(roc_auc_score(y, z), abs=1e-12)
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)  # the hand example
    assert np.isnan(roc_auc([0.1, 0.2], [0, 0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_top1_is_argmax_ties_and_nan_included(dtype):
    """The training accuracy's top1 (max(dim).indices, faster on CPU) gives argmax's indices: the
    first maximum on ties, a NaN counted as the maximum."""
    from berts.objectives.base import accuracy, top1

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3000, generator=g).to(dtype)
    ties = (torch.randn(64, 3000, generator=g) * 2).round().to(dtype)  # many equal maxima a row
    ties[5] = 0.0  # a whole row tied: index 0
    nan = x.clone()
    nan[3, 17] = float("nan")
    nan[4, [9, 2000]] = float("nan")
    for logits in (x, ties, nan):
        assert torch.equal(top1(logits), logits.argmax(-1))
    assert top1(ties)[5] == 0 and top1(nan)[3] == 17 and top1(nan)[4] == 9
    labels = x.float().argmax(-1)
    labels[:16] = (labels[:16] + 1) % 3000  # a quarter wrong
    assert accuracy(x, labels).item() == 0.75
