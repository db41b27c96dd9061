"""ONNX export of the multiple-choice and multi-label directories: onnxruntime's logits equal
berts' (1e-4) on shapes the export never saw, and the multi-label int8 graph is reported against
fp32 by its label decisions at the saved thresholds (a multiple-choice int8 graph goes through the
same compare_int8: label agreement of the chosen index)."""
import numpy as np
import pytest
import torch
from test_inference import sentences, tokenizer

from berts.cli import main

pytestmark = pytest.mark.onnx
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'berts[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript (torch's ONNX exporter) is not installed")


def save(model, path):
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name.lower():
                p.add_(torch.randn(p.shape, generator=g) * 0.3)
    model.save_pretrained(path, tokenizer=tokenizer())
    return path


def config(**kw):
    from berts import BertConfig

    return BertConfig(vocab_size=tokenizer().vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64, **kw)


def test_multiple_choice_exports_with_a_choices_axis(tmp_path, capsys):
    from berts.serve.export import INPUTS, export_onnx, reference_outputs, session, text_batches
    from berts.tasks.multiple_choice import BertForMultipleChoice

    d = save(BertForMultipleChoice(config()), tmp_path / "mc")
    r = export_onnx(d, tmp_path / "mc.onnx", texts=sentences(16, seed=7, lo=1, hi=50))
    assert r["max_abs_diff"] <= 1e-4 and r["outputs"] == ["logits"]
    sess = session(tmp_path / "mc.onnx")
    model = BertForMultipleChoice.from_pretrained(d).eval()
    model.set_fast_path(unpad=False, pack=False, sparse_output=False)
    for rows, choices in ((1, 2), (3, 5)):  # other batch sizes, choice counts and lengths than the export's
        (b,) = list(text_batches(tokenizer(), sentences(rows * choices, seed=choices), sentences(rows * choices), 64,
                                 rows * choices))
        b = {k: v.reshape(rows, choices, -1) for k, v in b.items()}
        (ours,) = reference_outputs(model, b)
        (theirs,) = sess.run(None, {k: b[k].numpy() for k in INPUTS})
        assert ours.shape == theirs.shape == (rows, choices)
        assert np.abs(ours - theirs).max() <= 1e-4


def test_multi_label_exports_and_int8_compares_decisions(tmp_path, capsys):
    from berts import BertForSequenceClassification

    names = ["a", "b", "c"]
    model = BertForSequenceClassification(config(num_labels=3, problem_type="multi_label_classification",
                                                 id2label=dict(enumerate(names)),
                                                 label2id={n: i for i, n in enumerate(names)}))
    model.config.finetune_data = {**(model.config.finetune_data or {}), "multi_label": {"thresholds": [0.3, 0.5, 0.7], "label_sep": "|"}}
    d = save(model, tmp_path / "ml")
    import json

    assert main(["export", str(d), "--onnx", str(tmp_path / "ml.onnx"), "--int8", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["max_abs_diff"] <= 1e-4 and set(r["int8"]) == {"decision_agreement", "max_abs_diff"}
    assert 0.8 <= r["int8"]["decision_agreement"] <= 1
