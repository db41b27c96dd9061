"""The model side of the engine contract (losses, metrics, loss_counts, metric_parts, loss_parts),
and the two worked examples of the docs: a new objective, and a new head (task model)."""
import json

import pytest
import torch
import torch.nn.functional as F
import transformers
from torch import nn

import berts
from berts import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from berts.model.heads import BertTaskModel, register_task_model
from berts.objectives import OBJECTIVES, MaskedLM, Objective, Result, register
from berts.objectives.base import accuracy
from conftest import padded_batch, randomize

ATOL = 1e-5


# ------------------------------------------------------ worked example 1: a new objective
@register
class LengthParity(Objective, nn.Linear):
    """Is the sequence's length even? From the pooled [CLS] (a toy)."""

    name = "length_parity"
    parts = ("parity",)
    metric_parts = {"parity_acc": "parity"}
    batch_keys = ("attention_mask",)
    hf_names = {"": {"bert": "cls.length_parity.", "albert": "length_parity."}}

    def __init__(self, config):
        nn.Linear.__init__(self, config.hidden_size, 2)

    def counts(self, batch):
        return {"parity": int(batch["input_ids"].shape[0])}

    def forward(self, enc, batch, picked):  # picked: None (it asked for the pooled [CLS] only)
        logits = F.linear(enc.pooler_output, self.weight, self.bias)
        y = batch["attention_mask"].sum(1) % 2
        return Result({"logits": logits}, {"parity": F.cross_entropy(logits.float(), y)},
                      {"parity_acc": accuracy(logits, y)})


@register_task_model
class BertForMaskedLMAndParity(BertTaskModel):
    hf_architectures = {"bert": "BertForMaskedLMAndParity", "albert": "AlbertForMaskedLMAndParity"}
    objective_names = ("mlm", "parity")

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config)
        self.mlm = MaskedLM(config, self.bert.embeddings.word_embeddings)
        self.parity = LengthParity(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        return self.run(input_ids, attention_mask, token_type_ids, targets=dict(labels=labels))


# ----------------------------------------------------- worked example 2: a new head
@register
class TokenClassification(Objective, nn.Linear):
    """A label per token (-100: none), from the last hidden states."""

    name = "token_classification"
    parts = ("task",)
    metric_parts = {"train_acc": "task"}
    batch_keys = ("labels",)
    hf_names = {"": {"bert": "classifier.", "albert": "classifier."}}

    def __init__(self, config):
        nn.Linear.__init__(self, config.hidden_size, config.num_labels)

    def rows(self, batch):
        return None  # every position

    def counts(self, batch):
        return {"task": int((batch["labels"] != -100).sum())} if "labels" in batch else {}

    def forward(self, enc, batch, picked):
        logits = F.linear(enc.last_hidden_state, self.weight, self.bias)  # [B, S, num_labels]
        out = Result({"logits": logits})
        if "labels" in batch:
            keep = batch["labels"] != -100
            out.losses["task"] = F.cross_entropy(logits[keep].float(), batch["labels"][keep])
            out.metrics["train_acc"] = accuracy(logits[keep], batch["labels"][keep])
        return out


# not registered (berts.load's registry is process-wide): berts has a built-in class of this name
# (berts.tasks.token_classification), which the test below checks reads this head's directory
class BertForTokenClassification(BertTaskModel):
    hf_architectures = {"bert": "BertForTokenClassification", "albert": "AlbertForTokenClassification"}
    objective_names = ("classifier",)

    def __init__(self, config):
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifier = TokenClassification(config)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None):
        return self.run(input_ids, attention_mask, token_type_ids, targets=dict(labels=labels))


