"""SQuAD v1.1 / v2.0 and CMRC 2018 metrics (berts.metrics.qa) on hand-computed cases."""
import pytest

from berts.metrics.qa import (cmrc_em, cmrc_f1, cmrc_scores, exact_match, f1, longest_common_substring,
                              mixed_segmentation, normalize_answer, squad_scores, squad_v2_scores)


def test_squad_normalisation_and_pair_scores():
    # lower -> "the  cat, sat!"; punctuation -> "the  cat sat"; articles -> "  cat sat"; spaces -> "cat sat"
    assert normalize_answer("The  Cat, sat!") == "cat sat"
    assert normalize_answer("An apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # only whole words are articles
    assert exact_match("the Denver Broncos.", "Denver Broncos") == 1
    # pred tokens cat sat on mat (4), gold cat on mat (3): common 3, P = 3/4, R = 1, F1 = 1.5/1.75 = 6/7
    assert f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    assert f1("", "") == 1.0 and f1("x", "") == 0.0 and f1("red", "blue") == 0.0


def test_squad_v1_totals():
    answers = {"q1": ["Denver Broncos", "The Denver Broncos"], "q2": ["Paris"], "q3": ["1990"]}
    preds = {"q1": "Denver Broncos", "q2": "in Paris France"}  # q3 missing: 0 on both, counted in the total
    # q1: EM 1, F1 1. q2: EM 0; pred in/paris/france (3) vs paris (1): P 1/3, R 1, F1 = (2/3)/(4/3) = 1/2
    # EM = 100 * 1/3; F1 = 100 * (1 + 1/2) / 3 = 50
    s = squad_scores(preds, answers)
    assert s["exact_match"] == pytest.approx(100 / 3) and s["f1"] == pytest.approx(50.0) and s["total"] == 3


def test_squad_v2_has_no_answer_and_best_threshold():
    answers = {"q1": ["Paris"], "q2": [], "q3": ["blue whale"], "q4": []}
    preds = {"q1": "Paris", "q2": "", "q3": "whale", "q4": "something"}
    na = {"q1": 0.1, "q2": 0.9, "q3": 0.4, "q4": 0.6}
    # raw: q1 EM 1 F1 1; q2 "" vs no answer: 1 and 1; q3 EM 0, F1 (P 1, R 1/2) = 2/3; q4 0 and 0
    raw = squad_v2_scores(preds, answers)
    assert raw["exact"] == pytest.approx(50.0) and raw["f1"] == pytest.approx(100 * (2 + 2 / 3) / 4)
    assert raw["HasAns_total"] == 2 and raw["NoAns_total"] == 2 and raw["NoAns_exact"] == 50.0
    # threshold 0.5: q2 (0.9) and q4 (0.6) become "no answer", both right -> 1
    # exact = (1 + 1 + 0 + 1) / 4 = 75; f1 = (1 + 1 + 2/3 + 1) / 4 = 11/12
    s = squad_v2_scores(preds, answers, na_probs=na, na_prob_thresh=0.5)
    assert s["exact"] == pytest.approx(75.0) and s["f1"] == pytest.approx(100 * 11 / 12)
    assert s["HasAns_exact"] == pytest.approx(50.0) and s["HasAns_f1"] == pytest.approx(100 * (5 / 3) / 2)
    assert s["NoAns_exact"] == 100.0 and s["NoAns_f1"] == 100.0
    # best threshold (exact): start at 2 (both NoAns right when nothing is answered); by probability:
    # q1 +1 -> 3 (best, thresh 0.1); q3 +0 -> 3; q4 answered wrongly -1 -> 2; q2 answered "" +0 -> 2
    assert s["best_exact"] == pytest.approx(75.0) and s["best_exact_thresh"] == 0.1
    # f1: q1 +1 -> 3 (0.1); q3 +2/3 -> 11/3 (best, thresh 0.4); q4 -1; q2 0 -> 100 * (11/3) / 4
    assert s["best_f1"] == pytest.approx(100 * 11 / 12) and s["best_f1_thresh"] == 0.4


def test_cmrc_segmentation_and_scores():
    # each Chinese character alone; "in 2018" split into words; the full-width comma removed
    assert mixed_segmentation("北京大学 in 2018年，") == ["北", "京", "大", "学", "in", "2018", "年"]
    assert mixed_segmentation("Hello, World 3.5") == ["hello", ",", "world", "3.5"]  # ASCII ',' is not in sp_char
    # substring, not subsequence: 北京的大学 vs 北京大学 share 北京 (2); P 2/5, R 2/4, F1 = 0.4 / 0.9 = 4/9
    assert longest_common_substring(list("北京的大学"), list("北京大学")) == 2
    assert cmrc_f1("北京的大学", ["北京大学"]) == pytest.approx(4 / 9)
    # 北京大学的 vs 北京大学: 4 in common, P 4/5, R 1, F1 = 1.6 / 1.8 = 8/9; max with 清华 (0)
    assert cmrc_f1("北京大学的", ["清华", "北京大学"]) == pytest.approx(8 / 9)
    assert cmrc_em("《红楼梦》", ["红楼梦"]) == 1
    assert cmrc_em("红楼梦。", ["红楼梦."]) == 0  # 。 is removed, the ASCII . is not
    s = cmrc_scores({"a": "北京大学的", "b": "《红楼梦》"}, {"a": ["北京大学"], "b": ["红楼梦"], "c": ["x"]})
    # EM (0 + 1 + 0) / 3; F1 (8/9 + 1 + 0) / 3
    assert s["exact_match"] == pytest.approx(100 / 3) and s["f1"] == pytest.approx(100 * (17 / 9) / 3)
    assert s["skipped"] == 1 and s["total"] == 3 and s["average"] == pytest.approx((s["exact_match"] + s["f1"]) / 2)
