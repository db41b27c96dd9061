"""The model against transformers: same outputs both ways, exact parameter counts, sparse MLM."""
import json
import warnings

import pytest
import torch
import transformers

import berts
from berts import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from conftest import padded_batch, randomize

ATOL = 1e-5

BERT_PAIRS = [
    (BertModel, transformers.BertModel),
    (BertForPreTraining, transformers.BertForPreTraining),
    (BertForMaskedLM, transformers.BertForMaskedLM),
    (BertForSequenceClassification, transformers.BertForSequenceClassification),
]
ALBERT_PAIRS = [
    (BertModel, transformers.AlbertModel),
    (BertForPreTraining, transformers.AlbertForPreTraining),
    (BertForMaskedLM, transformers.AlbertForMaskedLM),
    (BertForSequenceClassification, transformers.AlbertForSequenceClassification),
]
FIELDS = {  # our field -> transformers' field
    "last_hidden_state": "last_hidden_state", "pooler_output": "pooler_output",
    "prediction_logits": "prediction_logits", "seq_relationship_logits": "seq_relationship_logits",
    "logits": "logits", "loss": "loss", "hidden_states": "hidden_states", "attentions": "attentions",
}


def hf_load(hf_cls, directory, eager=False):
    kwargs = {"attn_implementation": "eager"} if eager else {}
    return hf_cls.from_pretrained(directory, **kwargs).eval()


def compare(ours, theirs, batch, *, labels=None, albert=False):
    """Run both models on one padded batch (hidden states and attentions asked for)."""
    kw = dict(batch, output_hidden_states=True, output_attentions=True)
    with torch.no_grad():
        a = ours(**kw)
        b = theirs(**kw)
    checked = 0
    for mine, their in FIELDS.items():
        if albert and their == "seq_relationship_logits":
            their = "sop_logits"
        x, y = getattr(a, mine, None), getattr(b, their, None)
        if x is None or y is None:
            continue
        if mine == "prediction_logits" and getattr(a, "logits", None) is not None and their == "prediction_logits":
            continue
        xs = x if isinstance(x, tuple) else (x,)
        ys = y if isinstance(y, tuple) else (y,)
        assert len(xs) == len(ys), mine
        for u, v in zip(xs, ys):
            assert u.shape == v.shape, (mine, u.shape, v.shape)
            torch.testing.assert_close(u, v, atol=ATOL, rtol=0, msg=lambda m: f"{mine}: {m}")
        checked += 1
    assert checked >= 3
    return a, b


def labelled(cls, batch):
    g = torch.Generator().manual_seed(1)
    out = {}
    if cls in (BertForPreTraining, BertForMaskedLM):
        labels = torch.full_like(batch["input_ids"], -100)
        pick = (torch.rand(batch["input_ids"].shape, generator=g) < 0.3) & (batch["attention_mask"] == 1)
        labels[pick] = batch["input_ids"][pick]
        out["labels"] = labels
    if cls is BertForPreTraining:
        out["next_sentence_label"] = torch.tensor([0, 1, 1])
    if cls is BertForSequenceClassification:
        out["labels"] = torch.tensor([0, 2, 1])
    return out


@pytest.mark.parametrize("ours_cls,hf_cls", BERT_PAIRS, ids=[p[0].__name__ for p in BERT_PAIRS])
def test_bert_ours_to_transformers(tmp_path, tiny_config, ours_cls, hf_cls):
    cfg = tiny_config.replace(num_labels=3)
    model = randomize(ours_cls(cfg)).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == [ours_cls.__name__]
    batch = padded_batch()
    theirs = hf_load(hf_cls, tmp_path, eager=True)
    compare(model, theirs, batch)
    # dense logits when no labels; the loss with labels (sparse for us) equals transformers' dense loss
    lab = labelled(ours_cls, batch)
    if lab and ours_cls is not BertForPreTraining:
        with torch.no_grad():
            la, lb = model(**batch, **lab).loss, theirs(**batch, **lab).loss
        torch.testing.assert_close(la, lb, atol=ATOL, rtol=0)
    if ours_cls is BertForPreTraining:
        with torch.no_grad():
            la, lb = model(**batch, **lab).loss, theirs(**batch, **lab).loss
        torch.testing.assert_close(la, lb, atol=ATOL, rtol=0)


