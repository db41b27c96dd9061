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
