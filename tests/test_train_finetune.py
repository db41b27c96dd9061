"""Fine-tuning: a separable task from a Hugging Face directory without a head, a pair task with
token types (GLUE-style named columns), regression, evaluate / predict, malformed rows."""
import io
import json
import random
import sys

import pytest
import torch
from train_utils import cli

WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false", "--set", "log.every=20"]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from berts.tokenizer.wordpiece import Tokenizer

    # a fixed vocabulary: a trained one numbers tied tokens in hash order, and the pair test's
    # tiny model is sensitive to which ids (and so which initial embeddings) its words get
    import string

    root = tmp_path_factory.mktemp("ft")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS) | {"cat"}),
              *string.ascii_lowercase, *(f"##{ch}" for ch in string.ascii_lowercase), *string.punctuation]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    tok.save_pretrained(root / "tok")
    return root / "tok"


@pytest.fixture(scope="module")
def hf_base(tokenizer_dir, tmp_path_factory):
    """A transformers BertModel directory: no pooler-to-classifier head, transformers' names."""
    import transformers

    from berts.tokenizer.wordpiece import Tokenizer

    out = tmp_path_factory.mktemp("hf") / "bert"
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=Tokenizer.from_pretrained(tokenizer_dir).vocab_size, hidden_size=32,
                                     num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                     max_position_embeddings=64)
    transformers.BertModel(config).save_pretrained(out)
    Tokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return out


def sentence(rng, cat: bool, n=None):
    words = [rng.choice(WORDS) for _ in range(n or rng.randint(4, 9))]
    if cat:
        words[rng.randrange(len(words))] = "cat"
    return " ".join(words)


def write_single(path, n, seed, header=True):
    rng = random.Random(seed)
    rows = ["sentence\tlabel"] if header else []
    for _ in range(n):
        cat = rng.random() < 0.5
        rows.append(f"{sentence(rng, cat)}\t{'has cat' if cat else 'no cat'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_separable_task_from_a_hugging_face_directory(hf_base, tmp_path, capsys):
    train, dev = write_single(tmp_path / "train.tsv", 400, 1), write_single(tmp_path / "dev.tsv", 100, 2)
    out = tmp_path / "run"
    assert cli(["finetune", "--model", hf_base, "--train", train, "--dev", dev, "--text-column", "sentence",
                "--label-column", "label", "--out", out, "--epochs", "8", "--lr", "2e-3", "--batch-size", "16",
                *COMMON]) == 0
    printed = capsys.readouterr()
    assert "new: bert.pooler.dense, classifier" in printed.err or "new: classifier" in printed.err
    result = json.loads((out / "best" / "eval_results.json").read_text())
    assert result["metric"] == "accuracy" and result["value"] > 0.95
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["id2label"] == {"0": "has cat", "1": "no cat"} and config["label2id"] == {"has cat": 0, "no cat": 1}
    assert config["architectures"] == ["BertForSequenceClassification"]
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals if r["kind"] == "eval"] == [25 * i for i in range(1, 9)]  # each epoch

    # evaluate: the metrics of a labelled file, with the model's own column settings
    assert cli(["evaluate", out / "best", dev, "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["accuracy"] == pytest.approx(result["value"]) and metrics["examples"] == 100
    assert set(metrics) >= {"accuracy", "f1", "f1_macro", "mcc"}

    # predict: stdin lines -> JSONL with label and probabilities
    sys_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(b"the cat sat near a tree\nthe dog ran over a hill\n"))
    try:
        assert cli(["predict", out / "best"]) == 0
    finally:
        sys.stdin = sys_stdin
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["label"] for r in rows] == ["has cat", "no cat"] and [r["line"] for r in rows] == [1, 2]
    assert set(rows[0]["probabilities"]) == {"has cat", "no cat"}
    assert sum(rows[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    # ... and a file with --out
    assert cli(["predict", out / "best", dev, "--out", tmp_path / "pred.jsonl"]) == 0
    assert len((tmp_path / "pred.jsonl").read_text().splitlines()) == 100


def test_pair_task_uses_token_types(tokenizer_dir, tmp_path):
    """MRPC-like TSV (columns named by header, '#1 String'...): which of the two sentences has 'cat'."""
    from berts import BertConfig, BertForPreTraining
    from berts.runs.finetune import finetuning_run
    from berts.tokenizer.wordpiece import Tokenizer
    from berts.config.schema import FinetuneConfig, load_config
    from berts.train.distributed import Dist

    tok = Tokenizer.from_pretrained(tokenizer_dir)
    base = tmp_path / "base"
    torch.manual_seed(0)
    BertForPreTraining(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, max_position_embeddings=64)).save_pretrained(base, tokenizer=tok)
    rng = random.Random(3)

    def write(path, n):
        rows = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        for i in range(n):
            first = rng.random() < 0.5
            rows.append(f"{int(first)}\t{i}\t{i + 1000}\t{sentence(rng, first)}\t{sentence(rng, not first)}")
        path.write_text("\n".join(rows) + "\n")
        return path

    train, dev = write(tmp_path / "train.tsv", 400), write(tmp_path / "dev.tsv", 100)
    cfg = load_config(FinetuneConfig, None, [
        f"model.init_from={base}", f"data.train={train}", f"data.dev={dev}", "data.text_column=#1 String",
        "data.pair_column=#2 String", "data.label_column=Quality", "train.epochs=12", "optim.lr=2e-3",
        "train.batch_size=16", f"log.out={tmp_path / 'run'}", "impl.threads=1", "log.progress=none",
        "log.tensorboard=false", "log.plots=false", "train.metric=f1"])
    trainer = finetuning_run(cfg, None, Dist())
    seen = []

    def spy(module, args, kwargs):
        seen.append((kwargs["input_ids"].clone(), kwargs["token_type_ids"].clone(), kwargs["attention_mask"].clone()))

    handle = trainer.model.register_forward_pre_hook(spy, with_kwargs=True)
    result = trainer.fit()
    handle.remove()
    assert result["best"]["metric"] == "f1" and result["best"]["metrics"]["accuracy"] > 0.9
    ids, types, mask = seen[0]
    sep = tok.sep_id
    for row_ids, row_types, row_mask in zip(ids, types, mask):
        first_sep = int((row_ids == sep).nonzero()[0])
        n = int(row_mask.sum())
        assert row_types[:first_sep + 1].eq(0).all() and row_types[first_sep + 1:n].eq(1).all()
        assert row_types[n:].eq(0).all()
    # the trained model reads them: zeroing the token types changes its outputs
    model = trainer.model.eval()
    with torch.no_grad():
        a = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        b = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(types)).logits
    assert not torch.allclose(a, b)


