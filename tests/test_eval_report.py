"""The evaluation report (berts.metrics.report) against sklearn, in `berts evaluate` for the
classification task (JSON, printed, PNG), and the inputs users have: a parquet file and a
`datasets` save_to_disk directory read as the TSV they came from (same metrics), their errors
naming the row."""
import json

import numpy as np
import pytest
from test_inference import make_classifier, sentences

from berts.cli import main
from berts.errors import UserError
from berts.metrics.report import classification_report, format_report, multilabel_report


def test_report_equals_sklearn():
    from sklearn.metrics import confusion_matrix, multilabel_confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    p[p == 3] = 2  # class 3 never predicted: precision 0 (zero_division=0)
    r = classification_report(y, p, ["a", "b", "c", "d"])
    pr, rc, f1, support = precision_recall_fscore_support(y, p, labels=[0, 1, 2, 3], zero_division=0)
    assert [c["precision"] for c in r["classes"]] == pytest.approx(pr, abs=1e-6)
    assert [c["recall"] for c in r["classes"]] == pytest.approx(rc, abs=1e-6)
    assert [c["f1"] for c in r["classes"]] == pytest.approx(f1, abs=1e-6)
    assert [c["support"] for c in r["classes"]] == support.tolist()
    assert r["confusion"] == confusion_matrix(y, p, labels=[0, 1, 2, 3]).tolist()
    assert r["macro"]["f1"] == pytest.approx(f1.mean(), abs=1e-6)
    Y, P = rng.integers(0, 2, (30, 3)), rng.integers(0, 2, (30, 3))
    m = multilabel_report(Y, P, ["x", "y", "z"])
    assert m["confusion_per_label"] == multilabel_confusion_matrix(Y, P).tolist()
    _, _, f1, _ = precision_recall_fscore_support(Y, P, zero_division=0)
    assert [c["f1"] for c in m["classes"]] == pytest.approx(f1, abs=1e-6)
    text = format_report(r).splitlines()
    assert text[0].split() == ["class", "precision", "recall", "f1", "support"] and text[5].startswith("macro")
    assert text[6] == "confusion (row: true, column: predicted)"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_classifier(tmp_path_factory.mktemp("rep") / "clf")


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """The same 30 rows as TSV, parquet and a saved dataset."""
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    root = tmp_path_factory.mktemp("data")
    texts = sentences(30, seed=5)
    labels = ["pos" if i % 3 else "neg" for i in range(30)]
    (root / "t.tsv").write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    ds = datasets.Dataset.from_dict({"sentence": texts, "label": labels})
    ds.to_parquet(str(root / "t.parquet"))
    ds.save_to_disk(str(root / "saved"))
    datasets.DatasetDict({"test": ds}).save_to_disk(str(root / "dict"))
    return root


def evaluate(args, capsys):
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_evaluate_reports_per_class_and_confusion(model, tables, tmp_path, capsys):
    from berts.serve.predict import Classifier

    rc, out, _ = evaluate(["evaluate", model, tables / "t.tsv", "--json", "--report-png", tmp_path / "r.png"], capsys)
    metrics = json.loads(out)
    clf = Classifier.from_pretrained(model, device="cpu")
    predicted = [clf.label_map.names.index(p.label) for p in clf.predict(sentences(30, seed=5))]
    truth = [clf.label_map.names.index("pos" if i % 3 else "neg") for i in range(30)]
    assert metrics["report"] == classification_report(np.array(truth), np.array(predicted), clf.label_map.names)
    assert metrics["accuracy"] == pytest.approx(np.trace(np.array(metrics["report"]["confusion"])) / 30)
    assert (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    rc, out, _ = evaluate(["evaluate", model, tables / "t.tsv"], capsys)
    assert rc == 0 and "confusion (row: true, column: predicted)" in out and out.splitlines()[1].startswith("class")


def test_parquet_and_saved_dataset_read_as_the_tsv(model, tables, capsys):
    _, tsv, _ = evaluate(["evaluate", model, tables / "t.tsv", "--json"], capsys)
    for path in (tables / "t.parquet", tables / "saved"):
        rc, out, _ = evaluate(["evaluate", model, path, "--json"], capsys)
        assert rc == 0 and json.loads(out) == json.loads(tsv), path
    rc, out, _ = evaluate(["predict", model, tables / "t.parquet"], capsys)
    rows = [json.loads(x) for x in out.splitlines()]
    assert [r["line"] for r in rows] == list(range(1, 31))  # parquet's "line": the row number


def test_input_errors_name_the_row(model, tables, tmp_path, capsys):
    import datasets

    from berts.data.tables import read_examples

    rc, _, err = evaluate(["evaluate", model, tables / "dict"], capsys)
    assert rc == 2 and err.strip().endswith("dict: a DatasetDict: name one split's directory (test)")
    datasets.Dataset.from_dict({"sentence": ["a", "", "c"], "label": ["pos", "neg", "pos"]}).to_parquet(
        str(tmp_path / "bad.parquet"))
    with pytest.raises(UserError, match=r"bad\.parquet:2: empty text in column 'sentence'"):
        read_examples(tmp_path / "bad.parquet", text_column="sentence", label_column="label")
    datasets.Dataset.from_dict({"sentence": ["a", "b"], "label": ["pos", "odd"]}).to_parquet(
        str(tmp_path / "unknown.parquet"))
    rc, _, err = evaluate(["evaluate", model, tmp_path / "unknown.parquet"], capsys)
    assert rc == 2 and "unknown.parquet:2: unknown label 'odd'" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(UserError, match=r"junk\.parquet: cannot read as parquet"):
        read_examples(tmp_path / "junk.parquet", text_column="sentence", label_column="label")
