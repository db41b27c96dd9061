"""Entity-level tagging metrics (berts.metrics.tagging) equal seqeval's, default and strict mode,
on many random tag sequences; token accuracy and invalid-transition counts by hand."""
import random

import pytest

from berts.metrics.tagging import entities, entity_scores, tagging_report, token_accuracy

seqeval = pytest.importorskip("seqeval")
pytestmark = pytest.mark.filterwarnings("ignore:.*seems not to be NE tag")
from seqeval import metrics as sm
from seqeval.scheme import IOB1, IOB2, IOBES


def random_sequences(rng, prefixes, types=("PER", "LOC", "ORG"), n=60):
    tags = ["O"] + [f"{p}-{t}" for p in prefixes for t in types]
    return [[rng.choice(tags) for _ in range(rng.randint(0, 12))] for _ in range(n)]


def seqeval_report(y_true, y_pred, **kw):
    return sm.classification_report(y_true, y_pred, output_dict=True, zero_division=0, **kw)


def assert_same(ours, theirs):
    assert ours["support"] == theirs["micro avg"]["support"]
    for k, k2 in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
        assert ours[k] == pytest.approx(theirs["micro avg"][k2], abs=1e-12)
        assert ours["macro"][k] == pytest.approx(theirs["macro avg"][k2], abs=1e-12)
        assert ours["weighted"][k] == pytest.approx(theirs["weighted avg"][k2], abs=1e-12)
    types = {t for t in theirs if not t.endswith(" avg")}
    # seqeval lists the types of the gold and predicted entities; so do we
    assert set(ours["per_type"]) == types
    for t in types:
        assert ours["per_type"][t]["support"] == theirs[t]["support"]
        assert ours["per_type"][t]["f1"] == pytest.approx(theirs[t]["f1-score"], abs=1e-12)
        assert ours["per_type"][t]["precision"] == pytest.approx(theirs[t]["precision"], abs=1e-12)
        assert ours["per_type"][t]["recall"] == pytest.approx(theirs[t]["recall"], abs=1e-12)


@pytest.mark.parametrize("prefixes", ["BI", "BIES", "I", "BIESM"])
@pytest.mark.parametrize("seed", range(8))
def test_default_mode_equals_seqeval(prefixes, seed):
    rng = random.Random(seed)
    y_true = random_sequences(rng, prefixes)
    y_pred = [[t if rng.random() < 0.6 else rng.choice(["O"] + [f"{p}-PER" for p in prefixes]) for t in s]
              for s in y_true]
    ours = entity_scores(y_true, y_pred)
    assert_same(ours, seqeval_report(y_true, y_pred))
    assert ours["f1"] == pytest.approx(sm.f1_score(y_true, y_pred, zero_division=0), abs=1e-12)
    assert token_accuracy(y_true, y_pred) == pytest.approx(sm.accuracy_score(y_true, y_pred))
    for s in y_true:  # seqeval's end is inclusive, ours exclusive
        assert [(t, a, b + 1) for t, a, b in sm.sequence_labeling.get_entities(s)] == entities(s)


@pytest.mark.parametrize("scheme,theirs,prefixes", [("BIO", IOB2, "BI"), ("IOB2", IOB2, "BI"),
                                                     ("IOB1", IOB1, "BI"), ("BIOES", IOBES, "BIES")])
@pytest.mark.parametrize("seed", range(8))
def test_strict_mode_equals_seqeval(scheme, theirs, prefixes, seed):
    rng = random.Random(100 + seed)
    y_true = random_sequences(rng, prefixes, types=("PER", "LOC"))
    y_pred = [[t if rng.random() < 0.7 else rng.choice(["O", f"{prefixes[0]}-PER", "I-LOC"]) for t in s]
              for s in y_true]
    ours = entity_scores(y_true, y_pred, mode="strict", scheme=scheme)
    if not ours["per_type"]:
        return
    assert_same(ours, seqeval_report(y_true, y_pred, mode="strict", scheme=theirs))


@pytest.mark.parametrize("scheme,prefixes", [("BIO", "BI"), ("IOB1", "BI"), ("BIOES", "BIES"), ("IO", "I"),
                                             ("BMES", "BMES")])