def test_regression(hf_base, tmp_path, capsys):
    rng = random.Random(5)

    def write(path, n):
        rows = []
        for _ in range(n):
            k = rng.randint(0, 3)
            words = [rng.choice(WORDS) for _ in range(8)]
            for i in rng.sample(range(8), k):
                words[i] = "cat"
            rows.append(json.dumps({"text": " ".join(words), "score": k + 0.5}))
        path.write_text("\n".join(rows) + "\n")
        return path

    train, dev = write(tmp_path / "train.jsonl", 400), write(tmp_path / "dev.jsonl", 100)
    out = tmp_path / "run"
    assert cli(["finetune", "--model", hf_base, "--train", train, "--dev", dev, "--task", "regression",
                "--label-column", "score", "--out", out, "--epochs", "8", "--lr", "2e-3", "--batch-size", "16",
                *COMMON]) == 0
    best = json.loads((out / "best" / "eval_results.json").read_text())
    assert best["metric"] == "pearson" and best["value"] > 0.9
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["num_labels"] == 1 and config["problem_type"] == "regression"
    capsys.readouterr()
    assert cli(["predict", out / "best", dev]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 100 and {"line", "value"} <= set(rows[0])  # (+ the text: berts predict's own test)


def test_malformed_rows_and_unknown_labels(hf_base, tmp_path, capsys):
    train = write_single(tmp_path / "train.tsv", 64, 1)
    bad = tmp_path / "bad.tsv"
    bad.write_text(train.read_text() + "one column only\n" + "\tno cat\n")
    args = ["finetune", "--model", hf_base, "--train", bad, "--text-column", "sentence", "--out", tmp_path / "r",
            "--max-steps", "2", "--batch-size", "8", *COMMON]
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:66: expected 2 columns, found 1" in err
    assert cli(args + ["--skip-bad-rows"]) == 0
    assert "skipped 2 bad rows" in capsys.readouterr().err

    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence\tlabel\nthe cat sat\thas cat\nthe dog sat\tmaybe\n")
    assert cli(["evaluate", tmp_path / "r" / "final", dev]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{dev}:3: unknown label 'maybe'" in err
    assert cli(["evaluate", tmp_path / "r" / "final", dev, "--skip-bad-rows", "--json"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["examples"] == 1 and "skipped 1 bad rows (1 unknown label" in printed.err
    assert cli(["evaluate", tmp_path / "r" / "final", tmp_path / "missing.tsv"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli(["finetune", "--model", tmp_path / "nowhere", "--train", train, *COMMON]) == 2
    assert "no such" in capsys.readouterr().err


def test_early_stopping_and_eval_every(hf_base, tmp_path):
    train, dev = write_single(tmp_path / "train.tsv", 128, 1), write_single(tmp_path / "dev.tsv", 32, 2)
    out = tmp_path / "run"
    assert cli(["finetune", "--model", hf_base, "--train", train, "--dev", dev, "--text-column", "sentence",
                "--out", out, "--epochs", "10", "--lr", "1e-12", "--batch-size", "8", "--eval-every", "4",
                "--patience", "2", "--metric", "loss", *COMMON]) == 0
    result = json.loads((out / "final" / "train_result.json").read_text())
    # the loss cannot improve at this learning rate: the best is the first evaluation, 2 more and stop
    assert result["stopped"] == "stopped early" and result["step"] == 12
    assert result["best"]["metric"] == "loss" and result["best"]["step"] == 4
    evals = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in evals if r["kind"] == "eval"]
    assert steps == [4, 8, 12]
