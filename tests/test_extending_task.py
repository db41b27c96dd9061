"""docs/extending/task.md runs: its task file and registry entry, taken from the page's code blocks,
through `berts finetune --task sentence-length` on a small table; the logged mae equals the one
computed by hand from berts.Classifier's predictions; `berts predict` serves the directory. Also:
the registry is the one list of task names (CLI choices, config validation, metrics)."""
import json
import random
import re
import string
from pathlib import Path

import numpy as np
import pytest
import torch
from train_utils import cli

from berts.errors import UserError
from berts.tasks import registry

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending" / "task.md"
WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture
def sentence_length(tmp_path, monkeypatch):
    """The page's task, importable as sentence_length, registered as its entry says."""
    module, entry = doc_blocks()[:2]  # the worked example (the page's later blocks show options)
    (tmp_path / "sentence_length.py").write_text(module)
    monkeypatch.syspath_prepend(str(tmp_path))
    found = []
    exec(entry, {"register": found.append, "TaskSpec": registry.TaskSpec})  # noqa: S102 (the page's own code)
    (spec,) = found
    assert spec.task == "berts.tasks.sentence_length:SentenceLengthTask"  # where it would live in berts
    spec = registry.TaskSpec(**{**spec.__dict__, "task": "sentence_length:SentenceLengthTask"})
    monkeypatch.setitem(registry.TASKS, spec.name, spec)
    return spec


@pytest.fixture
def base(tmp_path):
    """A tiny berts BertModel directory with its tokenizer."""
    from berts import BertConfig, BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32)).save_pretrained(tmp_path / "bert",
                                                                                           tokenizer=tok)
    return tmp_path / "bert"


def sentences(path, n, seed):
    rng = random.Random(seed)
    lines = ["sentence"] + [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_worked_example_runs_through_the_command_line(sentence_length, base, tmp_path, capsys):
    from berts.serve.predict import Classifier

    train, dev = sentences(tmp_path / "train.tsv", 64, 1), sentences(tmp_path / "dev.tsv", 24, 2)
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "sentence-length", "--model", base, "--train", train, "--dev", dev,
                "--text-column", "sentence", "--out", out, "--max-steps", "6", "--batch-size", "8",
                "--lr", "1e-3", "--eval-every", "3", "--keep-last", "0", *COMMON]) == 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [3, 6] and set(evals[-1]) >= {"mae", "rmse"}
    best = json.loads((out / "best" / "eval_results.json").read_text())
    assert best["metric"] == "mae" and best["value"] == min(e["mae"] for e in evals)  # lower is better

    # by hand: the final model's predictions (served by Classifier) against the word counts
    clf = Classifier.from_pretrained(out / "final", device="cpu")
    assert clf.regression and clf.settings["task"] == "sentence-length"
    texts = dev.read_text().splitlines()[1:]
    predicted = np.array([p.value for p in clf.predict(texts)])
    counts = np.array([len(t.split()) for t in texts], dtype=np.float64)
    assert evals[-1]["mae"] == pytest.approx(float(np.abs(predicted - counts).mean()), rel=1e-5)
    assert evals[-1]["rmse"] == pytest.approx(float(np.sqrt(((predicted - counts) ** 2).mean())), rel=1e-5)

    # berts predict serves the directory: the same values
    capsys.readouterr()
    assert cli(["predict", out / "final", dev, "--text-column", "sentence", "--format", "tsv"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in rows] == texts
    np.testing.assert_allclose([r["value"] for r in rows], predicted, atol=1e-6)  # rounded to 6 places


def test_cli_choices_and_config_validation_read_the_registry(sentence_length, capsys):
    from berts.cli import build_parser
    from berts.config.schema import FinetuneConfig, load_config

    parser = build_parser()
    finetune = parser._subparsers._group_actions[0].choices["finetune"]
    (task,) = [a for a in finetune._actions if "--task" in a.option_strings]
    assert tuple(task.choices) == registry.names()
    assert registry.names()[:3] == ("classification", "regression", "seq2seq")
    assert registry.names()[-1] == "sentence-length" and "token-classification" in registry.names()
    cfg = load_config(FinetuneConfig, None, ["data.task=sentence-length", "train.max_steps=1"])
    assert cfg.data.task == "sentence-length"
    with pytest.raises(UserError, match=r"data.task 'sentence_lenght' is not a task \(did you mean sentence-length"):
        load_config(FinetuneConfig, None, ["data.task=sentence_lenght", "train.max_steps=1"])
    registry.check_metric("rmse", "sentence-length")
    with pytest.raises(UserError, match="train.metric 'accuracy' is not a sentence-length metric"):
        registry.check_metric("accuracy", "sentence-length")


def test_the_built_in_tasks():
    assert registry.names()[:3] == ("classification", "regression", "seq2seq")
    for spec in registry.TASKS.values():
        assert callable(registry.load(spec.run)) and hasattr(registry.load(spec.task), "evaluate")
    assert registry.get("seq2seq").serve is None and registry.get("regression").metrics[0] == "pearson"


def test_serving_reads_the_registry(base, tmp_path):
    """A directory of a task that Classifier does not serve (seq2seq) is one line naming the command to use."""
    from berts.data.tables import SETTINGS_KEY
    from berts.hf import load
    from berts.model.heads import BertForUnifiedLM
    from berts.serve.predict import Classifier

    model = BertForUnifiedLM(load(base).config)
    model.config.extra[SETTINGS_KEY] = {"task": "seq2seq"}
    model.save_pretrained(tmp_path / "s2s")
    with pytest.raises(UserError, match=r"s2s: a seq2seq model \(berts finetune --task seq2seq\): use `berts generate"):
        Classifier.from_pretrained(tmp_path / "s2s")
