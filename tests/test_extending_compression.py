"""docs/extending/compression.md's worked example, a new distillation method (logit regression,
Ba & Caruana 2014), run as the page says: its code blocks are the files verbatim; the loss on a
fixed batch equals a hand computation (0 for a student equal to its teacher); `berts distill
--method logit-mse` on a tiny teacher brings the loss over the training table under a tenth of its
start in 30 steps; general distillation, which it does not declare, is refused in one line; the registry
is what the parser and the config offer."""
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_distill import TEXTS, batch_of, data, sets  # noqa: F401 (fixture)
from train_utils import cli, shards  # noqa: F401 (fixture)

import berts
from berts.compress import registry
from berts.compress.logit_mse.task import LogitMSETask
from berts.compress.students import student_from_teacher

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending" / "compression.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_page_shows_the_files_verbatim():
    task, entry = python_blocks(DOC.read_text())
    assert task == (ROOT / "src/berts/compress/logit_mse/task.py").read_text()
    assert entry in (ROOT / "src/berts/compress/registry.py").read_text()
    assert entry.startswith('register(Method(\n    name="logit-mse"')


def test_the_registry_is_what_the_command_and_the_config_offer(capsys):
    assert list(registry.METHODS)[:3] == ["distilbert", "tinybert", "logit-mse"]
    assert registry.get("logit-mse").task_class() is LogitMSETask
    with pytest.raises(berts.UserError, match="did you mean 'tinybert'"):
        registry.get("tinybrt")
    with pytest.raises(SystemExit):
        cli(["distill", "--help"])
    assert "{" + ",".join(registry.METHODS) + "}" in capsys.readouterr().out
    from berts.config.schema import DistillConfig, load_config

    assert load_config(DistillConfig, None, ["distill.method=logit-mse"]).distill.method == "logit-mse"
    with pytest.raises(berts.UserError, match="distill.method must be one of " + ", ".join(registry.METHODS)):
        load_config(DistillConfig, None, ["distill.method=patient"])
    # a key of another method's (Method.keys) is refused in one line, before anything is read
    capsys.readouterr()
    assert cli(["distill", "--method", "distilbert", "--stage", "all", "--teacher", "t", "--train", "x.tsv",
                "--student-layers", "0", "--out", "o"]) == 2
    assert capsys.readouterr().err.strip() == "berts: error: distill.stage is read by --method tinybert, not distilbert"


def half_squared_error(student, teacher, batch) -> float:
    """The paper's 1/2 ||g(x) - z||^2 by hand: a loop over rows and classes in float64, mean over rows."""
    x = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.no_grad():
        s, t = student(**x).logits.double().tolist(), teacher(**x).logits.double().tolist()
    return sum(0.5 * sum((a - b) ** 2 for a, b in zip(rs, rt)) for rs, rt in zip(s, t)) / len(s)


def test_the_loss_is_half_the_squared_error_of_the_logits(data):  # noqa: F811
    teacher = berts.load(data.classifier).eval()
    batch = batch_of(data.tok, TEXTS)
    twin = student_from_teacher(teacher, range(4)).eval()  # every layer: the teacher itself
    losses, metrics = LogitMSETask(twin, teacher, None).loss(SimpleNamespace(model=twin), batch)
    assert losses["mse"].item() == 0.0 and metrics["agree"].item() == 1.0

    student = student_from_teacher(teacher, [0, 2]).eval()
    with torch.no_grad():  # logits far from zero, so that the error is not tiny
        student.classifier.weight.mul_(20)
    task = LogitMSETask(student, teacher, None)
    losses, metrics = task.loss(SimpleNamespace(model=student), batch)
    assert set(losses) == {"mse"} and task.counts(batch) == {"mse": 3}
    assert losses["mse"].item() == pytest.approx(half_squared_error(student, teacher, batch), rel=1e-5)
    assert losses["mse"].item() > 0.01 and losses["mse"].requires_grad


def table_batch(tok, path):
    texts = [line.split("\t")[0] for line in Path(path).read_text().splitlines()[1:]]
    return batch_of(tok, texts)


def test_berts_distill_method_logit_mse_through_the_command_line(data, shards, tmp_path, capsys):  # noqa: F811
    # a teacher whose layers matter and whose logits are far from zero (a random tiny classifier's
    # layers barely move the embeddings, so layers 0 and 2 alone would already give its ~0 logits)
    teacher = berts.load(data.classifier)
    torch.manual_seed(3)
    with torch.no_grad():
        for layer in teacher.bert.encoder.layers:
            layer.ffn.down.weight.normal_(0.0, 0.5)
        teacher.classifier.weight.mul_(40)
    teacher.save_pretrained(tmp_path / "teacher", data.tok)
    teacher.eval()
    out = tmp_path / "run"
    assert cli(["distill", "--method", "logit-mse", "--teacher", tmp_path / "teacher", "--student-layers", "0,2",
                "--train", data.train, "--dev", data.dev, "--out", out, "--max-steps", "30", "--batch-size", "16",
                "--lr", "2e-3", "--dropout", "0", *sets()]) == 0
    batch = table_batch(data.tok, data.train)  # all 64 training rows
    start = half_squared_error(student_from_teacher(teacher, [0, 2]).eval(), teacher, batch)
    final = berts.load(out / "final").eval()
    end = half_squared_error(final, teacher, batch)
    assert start > 0.01 and end < 0.1 * start, (start, end)  # measured: 0.019 -> 8.3e-05
    assert type(final).__name__ == "BertForSequenceClassification" and final.config.num_hidden_layers == 2

    capsys.readouterr()
    assert cli(["distill", "--method", "logit-mse", "--teacher", tmp_path / "teacher", "--student-layers", "0,2",
                "--data", shards, "--out", tmp_path / "refused", *sets()]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--method logit-mse does not do general distillation" in err, err