@pytest.mark.parametrize("ours_cls,hf_cls", BERT_PAIRS, ids=[p[0].__name__ for p in BERT_PAIRS])
def test_bert_transformers_to_ours(tmp_path, ours_cls, hf_cls):
    hf_config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, max_position_embeddings=64, num_labels=3)
    theirs = randomize(hf_cls(hf_config)).eval()
    theirs.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a complete checkpoint loads without any warning
        model = ours_cls.from_pretrained(tmp_path).eval()
    compare(model, hf_load(hf_cls, tmp_path, eager=True), padded_batch())
    assert type(berts.load(tmp_path)) is ours_cls


@pytest.mark.parametrize("share", ["all", "none"])
@pytest.mark.parametrize("ours_cls,hf_cls", ALBERT_PAIRS, ids=[p[0].__name__ for p in ALBERT_PAIRS])
def test_albert_both_ways(tmp_path, ours_cls, hf_cls, share):
    cfg = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
                     max_position_embeddings=64, embedding_size=16, share_layers=share, hidden_act="gelu_new",
                     num_labels=3)
    model = randomize(ours_cls(cfg)).eval()
    model.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["model_type"] == "albert"
    assert config["num_hidden_groups"] == (1 if share == "all" else 3)
    compare(model, hf_load(hf_cls, tmp_path / "ours", eager=True), padded_batch(), albert=True)

    theirs = hf_load(hf_cls, tmp_path / "ours")
    randomize(theirs, seed=5).save_pretrained(tmp_path / "theirs")
    back = berts.load(tmp_path / "theirs").eval()
    assert type(back) is ours_cls and back.config.share_layers == share
    compare(back, hf_load(hf_cls, tmp_path / "theirs", eager=True), padded_batch(), albert=True)


def test_parameter_counts_match_transformers():
    ours = BertModel(berts.preset("base"))
    with torch.device("meta"):
        theirs = transformers.BertModel(transformers.BertConfig(vocab_size=30522))
        albert = transformers.AlbertModel(transformers.AlbertConfig(
            vocab_size=30000, embedding_size=128, hidden_size=768, num_attention_heads=12, intermediate_size=3072))
    assert ours.num_parameters() == theirs.num_parameters() == 109_482_240
    assert BertModel(berts.preset("albert-base")).num_parameters() == albert.num_parameters() == 11_683_584


@pytest.mark.parametrize("share", ["attention", "ffn", "all"])
def test_partial_sharing_round_trip(tmp_path, tiny_config, share):
    """A configuration transformers cannot express keeps our fields and loads back exactly."""
    cfg = tiny_config.replace(share_layers=share, num_hidden_layers=3)
    model = randomize(BertForPreTraining(cfg)).eval()
    n_shared = model.num_parameters()
    assert n_shared < BertForPreTraining(tiny_config.replace(num_hidden_layers=3)).num_parameters()
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["share_layers"] == share
    back = berts.load(tmp_path).eval()
    assert back.config.share_layers == share and back.num_parameters() == n_shared
    layers = back.bert.encoder.layers
    if share in ("attention", "all"):
        assert layers[0].attention is layers[2].attention
    if share in ("ffn", "all"):
        assert layers[0].ffn is layers[2].ffn
    batch = padded_batch()
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).prediction_logits, model(**batch).prediction_logits, atol=0, rtol=0)
        # transformers reads the layers written out once per use and computes the same function
        hf = transformers.BertForPreTraining.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(hf(**batch).prediction_logits, model(**batch).prediction_logits, atol=ATOL, rtol=0)


