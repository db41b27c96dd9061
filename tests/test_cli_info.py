import json

from berts import BertForSequenceClassification, preset
from berts.cli import main


def test_info_on_a_saved_directory(tmp_path, capsys):
    cfg = preset("tiny", vocab_size=500, id2label={0: "neg", 1: "pos"})
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(tmp_path / "m")
    assert main(["info", str(tmp_path / "m"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["architecture"] == "BertForSequenceClassification"
    assert s["parameters"] == model.num_parameters()
    assert s["id2label"] == {"0": "neg", "1": "pos"} or s["id2label"] == {0: "neg", 1: "pos"}
    assert "model.safetensors" in s["files"]


def test_info_on_presets(capsys):
    assert main(["info", "base"]) == 0
    assert "109,482,240" in capsys.readouterr().out
    assert main(["info", "albert-base"]) == 0
    out = capsys.readouterr().out
    assert "11,683,584" in out and "(albert)" in out


def test_info_user_error_is_one_line(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("berts: error:") and "missing" in err[0]


def test_corrupt_weights_are_a_one_line_error(tmp_path, capsys):
    from berts import BertModel

    BertModel(preset("tiny", vocab_size=100)).save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # truncated
    import pytest

    import berts

    with pytest.raises(berts.UserError, match="cannot read the weights"):
        berts.load(tmp_path / "m")
    assert main(["evaluate", str(tmp_path / "m"), str(tmp_path / "none.tsv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("berts: error:")


def test_info_opens_the_weights(tmp_path, capsys):
    """A truncated weights file, or weights that do not fit config.json: exit 2 and one line, never a
    healthy-looking summary (issue 13)."""
    from berts import BertModel

    model = BertModel(preset("tiny", vocab_size=100))
    model.save_pretrained(tmp_path / "m")
    assert main(["info", str(tmp_path / "m")]) == 0
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m" / "model.safetensors"), framework="pt") as f:
        n = len(list(f.keys()))  # transformers' names: q, k and v apart
    out = capsys.readouterr().out
    assert "weights" in out and "every one fits the config" in out
    assert main(["info", str(tmp_path / "m"), "--json"]) == 0
    w = json.loads(capsys.readouterr().out)["weights"]
    assert w["missing"] == [] and w["unexpected"] == [] and w["tensors"] == n

    weights = tmp_path / "m" / "model.safetensors"
    whole = weights.read_bytes()
    weights.write_bytes(whole[:-10])  # a copy cut short
    assert main(["info", str(tmp_path / "m")]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    assert cap.err == f"berts: error: {weights}: truncated ({len(whole) - 10} bytes, the header says {len(whole)})\n"
    weights.write_bytes(b"")
    assert main(["info", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err == f"berts: error: {weights}: truncated (0 bytes)\n"

    # weights of another size than config.json says
    weights.write_bytes(whole)
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    cfg["vocab_size"] = 120
    (tmp_path / "m" / "config.json").write_text(json.dumps(cfg))
    assert main(["info", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert err == (f"berts: error: {weights}: 1 weight(s) do not fit {tmp_path / 'm' / 'config.json'} "
                   f"(e.g. embeddings.word_embeddings.weight (100, 128), the config needs (120, 128))\n")


def test_config_json_that_is_not_an_object(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    for text, kind in (("[]", "list"), ("3", "int"), ('"x"', "str")):
        (tmp_path / "m" / "config.json").write_text(text)
        assert main(["info", str(tmp_path / "m")]) == 2
        assert capsys.readouterr().err == (f"berts: error: {tmp_path / 'm' / 'config.json'}: not a model config "
                                           f"(a JSON object expected, got {kind})\n")


def test_a_model_config_error_names_the_file(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    path = tmp_path / "m" / "config.json"
    for cfg, why in (({"hidden_size": 100, "num_attention_heads": 3},
                      "invalid model config: hidden_size 100 is not a multiple of num_attention_heads 3"),
                     ({"hidden_dropout_prob": "a lot"}, "invalid model config: hidden_dropout_prob must be in [0, 1), got 'a lot'"),
                     ({"model_type": "gpt2"}, "model_type 'gpt2' is not supported (bert, albert, electra, roberta-prelayernorm, berts, roberta and modernbert are)"),
                     ({"id2label": [1, 2]}, "invalid model config ('list' object has no attribute 'items')")):
        path.write_text(json.dumps(cfg))
        assert main(["info", str(tmp_path / "m")]) == 2
        assert capsys.readouterr().err == f"berts: error: {path}: {why}\n"
