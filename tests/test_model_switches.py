"""cramming's model switches (issue 11): norm_position pre, ffn glu, bias false.

Each against a reference forward written here from the raw parameters; pre-LN against
transformers' roberta-prelayernorm both ways; GLU / no-bias saved in the berts format that
transformers refuses and berts reloads bit-exactly; every fast path, the layer-by-layer path
and the KV cache equal to the plain path; a short training run learns.
"""
import json
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import berts
from berts import BertConfig, BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from berts.model.attention import causal_mask
from berts.errors import UserError
from conftest import padded_batch, randomize
from train_utils import cli, pretrain_args, shards  # noqa: F401 (fixture)

ATOL = 1e-5
transformers = pytest.importorskip("transformers")


def config(**switches) -> BertConfig:
    return BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=37, max_position_embeddings=64, num_labels=3,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, **switches)


SWITCHES = {
    "pre": dict(norm_position="pre"),
    "glu": dict(ffn="glu"),
    "nobias": dict(bias=False),
    "pre-glu-nobias": dict(norm_position="pre", ffn="glu", bias=False),
}


# ------------------------------------------------------------------ the reference forward
def reference(model: BertModel, ids, mask, types):
    """BERT from the raw parameters, nanoGPT-style: (last hidden state [B, S, H], pooled [B, H])."""
    c = model.config
    p = dict(model.named_parameters())

    def ln(x, name):  # a LayerNorm with or without its bias
        return F.layer_norm(x, x.shape[-1:], p[name + ".weight"], p.get(name + ".bias"), c.layer_norm_eps)

    def linear(x, name):
        return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))

    b, s = ids.shape
    x = (p["embeddings.word_embeddings.weight"][ids] + p["embeddings.position_embeddings.weight"][:s]
         + p["embeddings.token_type_embeddings.weight"][types])
    x = ln(x, "embeddings.LayerNorm")
    bias = torch.zeros(b, 1, 1, s).masked_fill(mask[:, None, None, :] == 0, float("-inf"))
    nh, hd = c.num_attention_heads, c.hidden_size // c.num_attention_heads
    for i in range(c.num_hidden_layers):
        L = f"encoder.layers.{i}."
        h = ln(x, L + "attention.norm") if c.norm_position == "pre" else x
        q, k, v = linear(h, L + "attention.qkv").split(c.hidden_size, -1)
        q, k, v = (t.view(b, s, nh, hd).transpose(1, 2) for t in (q, k, v))  # [B, heads, S, d]
        att = (q @ k.transpose(-1, -2) / math.sqrt(hd) + bias).softmax(-1)
        ctx = (att @ v).transpose(1, 2).reshape(b, s, c.hidden_size)
        x = x + linear(ctx, L + "attention.out")
        x = x if c.norm_position == "pre" else ln(x, L + "attention.norm")
        h = ln(x, L + "ffn.norm") if c.norm_position == "pre" else x
        up = linear(h, L + "ffn.up")
        if c.ffn == "glu":
            a, gate = up[..., :c.intermediate_size], up[..., c.intermediate_size:]
            inner = F.gelu(gate) * a
        else:
            inner = F.gelu(up)
        x = x + linear(inner, L + "ffn.down")
        x = x if c.norm_position == "pre" else ln(x, L + "ffn.norm")
    if c.norm_position == "pre":
        x = ln(x, "encoder.final_norm")
    return x, torch.tanh(linear(x[:, 0], "pooler.dense"))


@pytest.mark.parametrize("name", list(SWITCHES) + ["default"])
def test_reference_forward(name):
    model = randomize(BertModel(config(**SWITCHES.get(name, {})))).eval()
    b = padded_batch()
    with torch.no_grad():
        out = model(**b)
        want, pooled = reference(model, b["input_ids"], b["attention_mask"], b["token_type_ids"])
    torch.testing.assert_close(out.last_hidden_state, want, atol=ATOL, rtol=0)
    torch.testing.assert_close(out.pooler_output, pooled, atol=ATOL, rtol=0)


