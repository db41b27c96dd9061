"""Issue 30, class 2: a model of the wrong kind is refused in one line, from config.json, before
any weight is read (berts.hf.kinds.require_kind: generate, distill, predict/evaluate, the Python
API), naming what the directory holds and what the command needs."""
from __future__ import annotations

import string

import pytest
import torch

from berts.cli import main
from berts.errors import UserError
from berts.hf.kinds import model_kind, require_kind
from berts.model.config import BertConfig
from berts.model.heads import BertForMaskedLM, BertForSequenceClassification, BertForUnifiedLM


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from berts.tokenizer.wordpiece import Tokenizer

    root = tmp_path_factory.mktemp("kinds")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    cfg = dict(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    labels = dict(num_labels=2, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1})
    BertForMaskedLM(BertConfig(**cfg)).save_pretrained(root / "mlm", tok)
    clf = BertForSequenceClassification(BertConfig(**cfg, **labels))
    clf.config.finetune_data = {"task": "classification", "text_column": "text", "pair_column": None,
                                          "label_column": "label"}
    clf.save_pretrained(root / "clf", tok)
    pair = BertForSequenceClassification(BertConfig(**cfg, **labels))
    pair.config.finetune_data = {"task": "classification", "text_column": "a", "pair_column": "b",
                                           "label_column": "label"}
    pair.save_pretrained(root / "pair", tok)
    ee = BertForSequenceClassification(BertConfig(**cfg, **labels))
    ee.config.extra["berts_early_exit"] = {"width": 16, "heads": 1}
    ee.save_pretrained(root / "exits", tok)
    BertForSequenceClassification(BertConfig(**cfg, num_labels=1)).save_pretrained(root / "reg", tok)
    lm = BertForUnifiedLM(BertConfig(**cfg))
    lm.config.extra["berts_lm_mode"] = "left-to-right"
    lm.save_pretrained(root / "clm", tok)
    return root


def _no_weights_read(monkeypatch):
    import berts.hf.io as io

    def refuse(*a, **k):
        raise AssertionError("weights were read before the kind was checked")
    monkeypatch.setattr(io, "read_state_dict", refuse)


def test_generate_refuses_every_model_not_trained_to_generate(dirs, capsys, monkeypatch):
    _no_weights_read(monkeypatch)
    for name, found in (("clf", "2-label classifier"), ("exits", "early-exit 2-label classifier"),
                        ("mlm", "never trained to generate"), ("reg", "regression model")):
        assert main(["generate", str(dirs / name), "--prompt", "the a"]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and found in err and "needs a language model trained to generate" in err, err
    assert require_kind(dirs / "clm", "generation", "generate").lm_mode == "left-to-right"


def test_classifier_consumers_refuse_other_kinds_before_the_weights(dirs, monkeypatch):
    from berts.compress.students import load_teacher
    from berts.serve.predict import Classifier

    _no_weights_read(monkeypatch)
    with pytest.raises(UserError, match=r"BertForMaskedLM \(a masked language model.*needs a fine-tuned sequence"):
        Classifier.from_pretrained(dirs / "mlm")
    with pytest.raises(UserError, match=r"BertForUnifiedLM \(a language model trained left-to-right\)"):
        Classifier.from_pretrained(dirs / "clm")
    with pytest.raises(UserError, match="task distillation .* needs a classifier of labels fine-tuned"):
        load_teacher(dirs / "mlm", need="classifier")
    with pytest.raises(UserError, match="regression model"):
        load_teacher(dirs / "reg", need="classifier")
    with pytest.raises(UserError, match=r"a BertForSequenceClassification \(a 2-label classifier\) without an MLM head"):
        load_teacher(dirs / "clf", need="mlm")  # general distillation
    assert model_kind(dirs / "clf").heads == {"classifier"} and model_kind(dirs / "mlm").heads == {"mlm"}


def test_predict_with_or_without_pairs_must_match_the_model(dirs):
    from berts.serve.predict import Classifier

    one, two = Classifier.from_pretrained(dirs / "clf", device="cpu"), Classifier.from_pretrained(dirs / "pair", device="cpu")
    with pytest.raises(UserError, match="one-sentence model"):
        one.predict(["the a"], pairs=["a the"])
    with pytest.raises(UserError, match="sentence-pair model.*pairs="):
        two.predict(["the a"])
    assert [p.label in ("no", "yes") for p in one.predict(["the a"]) + two.predict(["the a"], pairs=["a"])] == [True] * 2
