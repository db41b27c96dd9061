"""`berts baseline`: TF-IDF + logistic regression, checked against scikit-learn called directly."""
import json

import numpy as np
import pytest

from berts.cli import main

pytest.importorskip("sklearn")


def _write(path, rows):
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows), encoding="utf-8")


def _rows(rng, n):
    good, bad, filler = ["很好", "满意", "推荐"], ["很差", "失望", "退货"], ["房间", "服务", "价格", "早餐", "位置"]
    rows = []
    for _ in range(n):
        y = rng.choice(["pos", "neg"])
        core = rng.choice(good if y == "pos" else bad)
        if rng.random() < 0.15:  # label noise: accuracy is not trivially 1
            y = "neg" if y == "pos" else "pos"
        rows.append(("".join(rng.choice(filler) for _ in range(3)) + core, y))
    return rows


def test_baseline_matches_sklearn_and_picks_c_on_dev(tmp_path, capsys):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    splits = {name: _rows(rng, n) for name, n in (("train", 300), ("dev", 80), ("test", 80))}
    for name, rows in splits.items():
        _write(tmp_path / f"{name}.tsv", rows)
    code = main(["baseline", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv"),
                 "--test", str(tmp_path / "test.tsv"), "--C", "0.01,1,100", "--json"])
    assert code == 0
    got = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # the same thing by hand: fit each C, keep the best on dev (first best wins), score test once
    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    xt = vec.fit_transform([t for t, _ in splits["train"]])
    best = None
    for c in (0.01, 1.0, 100.0):
        clf = LogisticRegression(C=c, max_iter=2000).fit(xt, [y for _, y in splits["train"]])
        dev = float((clf.predict(vec.transform([t for t, _ in splits["dev"]])) == [y for _, y in splits["dev"]]).mean())
        if best is None or dev > best[1]:
            best = (clf, dev, c)
    test = float((best[0].predict(vec.transform([t for t, _ in splits["test"]])) == [y for _, y in splits["test"]]).mean())
    assert got["C"] == best[2] and got["dev_accuracy"] == best[1] and got["test_accuracy"] == test
    assert [t["C"] for t in got["tried"]] == [0.01, 1.0, 100.0]
    assert got["test_examples"] == 80 and 0.6 < got["test_accuracy"] < 1.0


def test_baseline_bad_input_is_one_line(tmp_path, capsys):
    _write(tmp_path / "train.tsv", [("好", "pos"), ("差", "neg")])
    (tmp_path / "dev.tsv").write_text("text\tlabel\nonly one column\n", encoding="utf-8")
    code = main(["baseline", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "dev.tsv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "dev.tsv:2" in err[0]
    code = main(["baseline", "--train", str(tmp_path / "train.tsv"), "--dev", str(tmp_path / "train.tsv"),
                 "--ngrams", "2,1"])
    assert code == 2 and "--ngrams" in capsys.readouterr().err
