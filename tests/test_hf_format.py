"""The "new Hugging Face format" worked example (docs/extending/hf-format.md): berts.hf.roberta, a
post-LN RoBERTa directory, both ways against transformers, and the page's code is the module's."""
import json
import re
from pathlib import Path

import pytest
import torch

import berts
from berts import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
from berts.errors import UserError
from berts.hf import ARCHITECTURES, FORMATS, check_weights, read_config
from conftest import padded_batch, randomize

ATOL = 1e-5
ROOT = Path(__file__).resolve().parent.parent
transformers = pytest.importorskip("transformers")


def config(**kw) -> BertConfig:
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64, num_labels=3,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **kw)


@pytest.mark.parametrize("cls,auto,field", [
    (BertModel, "AutoModel", "last_hidden_state"),
    (BertForMaskedLM, "AutoModelForMaskedLM", "logits"),
    (BertForSequenceClassification, "AutoModelForSequenceClassification", "logits"),
])
def test_saved_as_roberta_transformers_computes_the_same(tmp_path, cls, auto, field):
    model = randomize(cls(config())).eval()
    model.save_pretrained(tmp_path / "m", format="roberta")
    saved = json.loads((tmp_path / "m/config.json").read_text())
    assert saved["model_type"] == "roberta" and saved["architectures"] == [cls.__name__.replace("Bert", "Roberta")]
    assert saved["max_position_embeddings"] == 64 + 0 + 1  # RoBERTa's positions start at pad + 1
    names = set(berts.hf.weight_shapes(tmp_path / "m/model.safetensors"))
    assert "embeddings.position_embeddings.weight" in {n.removeprefix("roberta.") for n in names}
    assert not any(n.startswith("bert.") for n in names)
    theirs, info = getattr(transformers, auto).from_pretrained(tmp_path / "m", output_loading_info=True)
    assert type(theirs).__name__ == saved["architectures"][0]
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    b, real = padded_batch(), padded_batch()["attention_mask"].bool()
    with torch.no_grad():
        ours, hf = model(**b), theirs.eval()(**b)
    if cls is BertForSequenceClassification:
        diff = (ours.logits - hf.logits).abs().max()
    else:  # padding positions differ by construction (RoBERTa gives them the pad position)
        diff = (getattr(ours, field if cls is BertModel else "prediction_logits")[real] - getattr(hf, field)[real]).abs().max()
    assert diff < ATOL
    if cls is BertModel:
        assert (ours.pooler_output - hf.pooler_output).abs().max() < ATOL
    back = berts.load(tmp_path / "m")  # and back into berts: the same parameters, bit for bit
    assert type(back) is cls and back.config.max_position_embeddings == 64 and back.config.norm_position == "post"
    for (n, p), q in zip(model.named_parameters(), back.parameters()):
        assert torch.equal(p, q), n
    fit = check_weights(cls(read_config(tmp_path / "m")), tmp_path / "m")  # berts info's check
    assert not fit["missing"] and not fit["unexpected"]
    assert ARCHITECTURES[saved["architectures"][0]] == cls.__name__


@pytest.mark.filterwarnings("ignore:.*newly initialised")
def test_a_roberta_transformers_made_loads(tmp_path):
    """transformers' own RoBERTa directory (pad id 1, one token type) into berts: the same logits."""
    hc = transformers.RobertaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=37, max_position_embeddings=40, type_vocab_size=1,
                                    pad_token_id=1, layer_norm_eps=1e-5)
    torch.manual_seed(0)
    theirs = transformers.RobertaForMaskedLM(hc).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.2)
    theirs.save_pretrained(tmp_path / "hf")
    ours = berts.load(tmp_path / "hf")
    assert type(ours) is BertForMaskedLM and ours.config.pad_token_id == 1
    assert ours.config.max_position_embeddings == 40 - 2 and ours.config.layer_norm_eps == 1e-5
    assert not ours.loading_info["missing_keys"] and not ours.loading_info["unexpected_keys"]
    b = padded_batch()
    b["input_ids"][b["attention_mask"] == 0] = 1  # RoBERTa's pad id; no real token is 1 (ids from 5)
    b["token_type_ids"].zero_()
    real = b["attention_mask"].bool()
    with torch.no_grad():
        want, got = theirs(**b), ours.eval()(**b)
    assert (got.prediction_logits[real] - want.logits[real]).abs().max() < ATOL


def test_a_model_roberta_cannot_say_is_refused_in_one_line(tmp_path):
    for model, why in [(BertModel(config(norm_position="pre")), "norm_position pre"),
                       (berts.BertForPreTraining(config()), "BertForPreTraining has no RoBERTa twin"),
                       (BertModel(config(embedding_size=16)), "factorized embedding")]:
        with pytest.raises(UserError, match=why) as exc:
            model.save_pretrained(tmp_path / "m", format="roberta")
        assert "\n" not in str(exc.value)
    assert not (tmp_path / "m").exists()  # refused before anything was written
    with pytest.raises(UserError, match="model_type 'gpt2' is not supported"):
        BertModel(config()).save_pretrained(tmp_path / "m", format="gpt2")
    BertModel(config()).save_pretrained(tmp_path / "m")  # not asked for: a post-LN model stays BERT
    assert json.loads((tmp_path / "m/config.json").read_text())["model_type"] == "bert"


def test_the_worked_example_is_the_module():
    """docs/extending/hf-format.md shows berts/hf/roberta.py whole: the page cannot drift from what runs."""
    page = (ROOT / "docs/extending/hf-format.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    module = (ROOT / "src/berts/hf/roberta.py").read_text(encoding="utf-8")
    assert module in blocks
    assert "roberta" in FORMATS and "from berts.hf import" in (ROOT / "src/berts/hf/__init__.py").read_text()
