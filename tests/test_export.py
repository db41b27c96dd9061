"""`berts export --onnx`: BERT and ALBERT, with and without a classification head, run in
onnxruntime on real text within 1e-4 of berts (dynamic batch and sequence axes), the optimized
graph too, the int8 copy reported against fp32; one-line errors."""
import json

import numpy as np
import pytest
import torch
from test_inference import make_classifier, sentences

from berts.cli import main
from berts.errors import UserError

pytestmark = pytest.mark.onnx  # onnxruntime sessions: `make test-fast` leaves them out

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'berts[onnx]'; "
                                                 "the test extra installs it)")
pytest.importorskip("onnxscript", reason="onnxscript (torch's ONNX exporter) is not installed: pip install 'berts[onnx]'")


@pytest.mark.parametrize("albert", [False, True], ids=["bert", "albert"])
@pytest.mark.parametrize("head", [True, False], ids=["classifier", "encoder"])
def test_export_parity_in_onnxruntime(tmp_path, albert, head, capsys):
    from berts.serve.export import INPUTS, export_onnx, reference_outputs, session, text_batches
    from berts.hf import load
    from berts.tokenizer.wordpiece import load_tokenizer

    d = make_classifier(tmp_path / "m", albert=albert, head=head)
    out = tmp_path / "m.onnx"
    r = export_onnx(d, out, texts=sentences(40, seed=7, lo=1, hi=50))
    assert r["max_abs_diff"] <= 1e-4 and r["texts"] == 40
    config = json.loads((d / "config.json").read_text())
    assert config["model_type"] == ("albert" if albert else "bert")
    names = ["logits"] if head else ["last_hidden_state", "pooler_output"]
    sess = session(out)
    assert [o.name for o in sess.get_outputs()] == names and [i.name for i in sess.get_inputs()] == list(INPUTS)
    # dynamic axes: batch sizes and lengths the export never saw, pairs (token types 1), padding
    model = load(d).eval()
    tok = load_tokenizer(d)
    for n, lo, hi in ((1, 1, 3), (7, 10, 60), (3, 1, 60)):
        (batch,) = list(text_batches(tok, sentences(n, seed=n, lo=lo, hi=hi), sentences(n, seed=n + 1), 64, n))
        assert batch["token_type_ids"].max() == 1
        for ours, theirs in zip(reference_outputs(model, batch), sess.run(None, {k: batch[k].numpy() for k in INPUTS})):
            assert ours.shape == theirs.shape
            assert np.abs(ours - theirs).max() <= 1e-4
    # the command: the same check, printed
    assert main(["export", str(d), "--onnx", str(tmp_path / "c.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "onnxruntime vs berts on 96 texts: max |diff|" in printed and "tolerance 0.0001" in printed


def test_optimize_and_int8(tmp_path, capsys):
    d = make_classifier(tmp_path / "m")
    data = tmp_path / "eval.tsv"
    texts = sentences(60, seed=11)
    data.write_text("sentence\tlabel\n" + "".join(f"{t}\t{'pos' if i % 2 else 'neg'}\n" for i, t in enumerate(texts)))
    out = tmp_path / "model.onnx"
    assert main(["export", str(d), "--onnx", str(out), "--optimize", "--int8", "--eval-file", str(data),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["texts"] == 60 and r["optimized_max_abs_diff"] <= 1e-4
    assert r["files"] == {"fp32": str(out), "int8": str(tmp_path / "model.int8.onnx")}
    q = r["int8"]
    assert 0.8 <= q["label_agreement"] <= 1 and q["max_prob_diff"] < 0.2
    assert 0 <= q["fp32_accuracy"] <= 1 and 0 <= q["int8_accuracy"] <= 1
    # the fp32 accuracy printed is the model's own on that file
    from berts.serve.predict import Classifier

    clf = Classifier.from_pretrained(d)
    ours = np.mean([p.label == ("pos" if i % 2 else "neg") for i, p in enumerate(clf.predict(texts))])
    assert q["fp32_accuracy"] == pytest.approx(ours)
    s = ort.InferenceSession(str(tmp_path / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    assert any(n.op_type in ("MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear")
               for n in __import__("onnx").load(str(tmp_path / "model.int8.onnx")).graph.node)
    assert s.get_outputs()[0].name == "logits"


def test_export_errors(tmp_path, capsys):
    d = make_classifier(tmp_path / "m")
    assert main(["export", str(tmp_path / "nothing"), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["export", str(d), "--onnx", str(tmp_path / "no" / "x.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no such directory" in err
    from safetensors.torch import load_file, save_file

    sd = load_file(str(d / "model.safetensors"))
    save_file({k: v for k, v in sd.items() if not k.startswith("classifier.")}, str(d / "model.safetensors"))
    with pytest.raises(UserError, match="2 weights are not in the checkpoint"):
        from berts.serve.export import export_onnx

        export_onnx(d, tmp_path / "x.onnx")
    torch.manual_seed(0)