def test_to_bio_keeps_the_entities_default_mode_reads(scheme, prefixes):
    """berts.data.tagging.to_bio and the lenient reader agree: converting never changes the entities."""
    from berts.data.tagging import to_bio

    rng = random.Random(7)
    for seq in random_sequences(rng, prefixes, n=300):
        assert entities(to_bio(seq, scheme)) == entities(seq, scheme=scheme), seq


def test_bmes_strict_reads_m_as_i():
    tags = ["B-PER", "M-PER", "E-PER", "S-LOC", "B-ORG", "O"]
    assert entities(tags, "strict", "BMES") == [("PER", 0, 3), ("LOC", 3, 4)]  # B-ORG never closed
    assert entities(tags, scheme="BMES") == [("PER", 0, 3), ("LOC", 3, 4), ("ORG", 4, 5)]  # lenient
    # seqeval's own default reader, given raw M tags, loses "B-PER M-PER" before a B-PER; we read M as I
    assert entities(["B-PER", "M-PER", "B-PER"], scheme="BMES") == [("PER", 0, 2), ("PER", 2, 3)]


def test_by_hand_and_invalid_transitions():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    y_pred = [["O", "I-PER", "O", "B-LOC"], ["O", "B-LOC"]]
    # default: pred entities PER(1,2) (O I-PER opens one), LOC(3,4), LOC(s2,1,2); gold PER(0,2), LOC(3,4), ORG(1,2)
    # tp = 1 (LOC 3-4): P = 1/3, R = 1/3, F1 = 1/3; accuracy: B-PER/O and B-ORG/B-LOC wrong -> 4 of 6
    r = tagging_report(y_true, y_pred, scheme="BIO")
    assert (r["tp"], r["predicted"], r["true"]) == (1, 3, 3)
    assert r["f1"] == pytest.approx(1 / 3) and r["accuracy"] == pytest.approx(4 / 6)
    assert r["per_type"]["LOC"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1}
    assert r["invalid_transitions"] == {"predicted": 1, "gold": 0, "predicted_by_kind": {"O -> I-PER": 1},
                                        "gold_by_kind": {}}
    # strict BIO: "O I-PER" is no entity -> 2 predicted, tp 1: P = 1/2, R = 1/3, F1 = 2/5
    s = tagging_report(y_true, y_pred, scheme="BIO", mode="strict")
    assert (s["tp"], s["predicted"]) == (1, 2) and s["f1"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="needs a scheme"):
        entity_scores(y_true, y_pred, mode="strict")


def test_entity_confusion_hand_counted_spans():
    from berts.metrics.tagging import entity_confusion, entity_report

    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"],
            ["O", "O", "B-PER", "O"],
            ["B-LOC", "I-LOC", "I-LOC"]]
    pred = [["B-PER", "O", "O", "B-ORG", "O", "O", "O"],  # PER cut short (still PER), LOC taken for ORG, ORG missed
            ["B-LOC", "O", "B-PER", "I-PER"],  # a LOC where there is nothing (spurious), PER one word too long
            ["B-PER", "B-LOC", "I-LOC"]]  # LOC overlapped by PER (1 word) and LOC (2 words): LOC wins
    c = entity_confusion(gold, pred, scheme="BIO")
    assert c["labels"] == ["LOC", "ORG", "PER", "(none)"]
    assert c["matrix"] == [[1, 1, 0, 0],   # gold LOC: once LOC (sentence 3), once ORG (sentence 1)
                           [0, 0, 0, 1],   # gold ORG: missed
                           [0, 0, 2, 0],   # gold PER: twice PER, boundaries aside
                           [1, 0, 0, 0]]   # nothing there: one spurious LOC (the PER of sentence 3 overlaps a gold one)
    assert c["missed"] == {"LOC": 0, "ORG": 1, "PER": 0} and c["spurious"] == {"LOC": 1, "ORG": 0, "PER": 0}
    report = tagging_report(gold, pred, scheme="BIO")
    assert report["entity_confusion"] == c
    shaped = entity_report(report)  # what evaluate prints and draws
    assert [x["name"] for x in shaped["classes"]] == ["LOC", "ORG", "PER"]
    assert shaped["confusion"] == c["matrix"] and shaped["confusion_labels"] == c["labels"]
    # gold rows add up to each type's support
    assert [sum(row) for row in c["matrix"][:3]] == [x["support"] for x in shaped["classes"]] == [2, 1, 2]
