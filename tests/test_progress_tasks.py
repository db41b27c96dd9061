"""The tasks with their own serving (token classification, question answering, multiple choice,
multi-label) follow berts.util.progress's rule in `berts predict` and `berts evaluate`: a bar on
stderr, one tick per batch, when stderr is a terminal or BERTS_PROGRESS=1; none with --quiet or
off a terminal. Each total is counted by hand from the input and the batch size."""
import string
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import test_multi_label as ml  # noqa: E402
import test_multiple_choice as mc  # noqa: E402
import test_task_qa as qa  # noqa: E402
import test_token_classification as tc  # noqa: E402

from berts.cli import main  # noqa: E402


def cli(argv):
    return main([str(a) for a in argv])


def base(root: Path, words) -> Path:
    from berts import BertConfig, BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "who", "?", ".", *string.ascii_lowercase,
              *["##" + c for c in string.ascii_lowercase]]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(root / "bert",
                                                                                           tokenizer=tok)
    return root / "bert"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One fine-tuned directory per task (2 steps: the bars, not the accuracy, are under test) and
    its evaluation file with 10 examples (a token-classification file: 10 sentences)."""
    root = tmp_path_factory.mktemp("bars")
    out = {}
    jobs = {
        "token-classification": (tc.PER + tc.LOC + tc.OTHER, lambda p, n, s: tc.write_conll(p.with_suffix(".conll"), n, s), tc.COMMON),
        "qa": (qa.WORDS + qa.NAMES, lambda p, n, s: qa.write_jsonl(p.with_suffix(".jsonl"), qa.qa_rows(n, s)), qa.COMMON + ["--max-length", "64", "--doc-stride", "16"]),
        "multiple-choice": (mc.WORDS, lambda p, n, s: mc.write_jsonl(p.with_suffix(".jsonl"), mc.rows(n, s)), mc.COMMON),
        "multi-label": (ml.WORDS, lambda p, n, s: ml.table(p.with_suffix(".tsv"), n, s), ml.COMMON),
    }
    for task, (words, write, common) in jobs.items():
        d = root / task
        d.mkdir()
        train, dev = write(d / "train", 16, 1), write(d / "dev", 10, 2)
        assert cli(["finetune", "--task", task, "--model", base(d, words), "--train", train, "--dev", dev,
                    "--out", d / "run", "--max-steps", "2", "--batch-size", "8", "--lr", "1e-3",
                    "--eval-every", "2", "--keep-last", "0", *common]) == 0
        out[task] = (d / "run" / "final", dev)
    return out


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("task", ["token-classification", "qa", "multiple-choice", "multi-label"])
def test_task_bars(models, tmp_path, capsys, monkeypatch, task, command):
    model, dev = models[task]
    args = [command, model, dev, "--batch-size", "4", "--device", "cpu"]
    if command == "predict":
        args += ["--out", tmp_path / "p.jsonl"]
    # 10 examples in batches of 4: 3 batches (QA: 10 contexts of <= 31 words fit one window each)
    total = 3
    monkeypatch.setenv("BERTS_PROGRESS", "1")
    assert cli(args) == 0
    err = capsys.readouterr().err
    assert f"predict:   0%|          | 0/{total} [" in err, err
    if command == "predict":
        (tmp_path / "p.jsonl").unlink()
    assert cli(args + ["--quiet"]) == 0
    assert "0%|" not in capsys.readouterr().err
    monkeypatch.delenv("BERTS_PROGRESS")  # pytest captures stderr: not a terminal, no bar
    if command == "predict":
        (tmp_path / "p.jsonl").unlink()
    assert cli(args) == 0
    assert "0%|" not in capsys.readouterr().err


def test_python_api_is_silent_unless_asked(models, capsys, monkeypatch):
    """The API's default is no bar even with BERTS_PROGRESS=1 (as Encoder.encode's show_progress);
    progress=True draws it."""
    from berts.serve.tagger import Tagger

    monkeypatch.setenv("BERTS_PROGRESS", "1")
    tagger = Tagger.from_pretrained(models["token-classification"][0], device="cpu")
    texts = ["ann went to paris ."] * 5
    quiet = tagger.predict(texts, batch_size=2)
    assert "0%|" not in capsys.readouterr().err
    loud = tagger.predict(texts, batch_size=2, progress=True)
    assert "predict:   0%|          | 0/3 [" in capsys.readouterr().err
    assert loud == quiet