# ------------------------------------------------------------------------ the examples run
def test_a_new_objective_loss_counts_and_round_trip(tmp_path, tiny_config):
    model = randomize(BertForMaskedLMAndParity(tiny_config)).eval()
    batch = padded_batch()  # lengths 13, 9, 5: all odd
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, 2], labels[1, 4] = batch["input_ids"][0, 2], batch["input_ids"][1, 4]
    out = model(**batch, labels=labels)
    assert set(out.losses) == set(model.loss_counts(dict(batch, labels=labels))) == {"mlm", "parity"}
    assert model.loss_counts(dict(batch, labels=labels)) == {"mlm": 2, "parity": 3}
    assert model.metric_parts == {"mlm_acc": "mlm", "parity_acc": "parity"} and model.loss_parts == ("mlm", "parity")
    hand = -torch.log_softmax(out.logits, -1)[:, 1].mean()  # all odd: class 1
    torch.testing.assert_close(out.losses["parity"], hand)
    torch.testing.assert_close(out.metrics["parity_acc"], (out.logits.argmax(-1) == 1).float().mean())
    torch.testing.assert_close(out.loss, out.losses["mlm"] + out.losses["parity"])
    assert out.losses["parity"].requires_grad and not out.metrics["parity_acc"].requires_grad
    assert OBJECTIVES["length_parity"] is LengthParity
    model.save_pretrained(tmp_path)
    names = json.loads((tmp_path / "config.json").read_text())["architectures"]
    assert names == ["BertForMaskedLMAndParity"]
    from safetensors.torch import load_file
    assert {"cls.length_parity.weight", "cls.length_parity.bias", "cls.predictions.bias"} <= set(
        load_file(str(tmp_path / "model.safetensors")))
    back = berts.load(tmp_path).eval()
    assert type(back) is BertForMaskedLMAndParity
    torch.testing.assert_close(back(**batch, labels=labels).loss, out.loss, atol=0, rtol=0)


def test_a_new_head_loads_in_transformers(tmp_path, tiny_config):
    cfg = tiny_config.replace(num_labels=5)
    model = randomize(BertForTokenClassification(cfg)).eval()
    batch = padded_batch()
    labels = torch.randint(0, 5, (3, 13), generator=torch.Generator().manual_seed(3))
    labels[batch["attention_mask"] == 0] = -100
    with torch.no_grad():
        out = model(**batch, labels=labels)
    keep = labels != -100
    hand = -torch.log_softmax(out.logits[keep], -1).gather(1, labels[keep][:, None]).mean()
    torch.testing.assert_close(out.loss, hand)
    assert model.loss_counts(dict(batch, labels=labels)) == {"task": int(keep.sum())} == {"task": 27}
    model.save_pretrained(tmp_path)
    theirs = transformers.BertForTokenClassification.from_pretrained(tmp_path).eval()  # the same names
    with torch.no_grad():
        ref = theirs(**batch, labels=labels)
    torch.testing.assert_close(out.logits, ref.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.loss, ref.loss, atol=ATOL, rtol=0)
    # berts has a built-in class of that name now (berts.tasks.token_classification): it reads the
    # example's directory, with the same logits
    back = berts.load(tmp_path).eval()
    assert type(back).__name__ == "BertForTokenClassification"
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).logits, out.logits, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------------- contract
def pretraining_batch(**extra):
    batch = padded_batch()
    pos = torch.tensor([1, 2, 14, 15, 27])
    return dict(batch, mlm_positions=pos, mlm_labels=batch["input_ids"].reshape(-1)[pos], **extra)