def test_parameters_of_each_switch():
    h, i = 32, 37
    names = lambda m: {n for n, _ in m.named_parameters()}
    post, pre = BertModel(config()), BertModel(config(norm_position="pre"))
    assert names(pre) - names(post) == {"encoder.final_norm.weight", "encoder.final_norm.bias"}
    assert post.encoder.final_norm is None  # post-LN state dicts unchanged
    glu = BertModel(config(ffn="glu"))
    assert glu.encoder.layers[0].ffn.up.weight.shape == (2 * i, h)  # I stays; the up matrix doubles
    assert glu.num_parameters() - post.num_parameters() == 2 * (i * h + i)
    nobias = BertModel(config(bias=False))
    gone = names(post) - names(nobias)
    # every Linear and LayerNorm of the encoder lose their bias; the pooler keeps its own
    assert all(n.endswith(".bias") for n in gone) and "pooler.dense.bias" in names(nobias)
    assert not any(n.endswith(".bias") for n in names(nobias) if n.startswith(("encoder.", "embeddings.")))
    per_layer = 3 * h + h + i + h + 2 * h  # qkv, out, up, down, two LayerNorms
    assert len(gone) == 2 * 6 + 1 and sum(post.get_parameter(n).numel() for n in gone) == 2 * per_layer + h


@pytest.mark.parametrize("field,value,message", [
    ("norm_position", "middle", "norm_position must be one of post, pre, got 'middle'"),
    ("ffn", "swiglu", "ffn must be one of standard, glu, got 'swiglu'"),
    ("bias", "no", "bias must be true or false, got 'no'"),
])
def test_bad_values_are_one_line_errors(field, value, message):
    with pytest.raises(UserError, match=f"^invalid model config: {message}$"):
        config(**{field: value})


def test_switches_reach_the_yaml_and_set_keys(tmp_path):
    from berts.config.schema import PretrainConfig, load_config

    p = tmp_path / "c.yaml"
    p.write_text("model:\n  preset: tiny\n  norm_position: pre\n  ffn: glu\n")
    cfg = load_config(PretrainConfig, p, ["model.bias=false"])
    assert cfg.model.overrides == {"norm_position": "pre", "ffn": "glu", "bias": False}
    with pytest.raises(UserError, match="model.bias"):
        load_config(PretrainConfig, p, ["model.bias=maybe"])


# ------------------------------------------------------------- fast paths, layer by layer
PLAIN = {"unpad": False, "pack": False, "sparse_output": False}
FAST = [{"unpad": True, "pack": False, "sparse_output": False}, {"unpad": True, "pack": True, "sparse_output": False},
        {"unpad": False, "pack": False, "sparse_output": True}, {"unpad": True, "pack": True, "sparse_output": True}]


def labels(cls, batch):
    if cls is BertForSequenceClassification:
        return {"labels": torch.tensor([0, 2, 1])}
    g = torch.Generator().manual_seed(1)
    pick = (torch.rand(batch["input_ids"].shape, generator=g) < 0.3) & (batch["attention_mask"] == 1)
    out = {"labels": torch.where(pick, batch["input_ids"], -100)}
    if cls is BertForPreTraining:
        out["next_sentence_label"] = torch.tensor([0, 1, 1])
    return out


