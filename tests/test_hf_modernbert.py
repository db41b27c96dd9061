"""ModernBERT directories both ways (berts/hf/modernbert.py): transformers' ModernBert* load in berts
with the same logits on padded inputs longer than the window, and a berts modern model saves as a
directory transformers reloads with the same logits (1e-5)."""
import json
import warnings

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import (ModernBertConfig, ModernBertForMaskedLM, ModernBertForSequenceClassification,  # noqa: E402
                          ModernBertModel)

from berts import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel  # noqa: E402
from berts.errors import UserError  # noqa: E402
from berts.hf import load  # noqa: E402
from conftest import randomize  # noqa: E402

ATOL = 1e-5
HF = {"ModernBertForMaskedLM": ModernBertForMaskedLM, "ModernBertForSequenceClassification":
      ModernBertForSequenceClassification, "ModernBertModel": ModernBertModel}


def hf_config(**changes):
    d = dict(vocab_size=99, hidden_size=32, intermediate_size=24, num_hidden_layers=4, num_attention_heads=4,
             max_position_embeddings=64, local_attention=8, global_attn_every_n_layers=3, pad_token_id=0,
             bos_token_id=1, eos_token_id=2, cls_token_id=1, sep_token_id=2, num_labels=3)
    d.update(changes)
    return ModernBertConfig(**d)


def batch(seq=21):
    """Three rows, two padded; 21 tokens against a window of 8 (4 each side): local layers bite."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 99, (3, seq), generator=g)
    mask = torch.ones(3, seq, dtype=torch.long)
    mask[1, 15:] = 0
    mask[2, 6:] = 0
    ids[mask == 0] = 0
    return ids, mask


def outputs(model, ids, mask):
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask)
    real = mask.bool()
    if getattr(out, "logits", None) is None:
        return out.last_hidden_state[real]
    return out.logits[real] if out.logits.dim() == 3 else out.logits


def max_diff(a, b):
    return float((a - b).abs().max())


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("arch,pooling", [("ModernBertForMaskedLM", "cls"), ("ModernBertModel", "cls"),
                                          ("ModernBertForSequenceClassification", "cls"),
                                          ("ModernBertForSequenceClassification", "mean")])
def test_transformers_modernbert_loads_with_the_same_logits(tmp_path, arch, pooling, attn):
    theirs = randomize(HF[arch](hf_config(classifier_pooling=pooling, attn_implementation=attn))).eval()
    theirs.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ModernBertModel has no pooler: ours is newly initialised
        ours = load(tmp_path).eval()
    c = ours.config
    assert (c.sliding_window, c.global_attn_every_n_layers, c.rope_theta, c.local_rope_theta) == (8, 3, 160000.0, 1e4)
    ids, mask = batch()
    want = outputs(theirs, ids, mask)
    assert max_diff(outputs(ours, ids, mask), want) < ATOL
    ours.set_fast_path(unpad=True, pack=True)  # the fast paths read the same directory the same way
    assert max_diff(outputs(ours, ids, mask), want) < ATOL


def modern_config(**changes):
    d = dict(vocab_size=99, hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=24,
             max_position_embeddings=64, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
             position_embedding_type="rope", rope_theta=160000.0, local_rope_theta=10000.0, sliding_window=8,
             global_attn_every_n_layers=3, norm_position="pre", ffn="glu", bias=False, type_vocab_size=0,
             first_attn_norm=False, pooler_act="gelu", pooler_norm=True, layer_norm_eps=1e-5)
    d.update(changes)
    return BertConfig(**d)


@pytest.mark.parametrize("changes", [{}, {"bias": True}, {"bias": False, "norm_bias": True},
                                     {"classifier_pooling": "mean", "hidden_act": "gelu_pytorch_tanh"},
                                     {"sliding_window": None}],
                         ids=["modern", "bias", "norm-bias", "mean-tanh", "no-window"])
@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForSequenceClassification, BertModel],
                         ids=lambda c: c.__name__)
def test_berts_modern_model_saves_as_modernbert(tmp_path, cls, changes):
    ours = randomize(cls(modern_config(**changes)), seed=3).eval()  # biases nonzero: head norm's too
    ours.save_pretrained(tmp_path)  # chosen by itself: the model fits the format
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "modernbert"
    arch = saved["architectures"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = HF[arch].from_pretrained(tmp_path, attn_implementation="eager").eval()
    ids, mask = batch()
    assert max_diff(outputs(theirs, ids, mask), outputs(ours, ids, mask)) < ATOL
    back = load(tmp_path).eval()  # and berts reads its own ModernBERT directory back
    assert type(back) is cls
    assert max_diff(outputs(back, ids, mask), outputs(ours, ids, mask)) < ATOL


def test_config_maps_to_modernbert_and_back():
    from berts.hf.mapping import config_from_hf_dict, config_to_hf_dict

    config = modern_config(bias=True, norm_bias=False, classifier_pooling="mean")
    d = config_to_hf_dict(config, BertForSequenceClassification)
    assert d["model_type"] == "modernbert" and d["local_attention"] == 8
    assert d["layer_types"] == ["full_attention", "sliding_attention", "sliding_attention", "full_attention"]
    assert (d["attention_bias"], d["mlp_bias"], d["norm_bias"]) == (True, True, False)
    back = config_from_hf_dict(d)
    for name in ("position_embedding_type", "rope_theta", "local_rope_theta", "sliding_window",
                 "global_attn_every_n_layers", "norm_position", "ffn", "bias", "norm_bias", "type_vocab_size",
                 "first_attn_norm", "classifier_pooling", "pooler_act", "pooler_norm", "layer_norm_eps"):
        assert getattr(back, name) == getattr(config, name), name


@pytest.mark.parametrize("changes,why", [({"norm_type": "rmsnorm"}, "norm_type rmsnorm"),
                                         ({"norm_position": "post", "first_attn_norm": True}, "norm_position post"),
                                         ({"type_vocab_size": 2}, "type_vocab_size 2"),
                                         ({"first_attn_norm": True}, "first_attn_norm"),
                                         ({"position_embedding_type": "absolute"}, "absolute positions")])
def test_a_switch_modernbert_cannot_say_refuses_in_one_line(tmp_path, changes, why):
    model = BertForMaskedLM(modern_config(**changes))
    with pytest.raises(UserError, match=why) as err:
        model.save_pretrained(tmp_path / "out", format="modernbert")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    model.save_pretrained(tmp_path / "auto")  # by itself: the berts format, which says everything
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["model_type"] == "berts"
    back = load(tmp_path / "auto").eval()
    ids, mask = batch()
    assert max_diff(outputs(back, ids, mask), outputs(model.eval(), ids, mask)) == 0.0


def test_bert_formats_refuse_the_modern_switches(tmp_path):
    model = BertModel(BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                 intermediate_size=24, position_embedding_type="rope"))
    for fmt in ("bert", "roberta"):
        with pytest.raises(UserError, match="position_embedding_type rope"):
            model.save_pretrained(tmp_path / fmt, format=fmt)