@pytest.mark.parametrize("pair", ["next_sentence_label", "sentence_order_label", None])
@pytest.mark.parametrize("sbo", [False, True])
def test_pretraining_losses_metrics_and_counts(tiny_config, pair, sbo):
    model = randomize(BertForPreTraining(tiny_config.replace(span_boundary_objective=sbo))).train()
    extra = {pair: torch.tensor([0, 1, 1])} if pair else {}
    if sbo:
        extra.update(sbo_left=torch.tensor([0, 0, 13, 13, 26]), sbo_right=torch.tensor([3, 3, 16, 16, 28]),
                     sbo_rel=torch.tensor([0, 1, 0, 1, 0]))
    batch = pretraining_batch(**extra)
    out = model(**batch)
    part = {"next_sentence_label": "nsp", "sentence_order_label": "sop"}.get(pair)
    expected = {"mlm"} | ({"sbo"} if sbo else set()) | ({part} if part else set())
    counts = model.loss_counts(batch)
    assert set(out.losses) == set(counts) == expected
    assert counts["mlm"] == 5 and counts.get("sbo", 5) == 5 and counts.get(part, 3) == 3
    assert all(v.requires_grad for v in out.losses.values())
    torch.testing.assert_close(out.loss, sum(out.losses.values()))
    # the numbers: the MLM part and accuracy by hand, from the returned logits
    torch.testing.assert_close(out.losses["mlm"], F.cross_entropy(out.prediction_logits, batch["mlm_labels"]))
    torch.testing.assert_close(out.metrics["mlm_acc"],
                               (out.prediction_logits.argmax(-1) == batch["mlm_labels"]).float().mean())
    if part:
        y = batch[pair]
        torch.testing.assert_close(out.losses[part], F.cross_entropy(out.seq_relationship_logits, y))
        torch.testing.assert_close(out.metrics[f"{part}_acc"],
                                   (out.seq_relationship_logits.argmax(-1) == y).float().mean())
    assert set(out.metrics) == {f"{p}_acc" for p in expected}
    assert all(not m.requires_grad and m.dim() == 0 for m in out.metrics.values())
    assert set(out.metrics) <= set(model.metric_parts) and set(model.metric_parts.values()) <= set(model.loss_parts)
    assert model.loss_parts == ("mlm",) + (("sbo",) if sbo else ()) + ("nsp", "sop")


def test_transformers_style_labels_count_the_predicted_positions(tiny_config):
    model = BertForMaskedLM(tiny_config)
    labels = torch.full((3, 13), -100)
    labels[0, :4] = 7
    batch = dict(padded_batch(), labels=labels)
    assert model.loss_counts(batch) == {"mlm": 4}
    assert set(model(**batch).losses) == {"mlm"} and model(**padded_batch()).losses is None


def test_classification_and_regression_parts(tiny_config):
    clf = BertForSequenceClassification(tiny_config.replace(num_labels=3))
    batch = dict(padded_batch(), labels=torch.tensor([0, 2, 1]))
    out = clf(**batch)
    assert set(out.losses) == set(clf.loss_counts(batch)) == {"task"} and clf.loss_counts(batch) == {"task": 3}
    torch.testing.assert_close(out.metrics["train_acc"], (out.logits.argmax(-1) == batch["labels"]).float().mean())
    reg = BertForSequenceClassification(tiny_config.replace(num_labels=1))
    out = reg(**dict(batch, labels=torch.tensor([0.5, 1.0, -1.0])))
    assert set(out.losses) == {"task"} and out.metrics is None and reg.is_regression
    torch.testing.assert_close(out.loss, F.mse_loss(out.logits.squeeze(-1), torch.tensor([0.5, 1.0, -1.0])))


def test_a_misspelled_keyword_is_a_type_error(tiny_config):
    for cls in (BertForPreTraining, BertForMaskedLM, BertForSequenceClassification, BertModel):
        with pytest.raises(TypeError):
            cls(tiny_config)(**padded_batch(), next_sentence_labels=torch.tensor([0, 1, 1]))


def test_a_parameter_no_mapping_knows_fails_on_save(tmp_path, tiny_config):
    class WithExtra(BertForSequenceClassification):
        def __init__(self, config):
            super().__init__(config)
            self.adapter = nn.Linear(4, 4)

    with pytest.raises(berts.UserError, match=r"^WithExtra: no Hugging Face name for parameter\(s\) "
                                              r"adapter.weight, adapter.bias"):
        WithExtra(tiny_config).save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()
