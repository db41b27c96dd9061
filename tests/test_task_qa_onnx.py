"""Extractive QA through ONNX: `berts export` of a BertForQuestionAnswering directory gives
start_logits / end_logits equal to berts' in onnxruntime (1e-4) on (question, context) windows of a
QA file, and its int8 copy is reported against fp32."""
import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.onnx
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'berts[onnx]')")
pytest.importorskip("onnxscript", reason="onnxscript (torch's ONNX exporter) is not installed")

from conftest import randomize  # noqa: E402
from test_task_qa import base, cli, qa_rows, write_jsonl  # noqa: E402,F401  (base: a fixture)


def test_qa_export_parity_and_int8(base, tmp_path, capsys):
    import berts
    from berts.data.qa import read_qa
    from berts.serve.export import session
    from berts.tasks.qa import BertForQuestionAnswering, QADataset
    from berts.tokenizer.wordpiece import load_tokenizer

    tok = load_tokenizer(base)
    model = randomize(BertForQuestionAnswering(berts.load(base).config), seed=2).eval()
    model.save_pretrained(tmp_path / "qa", tokenizer=tok)
    dev = write_jsonl(tmp_path / "dev.jsonl", qa_rows(12, 5))
    onnx = tmp_path / "qa.onnx"
    capsys.readouterr()
    assert cli(["export", tmp_path / "qa", "--onnx", onnx, "--int8", "--eval-file", dev, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["outputs"] == ["start_logits", "end_logits"] and r["texts"] == 12
    assert r["max_abs_diff"] <= 1e-4
    assert set(r["int8"]) == {"max_abs_diff", "argmax_agreement"} and 0 <= r["int8"]["argmax_agreement"] <= 1
    # the graph on the windows the predict path makes: the same logits as berts
    ds = QADataset(read_qa(dev), tok, max_length=32, doc_stride=8)
    batch = ds.collate(np.arange(len(ds)))
    sess = session(onnx)
    start, end = sess.run(None, {k: batch[k].numpy() for k in ("input_ids", "attention_mask", "token_type_ids")})
    with torch.no_grad():
        out = model(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
    np.testing.assert_allclose(start, out.start_logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(end, out.end_logits.numpy(), atol=1e-4)
