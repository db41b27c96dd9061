"""int8 schemes (berts.compress.transforms.quantize_int8): per-tensor (torch's defaults), per-channel
(weights per output channel, activations on the full 8 bits: the default), smooth (SmoothQuant
scales calibrated on real inputs), their distance to fp32, and the flag reaching every command."""
import sys

import numpy as np
import pytest
import torch

from berts.cli import main
from berts.compress import transforms
from berts.compress.transforms import INT8_SCHEMES, input_maxima, int8_scheme, quantize_int8
from berts.errors import UserError

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from test_inference import make_classifier, sentences  # noqa: E402


def test_the_cli_spells_the_schemes_of_the_library():
    from berts.commands.common import INT8_SCHEMES as cli_schemes

    assert cli_schemes == INT8_SCHEMES and transforms.DEFAULT_INT8 == "per-channel"
    assert int8_scheme(True) == "per-channel" and int8_scheme(False) is None and int8_scheme("smooth") == "smooth"
    with pytest.raises(UserError, match="int8 scheme 'int4': one of per-channel, per-tensor, smooth"):
        int8_scheme("int4")


def test_input_maxima_is_the_largest_absolute_input_per_channel():
    lin = torch.nn.Sequential(torch.nn.Linear(3, 2))
    xs = [torch.tensor([[1.0, -5.0, 0.5]]), torch.tensor([[[-2.0, 1.0, 0.25], [0.0, 0.0, -0.75]]])]
    amax = input_maxima(lin, lambda: [lin(x) for x in xs])
    assert amax["0"].tolist() == [2.0, 5.0, 0.75]


def outlier_linear(seed=0):
    """A Linear fed by activations with one outlier channel (x100), as BERT's hidden states have."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear(64, 32)
    x = torch.randn(256, 64)
    x[:, 7] *= 100.0
    return lin, x


@pytest.mark.parametrize("scheme", INT8_SCHEMES)
def test_each_scheme_on_an_outlier_channel(scheme):
    """Relative error ||int8 - fp32|| / ||fp32|| on one Linear (seed 0; measured: per-tensor 0.085,
    per-channel 0.055 (one more bit of activation), smooth 0.0090 (the outlier moved into the weights))."""
    lin, x = outlier_linear()
    with torch.no_grad():
        ref = lin(x)
    model = torch.nn.Sequential(lin)
    quantize_int8(model, scheme, calibrate=lambda: model(x))
    with torch.no_grad():
        err = float((model(x) - ref).norm() / ref.norm())
    bound = {"per-tensor": (0.05, 0.2), "per-channel": (0.02, 0.08), "smooth": (1e-4, 0.02)}[scheme]
    assert bound[0] < err < bound[1], (scheme, err)
    name = "DynamicQuantizedLinear" if scheme == "per-tensor" else "Int8Linear"
    assert model[0]._get_name() == name and (getattr(model[0], "inv_scale", None) is not None) == (scheme == "smooth")


def test_smooth_needs_calibration():
    with pytest.raises(UserError, match="calibrates on real texts"):
        quantize_int8(torch.nn.Sequential(torch.nn.Linear(4, 4)), "smooth")


def test_classifier_schemes_against_fp32(tmp_path):
    """Largest |logit difference| to fp32 over 200 sentences, a random classifier whose embedding
    norm has one outlier channel (x30). Measured: per-tensor 1.12, per-channel 0.69, smooth 0.29."""
    from berts.data.tables import Example
    from berts.serve.predict import Classifier

    d = make_classifier(tmp_path / "c")
    texts = sentences(200, seed=5)
    rows = [Example(t, None, None, i + 1, "x") for i, t in enumerate(texts)]

    def load(int8=False):
        clf = Classifier.from_pretrained(d, int8=False)
        with torch.no_grad():
            clf.model.bert.embeddings.LayerNorm.weight[3] *= 30.0
        return clf.quantize(int8, texts) if int8 else clf

    fp = load()
    ref = fp.logits(fp.dataset(rows), 32)
    diff = {}
    for scheme in INT8_SCHEMES:
        q = load(scheme)
        assert q.int8 == scheme
        diff[scheme] = float(np.abs(q.logits(q.dataset(rows), 32) - ref).max())
    assert diff["smooth"] < diff["per-channel"] < diff["per-tensor"], diff
    assert diff["smooth"] < 0.5 * diff["per-channel"] and diff["smooth"] < 0.4, diff


@pytest.fixture
def spy(monkeypatch):
    """Records (scheme, calibrated) of every quantize_int8 call the commands make."""
    calls = []
    real = transforms.quantize_int8

    def record(model, scheme=True, calibrate=None):
        calls.append((scheme, calibrate is not None))
        return real(model, scheme, calibrate)

    import berts.embed.engines
    import berts.serve.predict

    monkeypatch.setattr(berts.serve.predict, "quantize_int8", record)
    monkeypatch.setattr(berts.embed.engines, "quantize_int8", record)
    return calls


def test_the_flag_reaches_predict_evaluate_compare(tmp_path, spy, capsys):
    d = make_classifier(tmp_path / "c")
    table = tmp_path / "t.tsv"
    table.write_text("sentence\tlabel\n" + "".join(f"{t}\t{'pos' if i % 2 else 'neg'}\n"
                                                   for i, t in enumerate(sentences(12, seed=3))))
    assert main(["predict", str(d), str(table), "--out", str(tmp_path / "p.jsonl"), "--int8", "smooth"]) == 0
    assert main(["evaluate", str(d), str(table), "--int8"]) == 0
    assert main(["compare", str(d), "--eval-file", str(table), "--int8", "per-tensor", "--repeats", "1",
                 "--latency-examples", "2", "--out", str(tmp_path / "cmp")]) == 0
    assert spy == [("smooth", True), ("per-channel", True), ("per-tensor", True)]
    with pytest.raises(SystemExit):  # argparse: a scheme that does not exist
        main(["predict", str(d), str(table), "--int8", "int4"])
    assert "invalid choice: 'int4'" in capsys.readouterr().err


def test_the_flag_reaches_embed(tmp_path, spy):
    from test_embed_cli import TEXTS, make_model

    d = make_model(tmp_path / "m", st=True)
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS) + "\n")
    for i, flags in enumerate((["--int8"], ["--int8", "smooth"], ["--int8=per-tensor"])):
        assert main(["embed", str(d), str(f), "--out", str(tmp_path / f"q{i}.npy"), *flags]) == 0
    assert spy == [("per-channel", True), ("smooth", True), ("per-tensor", True)]
