"""Classifier.from_pretrained(dir, engine="onnx"): the same API, onnxruntime computing the logits
of the directory's exported model.onnx (and model.int8.onnx with int8)."""
import sys
from pathlib import Path

import numpy as np
import pytest

from berts.errors import UserError

sys.path.insert(0, str(Path(__file__).parent))
from test_inference import make_classifier, sentences  # noqa: E402

pytestmark = pytest.mark.onnx


def test_onnx_engine_gives_the_torch_predictions(tmp_path):
    pytest.importorskip("onnxruntime")
    from berts.serve.export import export_onnx
    from berts.serve.predict import Classifier

    d = make_classifier(tmp_path / "c")
    texts = sentences(30, seed=7)
    with pytest.raises(UserError, match="model.onnx: no such file; export it first: berts export"):
        Classifier.from_pretrained(d, engine="onnx")
    with pytest.raises(UserError, match="engine 'tvm': one of torch, onnx"):
        Classifier.from_pretrained(d, engine="tvm")
    with pytest.raises(UserError, match="engine onnx runs on the CPU"):
        Classifier.from_pretrained(d, engine="onnx", device="cuda")
    with pytest.raises(UserError, match="scheme 'smooth' is torch's"):
        Classifier.from_pretrained(d, engine="onnx", int8="smooth")
    export_onnx(d, d / "model.onnx", int8=True, texts=texts)  # `berts export DIR --onnx DIR/model.onnx --int8`
    torch_, onnx = Classifier.from_pretrained(d), Classifier.from_pretrained(d, engine="onnx", threads=1)
    a, b = torch_.predict(texts, batch_size=8), onnx.predict(texts, batch_size=8)
    assert [p.label for p in a] == [p.label for p in b]
    pa = np.array([list(p.probabilities.values()) for p in a])
    pb = np.array([list(p.probabilities.values()) for p in b])
    assert np.abs(pa - pb).max() < 1e-4 and onnx.session is not None and onnx.int8 is None
    one = onnx.predict(texts[:1])  # batch 1: the regime this engine is for
    assert one[0].label == a[0].label
    q = Classifier.from_pretrained(d, engine="onnx", int8=True)
    assert q.int8 == "onnx" and len(q.predict(texts)) == 30
    with pytest.raises(UserError, match="early exit runs in berts' torch engine"):
        onnx.early_exit("entropy", 0.5)
