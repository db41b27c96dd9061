"""Every fast path against its plain path: the same numbers within 1e-5 (fp32), gradients included."""
import warnings

import pytest
import torch

from berts import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from berts.model import compile_model
from conftest import padded_batch, randomize

ATOL = 1e-5


def configs():
    bert = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64, num_labels=3,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    albert = bert.replace(embedding_size=16, share_layers="all", hidden_act="gelu_new", num_hidden_layers=3)
    return {"bert": bert, "albert": albert}


def labels_for(cls, batch):
    g = torch.Generator().manual_seed(1)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    if cls in (BertForPreTraining, BertForMaskedLM):
        pick = (torch.rand(ids.shape, generator=g) < 0.3) & (mask == 1)
        labels = torch.where(pick, ids, -100)
        out = {"labels": labels}
        if cls is BertForPreTraining:
            out["next_sentence_label"] = torch.tensor([0, 1, 1])
        return out
    if cls is BertForSequenceClassification:
        return {"labels": torch.tensor([0, 2, 1])}
    return {}


def run(model, batch, fast: dict, train: bool):
    """Forward (+ backward in train mode): the outputs that do not look at padding, and the grads."""
    model.set_fast_path(**fast)
    model.train(train)
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    real = batch["attention_mask"].bool()
    got = {"hidden": out["last_hidden_state"][real]}
    for name in ("loss", "logits", "prediction_logits", "seq_relationship_logits", "pooler_output"):
        value = getattr(out, name, None)
        if value is not None:  # dense [B, S, ...] outputs: the real positions
            got[name] = value[real] if value.shape[:2] == real.shape else value
    if train:
        loss = getattr(out, "loss", None)
        (loss if loss is not None else out["last_hidden_state"][real].square().mean()).backward()
        got.update({f"grad:{n}": p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    return got


def assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=ATOL, rtol=0, msg=lambda m: f"{k}: {m}")


CLASSES = [BertModel, BertForPreTraining, BertForMaskedLM, BertForSequenceClassification]


@pytest.mark.parametrize("arch", ["bert", "albert"])
@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@pytest.mark.parametrize("train", [False, True], ids=["eval", "train"])
def test_unpad_equals_plain(cls, arch, train):
    model = randomize(cls(configs()[arch]))
    batch = dict(padded_batch(), **labels_for(cls, padded_batch()))
    plain = run(model, batch, {"unpad": False}, train)
    fast = run(model, batch, {"unpad": True}, train)
    assert_same(plain, fast)


def test_unpad_with_position_ids_and_default_switch():
    model = randomize(BertForPreTraining(configs()["bert"]))
    batch = padded_batch()
    batch["position_ids"] = torch.arange(13).flip(0)[None]  # any ids: the fast path gathers them
    assert_same(run(model, batch, {"unpad": False}, False), run(model, batch, {"unpad": True}, False))
    # default (None): on while training, off in eval, where padding positions match transformers too
    model.set_fast_path(unpad=None).eval()
    with torch.no_grad():
        full = model(**batch).last_hidden_state
    assert full[batch["attention_mask"] == 0].abs().sum() > 0
    with pytest.raises(ValueError, match="unknown fast path"):
        model.set_fast_path(warp_drive=True)


def test_compile_falls_back_with_a_warning(monkeypatch):
    model = randomize(BertForSequenceClassification(configs()["bert"])).eval()
    batch = padded_batch()

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(UserWarning, match="torch.compile is unavailable.*plain"):
        same = compile_model(model)
    assert same is model
    with torch.no_grad():
        assert same(**batch).logits.shape == (3, 3)