def run(model, batch, fast, train):
    model.set_fast_path(**fast).train(train)
    model.zero_grad(set_to_none=True)
    out = model(**batch)
    real = batch["attention_mask"].bool()
    got = {k: getattr(out, k) for k in ("loss", "logits", "prediction_logits", "seq_relationship_logits",
                                         "pooler_output") if getattr(out, k, None) is not None}
    if train:
        out.loss.backward()
        got.update({f"grad:{n}": p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    if "logits" in got and got["logits"].shape[:2] == real.shape:
        got["logits"] = got["logits"][real]
    return got


@pytest.mark.parametrize("fast", FAST, ids=["unpad", "pack", "sparse_output", "all"])
@pytest.mark.parametrize("name", list(SWITCHES))
@pytest.mark.parametrize("cls", [BertForPreTraining, BertForSequenceClassification])
def test_fast_paths_equal_plain(cls, name, fast):
    model = randomize(cls(config(**SWITCHES[name])))
    batch = dict(padded_batch(), **labels(cls, padded_batch()))
    plain, got = run(model, batch, PLAIN, True), run(model, batch, fast, True)
    assert plain.keys() == got.keys() and any(k.startswith("grad:bert.encoder.final_norm") for k in got) == (
        "pre" in name)
    for k in plain:
        torch.testing.assert_close(got[k], plain[k], atol=ATOL, rtol=0, msg=lambda m: f"{k}: {m}")


@pytest.mark.parametrize("unpad", [False, True])
def test_layer_by_layer_and_early_exit_rows_pre_ln(unpad):
    model = randomize(BertModel(config(norm_position="pre", ffn="glu"))).eval()
    model.set_fast_path(unpad=unpad, pack=unpad)
    b = padded_batch()
    with torch.no_grad():
        full = model(**b, output_hidden_states=True)
        state = model.embed(b["input_ids"], b["attention_mask"], b["token_type_ids"])
        state = model.run_layer(0, state)
        between = model.encoder.readout(state.hidden(), 1)  # what an early-exit head reads after layer 1
        kept = model.run_layer(1, state.select(torch.tensor([2, 0])))
    real = b["attention_mask"].bool()
    # the last layer's output is normalised wherever it is read; states between layers are the raw
    # residual stream, and readout normalises them as final_norm does
    torch.testing.assert_close(full.hidden_states[-1][real], full.last_hidden_state[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(full.hidden_states[1][real], state.hidden()[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(between, model.encoder.final_norm(state.hidden()), atol=ATOL, rtol=0)
    assert model.encoder.readout(full.last_hidden_state, 2) is full.last_hidden_state
    rows = real[[2, 0]]
    torch.testing.assert_close(kept.hidden()[rows], full.last_hidden_state[[2, 0]][rows], atol=ATOL, rtol=0)
    torch.testing.assert_close(model.pool(kept), full.pooler_output[[2, 0]], atol=ATOL, rtol=0)


def test_kv_cache_decode_equals_a_causal_forward_pre_ln():
    model = randomize(BertForMaskedLM(config(norm_position="pre", ffn="glu", bias=False))).eval()
    ids = torch.tensor([[2, 11, 12, 13, 14, 21, 22, 23, 24]])
    with torch.no_grad():
        full = model.bert(ids, causal_mask(9)).last_hidden_state
        cache = model.bert.new_cache()
        first = model.bert.decode(ids[:, :4], cache, mask=causal_mask(4)[:, 0])
        steps = [first] + [model.bert.decode(ids[:, i:i + 1], cache) for i in range(4, 9)]
        torch.testing.assert_close(torch.cat(steps, 1), full, atol=ATOL, rtol=0)
        # greedy decoding: the same ids from the cache as from full causal forwards
        seq, cache = ids[:, :4], model.bert.new_cache()
        h = model.bert.decode(seq, cache, mask=causal_mask(4)[:, 0])[:, -1:]
        cached, plain = [], []
        for _ in range(5):
            nxt = model.mlm.predict(h).argmax(-1)  # [1, 1]
            cached.append(int(nxt))
            h = model.bert.decode(nxt, cache)
        for _ in range(5):
            last = model.bert(seq, causal_mask(seq.shape[1])).last_hidden_state[:, -1]
            nxt = model.mlm.predict(last).argmax(-1)
            plain.append(int(nxt))
            seq = torch.cat([seq, nxt[:, None]], 1)
    assert cached == plain


# ------------------------------------------------------------ transformers: roberta-prelayernorm
def hf_inputs():
    """A padded batch as RoBERTa reads it: pad id 0 = our pad_token_id, right padding, two types."""
    return padded_batch()


@pytest.mark.parametrize("cls,hf_cls,field", [
    (BertModel, "RobertaPreLayerNormModel", "last_hidden_state"),
    (BertForMaskedLM, "RobertaPreLayerNormForMaskedLM", "logits"),
    (BertForSequenceClassification, "RobertaPreLayerNormForSequenceClassification", "logits"),
])
def test_pre_ln_saves_as_roberta_prelayernorm(tmp_path, cls, hf_cls, field):
    model = randomize(cls(config(norm_position="pre"))).eval()
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m/config.json").read_text())
    assert saved["model_type"] == "roberta-prelayernorm" and saved["architectures"] == [hf_cls]
    assert saved["max_position_embeddings"] == 64 + 0 + 1  # RoBERTa's positions start at pad + 1
    theirs, info = getattr(transformers, hf_cls).from_pretrained(tmp_path / "m", output_loading_info=True)
    assert type(transformers.AutoModel.from_pretrained(tmp_path / "m")).__name__ == "RobertaPreLayerNormModel"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    b, real = hf_inputs(), hf_inputs()["attention_mask"].bool()
    with torch.no_grad():
        ours, hf = model(**b), theirs.eval()(**b)
    if field == "logits" and cls is BertForSequenceClassification:
        torch.testing.assert_close(ours.logits, hf.logits, atol=ATOL, rtol=0)
    else:  # padding positions differ by construction (RoBERTa gives them the pad position)
        torch.testing.assert_close(getattr(ours, field if cls is BertModel else "prediction_logits")[real],
                                   getattr(hf, field)[real], atol=ATOL, rtol=0)
    if cls is BertModel:
        torch.testing.assert_close(ours.pooler_output, hf.pooler_output, atol=ATOL, rtol=0)
        with torch.no_grad():  # per layer too: the raw residual stream, the last one normalised, as there
            mine, theirs_h = model(**b, output_hidden_states=True).hidden_states, theirs(**b, output_hidden_states=True)
        assert len(mine) == len(theirs_h.hidden_states) == 3
        for x, y in zip(mine, theirs_h.hidden_states):
            torch.testing.assert_close(x[real], y[real], atol=ATOL, rtol=0)
    back = berts.load(tmp_path / "m")
    assert type(back) is cls and back.config.norm_position == "pre" and back.config.max_position_embeddings == 64
    for (n, p), q in zip(model.named_parameters(), back.parameters()):
        assert torch.equal(p, q), n


@pytest.mark.filterwarnings("ignore:.*newly initialised")
def test_roberta_prelayernorm_from_transformers_loads(tmp_path):
    """A directory transformers made (its own pad id 1, random weights) into berts: the same outputs."""
    hc = transformers.RobertaPreLayerNormConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                                num_attention_heads=4, intermediate_size=37,
                                                max_position_embeddings=40, type_vocab_size=2, pad_token_id=1)
    torch.manual_seed(0)
    theirs = transformers.RobertaPreLayerNormForMaskedLM(hc).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(0, 0.2)
    theirs.save_pretrained(tmp_path / "hf")
    ours = berts.load(tmp_path / "hf")
    assert type(ours) is BertForMaskedLM and ours.config.pad_token_id == 1
    assert ours.config.norm_position == "pre" and ours.config.max_position_embeddings == 40 - 2
    assert not ours.loading_info["missing_keys"] and not ours.loading_info["unexpected_keys"]
    b = hf_inputs()
    b["input_ids"][b["attention_mask"] == 0] = 1  # RoBERTa's pad id; no real token is 1 (ids from 5)
    real = b["attention_mask"].bool()
    with torch.no_grad():
        want = theirs(**b)
        got = ours.eval()(**b)
        base = BertModel.from_pretrained(tmp_path / "hf").eval()(**b)
        hf_base = theirs.roberta_prelayernorm(**b)
    torch.testing.assert_close(got.prediction_logits[real], want.logits[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(base.last_hidden_state[real], hf_base.last_hidden_state[real], atol=ATOL, rtol=0)


@pytest.mark.parametrize("layout", ["bert", "albert"])
def test_pre_ln_that_roberta_cannot_say_is_the_berts_format(tmp_path, layout):
    c = config(norm_position="pre")
    if layout == "albert":  # ALBERT's factorized embedding and sharing: no pre-LN ALBERT in transformers
        c = c.replace(embedding_size=16, share_layers="all", num_hidden_layers=3)
    model = randomize(BertForPreTraining(c))  # NSP / SOP: no roberta-prelayernorm head
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m/config.json").read_text())
    arch = "AlbertForPreTraining" if layout == "albert" else "BertForPreTraining"
    assert saved["model_type"] == "berts" and saved["architectures"] == [arch] and saved["berts_layout"] == layout
    assert_refused_by_transformers(tmp_path / "m")
    assert_round_trip(model, tmp_path / "m")


# ------------------------------------------------------------------------ the berts format
def assert_refused_by_transformers(directory):
    assert not (directory / "model.safetensors").exists() and (directory / "berts.safetensors").is_file()
    with pytest.raises(ValueError):  # model_type "berts": no transformers class
        transformers.AutoModel.from_pretrained(directory)
    with warnings.catch_warnings(), pytest.raises(OSError, match="model.safetensors|pytorch_model.bin"):
        warnings.simplefilter("ignore")
        transformers.BertModel.from_pretrained(directory)  # no weights file it knows


def assert_round_trip(model, directory):
    back = berts.load(directory)
    assert type(back) is type(model)
    same = ("hidden_size", "num_hidden_layers", "intermediate_size", "embedding_size", "share_layers",
            "hidden_act", "max_position_embeddings", "norm_position", "ffn", "bias")
    assert {k: getattr(back.config, k) for k in same} == {k: getattr(model.config, k) for k in same}
    assert not back.loading_info["missing_keys"] and not back.loading_info["unexpected_keys"]
    ours = dict(model.named_parameters())
    assert ours.keys() == dict(back.named_parameters()).keys()
    for n, p in back.named_parameters():
        assert torch.equal(p, ours[n]), n
    b = dict(padded_batch(), **labels(type(model), padded_batch()))
    with torch.no_grad():
        assert torch.equal(model.eval()(**b).loss, back.eval()(**b).loss)


@pytest.mark.filterwarnings("ignore:.*newly initialised")
@pytest.mark.parametrize("name", ["glu", "nobias", "pre-glu-nobias"])
@pytest.mark.parametrize("cls", [BertForPreTraining, BertForMaskedLM, BertForSequenceClassification])
def test_glu_and_no_bias_save_in_the_berts_format(tmp_path, cls, name):
    model = randomize(cls(config(**SWITCHES[name])))
    model.save_pretrained(tmp_path / "m")
    saved = json.loads((tmp_path / "m/config.json").read_text())
    assert saved["model_type"] == "berts" and {k: saved[k] for k in SWITCHES[name]} == SWITCHES[name]
    assert_refused_by_transformers(tmp_path / "m")
    assert_round_trip(model, tmp_path / "m")
    # a bare encoder from the same directory (fine-tuning starts so) has every encoder weight
    enc = BertModel.from_pretrained(tmp_path / "m")
    assert not [k for k in enc.loading_info["missing_keys"] if not k.startswith("pooler.")]


def test_saving_over_a_bert_directory_leaves_no_stale_weights(tmp_path):
    randomize(BertModel(config())).save_pretrained(tmp_path / "m")
    assert (tmp_path / "m/model.safetensors").is_file()
    glu = randomize(BertModel(config(ffn="glu")), seed=1)
    glu.save_pretrained(tmp_path / "m")  # transformers must not find the old BERT weights there
    assert_refused_by_transformers(tmp_path / "m")
    assert torch.equal(berts.load(tmp_path / "m").encoder.layers[0].ffn.up.weight, glu.encoder.layers[0].ffn.up.weight)


def test_info_reads_every_format(tmp_path):
    from berts.hf import ARCHITECTURES, check_weights

    for name, cls, arch in [("pre", BertForMaskedLM, "RobertaPreLayerNormForMaskedLM"),
                            ("pre-glu-nobias", BertForPreTraining, "BertForPreTraining")]:
        model = cls(config(**SWITCHES[name]))
        model.save_pretrained(tmp_path / name)
        assert ARCHITECTURES[arch] == cls.__name__
        fit = check_weights(cls(berts.hf.read_config(tmp_path / name)), tmp_path / name)
        assert not fit["missing"] and not fit["unexpected"]


# ------------------------------------------------------------------------ training smoke
def test_pre_ln_glu_no_bias_pretraining_learns():
    torch.manual_seed(0)
    model = BertForPreTraining(config(norm_position="pre", ffn="glu", bias=False))
    b = dict(padded_batch(), **labels(BertForPreTraining, padded_batch()))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = model(**b).loss
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # MLM over 99 tokens + NSP starts near ln(99) + ln(2) = 5.29; 30 steps on one batch memorise it
    assert 4.8 < losses[0] < 5.8 and losses[-1] < 1.0, losses  # measured: 5.28 -> 0.79


def test_the_pretrain_command_trains_and_saves_the_switches(shards, tmp_path):  # noqa: F811 (fixture)
    out = tmp_path / "run"
    assert cli(pretrain_args(shards, out, "model.norm_position=pre", "model.ffn=glu", "model.bias=false",
                             "train.max_steps=4")) == 0
    final = berts.load(out / "final")
    assert (final.config.norm_position, final.config.ffn, final.config.bias) == ("pre", "glu", False)
    assert (out / "final/berts.safetensors").is_file() and not (out / "final/model.safetensors").exists()
    assert final.bert.encoder.final_norm is not None and final.bert.encoder.layers[0].ffn.up.bias is None
    # and it fine-tunes: a classifier from it has every encoder weight of the pretrained model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = BertForSequenceClassification.from_pretrained(out / "final", num_labels=2)
    assert not [k for k in clf.loading_info["missing_keys"] if not k.startswith("classifier.")]
    for (n, p), q in zip(final.bert.named_parameters(), clf.bert.parameters()):
        assert torch.equal(p, q), n