def test_missing_heads_are_initialised_with_a_warning(tmp_path, tiny_config):
    randomize(BertModel(tiny_config)).save_pretrained(tmp_path)  # a bare encoder, pooler but no heads
    with pytest.warns(UserWarning, match=r"newly initialised: .*cls\.predictions\.bias.*cls\.seq_relationship"):
        model = BertForPreTraining.from_pretrained(tmp_path)
    assert set(model.loading_info["missing_keys"]) == {
        "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
        "cls.seq_relationship.weight", "cls.seq_relationship.bias"}
    encoder = BertModel.from_pretrained(tmp_path)
    torch.testing.assert_close(model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    # and a classifier from a pretraining checkpoint: the classifier is new, the MLM head is unused
    model.save_pretrained(tmp_path / "pt")
    with pytest.warns(UserWarning) as record:
        BertForSequenceClassification.from_pretrained(tmp_path / "pt")
    text = " ".join(str(r.message) for r in record)
    assert "classifier.weight" in text and "not used" in text and "cls.predictions.bias" in text


def test_sparse_mlm_equals_dense(tiny_config):
    model = randomize(BertForPreTraining(tiny_config)).eval()
    batch = padded_batch()
    lab = labelled(BertForPreTraining, batch)["labels"]
    with torch.no_grad():
        sparse = model(**batch, labels=lab)
        dense_logits = model(**batch).prediction_logits
    dense = torch.nn.functional.cross_entropy(dense_logits.reshape(-1, 99), lab.reshape(-1), ignore_index=-100)
    assert sparse.prediction_logits.shape == (int((lab != -100).sum()), 99)
    assert abs(sparse.losses["mlm"].item() - dense.item()) < 1e-6
    # the flat positions + ids form (our collator's) gives the same
    flat = lab.reshape(-1)
    pos = (flat != -100).nonzero().squeeze(1)
    with torch.no_grad():
        again = model(**batch, mlm_positions=pos, mlm_labels=flat[pos])
    assert again.loss.item() == sparse.loss.item()


def test_span_boundary_head(tiny_config):
    cfg = tiny_config.replace(span_boundary_objective=True)
    model = BertForPreTraining(cfg)
    batch = padded_batch()
    pos = torch.tensor([2, 3, 4, 20])
    out = model(**batch, mlm_positions=pos, mlm_labels=torch.tensor([7, 8, 9, 10]),
                sbo_left=torch.tensor([1, 1, 1, 19]), sbo_right=torch.tensor([5, 5, 5, 21]),
                sbo_rel=torch.tensor([0, 1, 2, 0]))
    assert set(out.losses) == {"mlm", "sbo"}
    torch.testing.assert_close(out.loss, out.losses["mlm"] + out.losses["sbo"])
    out.loss.backward()
    assert model.sbo.dense1.weight.grad.abs().sum() > 0


def test_config_errors_are_user_errors(tmp_path):
    with pytest.raises(berts.UserError, match="num_attention_heads"):
        BertConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(berts.UserError, match="share_layers"):
        BertConfig(share_layers="some")
    with pytest.raises(berts.UserError, match="no config.json"):
        berts.load(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert",\n "hidden_size": }')
    with pytest.raises(berts.UserError, match=r"config.json:2: invalid JSON"):
        berts.hf.load_config(tmp_path / "config.json")


def test_load_config_reads_a_file_a_directory_or_a_preset(tmp_path, tiny_config):
    randomize(BertModel(tiny_config.replace(embedding_size=16))).save_pretrained(tmp_path)
    for where in (tmp_path, tmp_path / "config.json"):
        cfg = berts.hf.load_config(where)
        assert cfg.embedding_size == 16 and cfg.hidden_size == 32 and cfg.share_layers == "none"
    assert berts.load_config("mini") == berts.preset("mini")
    with pytest.raises(berts.UserError, match=r"nowhere: no such config file or preset \(presets: .*mini"):
        berts.hf.load_config("nowhere")
    assert not hasattr(BertConfig, "load")  # reading config.json is hf's job (config imports no hf)


def test_config_json_errors_name_the_file(tmp_path):
    """Valid JSON that is no object, or a config error: one line naming config.json (issue 13)."""
    import berts
    from berts.errors import UserError
    from berts.hf import load_config

    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text("[]")
    for call in (lambda: berts.load(d), lambda: load_config(d), lambda: berts.BertModel.from_pretrained(d)):
        with pytest.raises(UserError) as e:
            call()
        assert str(e.value) == f"{d / 'config.json'}: not a model config (a JSON object expected, got list)"
    (d / "config.json").write_text('{"num_hidden_layers": 0}')
    with pytest.raises(UserError) as e:
        load_config(d)
    assert str(e.value) == (f"{d / 'config.json'}: invalid model config: num_hidden_layers must be a positive "
                            "integer, got 0")
