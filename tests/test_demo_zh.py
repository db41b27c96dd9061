"""The demo's Chinese half (berts.demo.zh) on tiny data made here: the splits and the label subsets,
no dev or test text in the pretraining corpus, the classical CRF's choice on dev, and the verdicts
(a tagger that predicts no entity, or a classifier at the majority rate, is never "met")."""
import json
import random
from collections import Counter

import pytest

from berts.demo import zh

WORDS = ["经济", "发展", "人民", "国家", "建设", "改革", "开放", "世界", "和平", "合作", "新年", "城市"]
GOOD, BAD = ["很好", "喜欢", "满意", "推荐"], ["很差", "失望", "难用", "退货"]
TOPICS = {"sports": ["足球", "比赛", "球队"], "stocks": ["股市", "涨停", "基金"], "game": ["游戏", "玩家", "网游"]}
PEOPLE, PLACES = ["王明", "李华", "张伟", "刘洋"], ["北京", "上海", "广州", "深圳"]
MARK = {"dev": "鉴", "test": "考"}  # a character only dev (test) text holds: it must never reach pretraining


def _mark(split, rng):
    return MARK.get(split, "") * rng.randint(1, 2)


def zh_inputs(root, rng, n=(400, 80, 80)):
    """News, reviews/, ner/, headlines/ as the corpora write them; dev and test text marked."""
    with open(root / "news.txt", "w", encoding="utf-8") as f:
        for _ in range(60):
            for _ in range(rng.randint(3, 6)):
                f.write(" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) + " 。\n")
            f.write("\n")
    for name in ("reviews", "ner", "headlines"):
        (root / name).mkdir()
    for split, count in zip(("train", "dev", "test"), n):
        with open(root / "reviews" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            for _ in range(count):
                label = rng.choice(["pos", "neg"])
                fill = "".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
                f.write(f"{fill}{rng.choice(GOOD if label == 'pos' else BAD)}{_mark(split, rng)}{fill}\t{label}\n")
        with open(root / "headlines" / f"{split}.tsv", "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            for _ in range(count):
                topic = rng.choice(sorted(TOPICS))
                words = [rng.choice(TOPICS[topic]), rng.choice(WORDS), rng.choice(TOPICS[topic])]
                f.write(f"{''.join(words)}{_mark(split, rng)}\t{topic}\n")
        with open(root / "ner" / f"{split}.conll", "w", encoding="utf-8") as f:
            for _ in range(count // 2):
                rows = []
                for part in (rng.choice(PEOPLE), "在", rng.choice(PLACES), _mark(split, rng), rng.choice(WORDS)):
                    kind = "PER" if part in PEOPLE else "LOC" if part in PLACES else None
                    rows += [(c, "O" if kind is None else ("B-" if i == 0 else "I-") + kind) for i, c in enumerate(part)]
                f.write("".join(f"{c} {t}\n" for c, t in rows) + "\n")
    return root / "news.txt", root / "reviews", root / "ner", root / "headlines"


def test_stratified_subsets_are_nested_exact_and_stratified():
    rows = [(f"a{i}", "a") for i in range(60)] + [(f"b{i}", "b") for i in range(30)] + [(f"c{i}", "c") for i in range(10)]
    sub = zh.stratified_subsets(rows, [10, 25, 100])
    assert {n: len(v) for n, v in sub.items()} == {10: 10, 25: 25, 100: 100}
    # shares 0.6 / 0.3 / 0.1: 10 -> 6/3/1; 25 -> 15/7.5/2.5 -> 15/8/2 (largest remainder, ties by label: b first)
    assert Counter(y for _, y in sub[10]) == {"a": 6, "b": 3, "c": 1}
    assert Counter(y for _, y in sub[25]) == {"a": 15, "b": 8, "c": 2}
    assert set(sub[10]) <= set(sub[25]) <= set(sub[100]) == set(rows)
    assert zh.stratified_subsets(rows, [25]) == {25: sub[25]}  # fixed by the seed


def test_no_dev_or_test_text_enters_pretraining(tmp_path):
    news, reviews, ner, headlines = zh_inputs(tmp_path, random.Random(0))
    d = zh.write_data(tmp_path / "out", news, reviews, ner, headlines, quick=True, repeats={"headlines": 2})
    corpus = "".join(p.read_text(encoding="utf-8") for p in zh.pretraining_files(d))
    assert MARK["dev"] not in corpus and MARK["test"] not in corpus
    for name in ("reviews", "headlines"):  # while every training text is in it (spaces are word boundaries)
        train = zh._rows(d["labels"][name]["train"]["all"])
        assert len(train) == 400 and all(t in corpus.replace(" ", "") for t, _ in train)
        assert MARK["dev"] in d["labels"][name]["dev"].read_text(encoding="utf-8")
        assert [len(zh._rows(p)) for p in d["labels"][name]["train"].values()] == [100, 300, 400]  # no 1,000 of 400
    assert d["pretraining_text"]["headlines"]["repeats"] == 2
    assert d["pretraining_text"]["ner"]["items"] == 200 and d["ner"]["pretraining_sentences"] == 200
    ner_text = d["pretraining_text"]["ner"]["path"].read_text(encoding="utf-8")
    assert ner_text.count("\n\n") == 200 // 10 - 1  # 10 sentences a document
    held = d["news"]["heldout"].read_text(encoding="utf-8")
    assert held and held.split("\n\n")[0] not in d["news"]["train"].read_text(encoding="utf-8")  # article 0 held out
    assert d["news"]["articles"] == 60 and held.count("\n\n") == 60 // 20 - 1


def test_the_crf_baseline_chooses_c1_on_dev_and_scores_test_once(tmp_path):
    pytest.importorskip("sklearn_crfsuite")
    _, _, ner, _ = zh_inputs(tmp_path, random.Random(1), n=(120, 40, 40))
    r = zh.crf_baseline(ner / "train.conll", ner / "dev.conll", ner / "test.conll", "0.05,5", 30, out=tmp_path / "crf.json")
    assert set(r["dev_f1_by_c1"]) == {"0.05", "5"}
    assert r["dev_f1_by_c1"][f"{r['c1']:g}"] == max(r["dev_f1_by_c1"].values())  # the best on dev
    assert r["dev_f1"] == r["dev_f1_by_c1"][f"{r['c1']:g}"]
    assert r["examples"] == 20 and r["train_sentences"] == 60  # test scored once, on all its sentences
    # a name and a place per sentence (40 entities), from closed lists: learnt, though the unseen
    # marker character beside the place costs some of them
    assert r["f1"] > 0.8 and r["f1"] == pytest.approx(2 * r["precision"] * r["recall"] / (r["precision"] + r["recall"]))
    assert json.loads((tmp_path / "crf.json").read_text()) == json.loads(json.dumps(r))
    assert zh.char_features(list("王明在"), 0) == {"b": 1.0, "c": "王", "digit": False, "alpha": False, "c-2": "<s>",
                                                  "c-1": "<s>", "c1": "明", "c2": "在", "bi0": "王明"}


def _result(pre_f1=0.60, rnd_f1=0.50, predicted=100, points=None):
    test = lambda f1, n: {"f1": f1, "precision": f1, "recall": f1, "predicted": n, "per_type": {"PER": {"f1": f1}}}  # noqa: E731
    run = {"steps": 10, "seconds": 1.0, "evals": [{"f1": 0.5}], "first": {}, "last": {}}
    points = points or {"100": (0.70, 0.60, 0.75), "1000": (0.82, 0.70, 0.80), "all": (0.90, 0.85, 0.88)}
    return {"ner": {"pretrained": run, "random": run, "pretrained_test": test(pre_f1, predicted),
                    "random_test": test(rnd_f1, 90), "crf_head": True,
                    "crf": {"f1": 0.7, "dev_f1": 0.7, "c1": 0.2, "iterations": 50, "seconds": 3.0, "precision": 0.7,
                            "recall": 0.7, "per_type": {}}},
            "labels": {"reviews": {"test_majority": 0.52, "task": "reviews", "points": {
                label: {"labels": 100 if label == "100" else 1000 if label == "1000" else 5000,
                        "pretrained": {"test": {"accuracy": p}, "steps": 5}, "random": {"test": {"accuracy": q}, "steps": 5},
                        "tfidf": {"test_accuracy": t, "C": 1.0}} for label, (p, q, t) in points.items()}}}}


def _verdicts(r):
    return zh.ner_gap(r), zh.ner_degenerate(r), zh.label_wins(r)


def test_the_verdicts():
    gap, why, wins = _verdicts(_result())
    assert gap == pytest.approx(0.10) and why is None
    assert wins == [("reviews", "1000")]  # 0.82 >= 0.80 at 1,000; 0.70 < 0.75 at 100; "all" does not count
    _, why, _ = _verdicts(_result(pre_f1=0.0, predicted=0))
    assert why == "degenerate: the pretrained model predicts no entity on test"
    # at or above TF-IDF but no better than the majority class: not a win
    _, _, wins = _verdicts(_result(points={"100": (0.52, 0.5, 0.40), "1000": (0.50, 0.5, 0.45)}))
    assert wins == []
    rows = zh.headline(_result())
    assert rows[0] == ["zh", "MSRA NER, pretrained then fine-tuned: test entity F1", "0.6000"]
    assert rows[-1][2] == "0.8200 / 0.7000 / 0.8000"
