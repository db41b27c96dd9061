"""--task multiple-choice: transformers' BertForMultipleChoice both ways (same logits and loss,
1e-5), padded choices masked out of the softmax, the reader's one-line errors, and the whole
command-line path (finetune -> evaluate -> predict) on a tiny model."""
import json
import random
import string
import warnings

import numpy as np
import pytest
import torch
import transformers
from conftest import randomize
from train_utils import cli

import berts
from berts import BertConfig
from berts.errors import UserError
from berts.tasks.multiple_choice import BertForMultipleChoice, MultipleChoiceDataset, read_choices

WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def choice_batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 99, (2, 3, 10), generator=g)
    am = torch.ones_like(ids)
    am[1, 2, 6:] = 0
    ids[am == 0] = 0
    tt = torch.zeros_like(ids)
    tt[..., 5:] = 1
    tt[am == 0] = 0
    return dict(input_ids=ids, attention_mask=am, token_type_ids=tt)


def test_saved_directory_loads_in_transformers_with_the_same_logits_and_loss(tmp_path, tiny_config):
    model = randomize(BertForMultipleChoice(tiny_config)).eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForMultipleChoice"]
    theirs = transformers.AutoModelForMultipleChoice.from_pretrained(tmp_path).eval()
    assert type(theirs).__name__ == "BertForMultipleChoice"
    batch, labels = choice_batch(), torch.tensor([2, 0])
    with torch.no_grad():
        a, b = model(**batch, labels=labels), theirs(**batch, labels=labels)
    assert a.logits.shape == b.logits.shape == (2, 3)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=1e-5, rtol=0)


def test_a_transformers_directory_loads_into_berts_equal(tmp_path):
    hf_config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, max_position_embeddings=64)
    theirs = randomize(transformers.BertForMultipleChoice(hf_config)).eval()
    theirs.save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every weight found
        ours = berts.load(tmp_path).eval()
    assert type(ours) is BertForMultipleChoice
    with torch.no_grad():
        torch.testing.assert_close(ours(**choice_batch(1)).logits, theirs(**choice_batch(1)).logits,
                                   atol=1e-5, rtol=0)


def test_padded_choices_get_probability_zero(tiny_config):
    """Row 0 has 2 real choices of 3: its logits for them equal those of the row run alone with 2
    choices, its third is the dtype's minimum, and the loss is the 2-way cross-entropy."""
    model = randomize(BertForMultipleChoice(tiny_config)).eval()
    batch = choice_batch()
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    labels = torch.tensor([1, 2])
    with torch.no_grad():
        out = model(**batch, choice_mask=mask, labels=labels)
        alone = model(**{k: v[:1, :2] for k, v in batch.items()}).logits  # [1, 2]
        full = model(**batch).logits
    torch.testing.assert_close(out.logits[0, :2], alone[0], atol=1e-5, rtol=0)
    assert out.logits[0, 2] == torch.finfo(torch.float32).min
    assert out.logits.softmax(-1)[0, 2] == 0
    expected = (torch.nn.functional.cross_entropy(alone, labels[:1])
                + torch.nn.functional.cross_entropy(full[1:], labels[1:])) / 2
    torch.testing.assert_close(out.loss, expected, atol=1e-5, rtol=0)


class Data:
    """The FinetuneData fields read_choices reads."""
    text_column, label_column, format = "text", "label", "auto"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_reader_and_dataset(tmp_path):
    from berts.tokenizer.wordpiece import Tokenizer

    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])})
    path = write_jsonl(tmp_path / "mc.jsonl", [
        {"context": "the dog sat", "choices": ["a tree", "a house"], "label": 1},
        {"question": "the bird", "choices": ["flew", "sat", "ran"], "label": "2"},
        {"context": "a hill", "question": "the river", "choices": ["big"], "label": 0}])
    examples, _ = read_choices(path, Data())
    assert [e.label for e in examples] == [1, 2, 0]
    assert examples[2].first == "a hill" and examples[2].seconds == ("the river big",)
    ds = MultipleChoiceDataset(examples, tok, max_length=16)
    b = ds[(0, 0, np.array([0, 1, 2]))]
    assert b["input_ids"].shape[:2] == (3, 3)
    assert b["choice_mask"].tolist() == [[1, 1, 0], [1, 1, 1], [1, 0, 0]]
    # a choice: [CLS] context [SEP] choice [SEP]; a padded one: [CLS] [SEP]
    assert tok.convert_ids_to_tokens(b["input_ids"][0, 1][b["attention_mask"][0, 1] == 1].tolist()) == \
        ["[CLS]", "the", "dog", "sat", "[SEP]", "a", "house", "[SEP]"]
    assert b["input_ids"][0, 2, :2].tolist() == [tok.cls_id, tok.sep_id] and b["attention_mask"][0, 2].sum() == 2


@pytest.mark.parametrize("row,message", [
    ({"context": "x", "choices": [], "label": 0}, "mc.jsonl:2: 0 choices"),
    ({"context": "x", "choices": ["a", "b"], "label": 2}, "mc.jsonl:2: label 2 is not a choice index (0..1)"),
    ({"context": "x", "choices": "a", "label": 0}, "mc.jsonl:2: field 'choices'"),
    ({"choices": ["a"], "label": 0}, "mc.jsonl:2: no field 'context' or 'question'"),
])
def test_bad_rows_are_one_line_naming_file_and_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "mc.jsonl", [{"context": "ok", "choices": ["a"], "label": 0}, row])
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        read_choices(path, Data())


@pytest.fixture
def base(tmp_path):
    from berts import BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(set(WORDS)), *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=32)).save_pretrained(tmp_path / "bert",
                                                                                           tokenizer=tok)
    return tmp_path / "bert"


def rows(n, seed):
    """The right choice repeats the context's first word (learnable); 2 to 4 choices."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        context = [rng.choice(WORDS) for _ in range(4)]
        k = rng.randint(2, 4)
        label = rng.randrange(k)
        choices = [context[0] if j == label else rng.choice([w for w in WORDS if w != context[0]]) for j in range(k)]
        out.append({"context": " ".join(context), "choices": choices, "label": label})
    return out


def test_finetune_evaluate_predict_through_the_command_line(base, tmp_path, capsys):
    from berts.tasks.multiple_choice import ChoicePredictor, read_choices, score

    train, dev = write_jsonl(tmp_path / "train.jsonl", rows(48, 1)), write_jsonl(tmp_path / "dev.jsonl", rows(20, 2))
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "multiple-choice", "--model", base, "--train", train, "--dev", dev,
                "--out", out, "--max-steps", "4", "--batch-size", "8", "--lr", "1e-3", "--eval-every", "4",
                "--keep-last", "0", *COMMON]) == 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert set(evals[-1]) >= {"accuracy", "loss"}
    # the logged accuracy is the served model's, by hand
    pred = ChoicePredictor.from_pretrained(out / "final", device="cpu")
    examples, _ = read_choices(dev, Data())
    logits = pred.logits(pred.dataset(examples))
    by_hand = float((logits.argmax(-1) == np.array([e.label for e in examples])).mean())
    assert evals[-1]["accuracy"] == pytest.approx(by_hand, abs=1e-9)
    assert np.isinf(logits[[i for i, e in enumerate(examples) if len(e.choices) < 4][0], -1])
    capsys.readouterr()

    assert cli(["evaluate", str(out / "final"), str(dev), "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == pytest.approx(by_hand) and result["examples"] == 20
    report = result["report"]
    assert sum(sum(r) for r in report["confusion"]) == 20 and len(report["classes"]) == 4
    assert result == dict(score(logits, np.array([e.label for e in examples])), examples=20)

    assert cli(["predict", str(out / "final"), str(dev), "--out", str(tmp_path / "p.jsonl"), "--device", "cpu"]) == 0
    predictions = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [p["line"] for p in predictions] == list(range(1, 21))
    probs = torch.from_numpy(logits).softmax(-1).numpy()
    for p, e, q in zip(predictions, examples, probs):
        assert p["choice"] == int(q.argmax()) and p["text"] == e.choices[p["choice"]]
        assert p["probability"] == pytest.approx(float(q.max()), abs=1e-6)
        assert len(p["probabilities"]) == len(e.choices)

    # int8 (torch dynamic): reported against fp32; berts compare: an fp32 and an int8 row
    assert cli(["evaluate", str(out / "final"), str(dev), "--json", "--int8"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["fp32"] == {k: v for k, v in result.items() if k not in ("report", "examples")}
    assert 0 <= q["int8_vs_fp32"]["agreement"] <= 1 and q["examples"] == 20
    from berts.tools.compare import compare

    fp32_row, int8_row = compare([out / "final"], dev, int8=True, latency_examples=8, repeats=1)
    assert fp32_row["metric"] == "accuracy" and fp32_row["score"] == pytest.approx(by_hand)
    assert int8_row["precision"] == "int8" and int8_row["score"] == pytest.approx(q["accuracy"])
    assert int8_row["agreement"] == pytest.approx(q["int8_vs_fp32"]["agreement"])
    assert fp32_row["latency_b1_ms"] > 0 and fp32_row["flops_per_token"] > 0

    capsys.readouterr()
    assert cli(["predict", str(out / "final"), str(dev), "--int8"]) == 0
    printed = capsys.readouterr()
    assert len(printed.out.splitlines()) == 20
    assert "predict --int8: against fp32 on the first 20 examples: agreement" in printed.err
    assert cli(["evaluate", str(out / "final"), str(dev), "--speed", "0.3"]) == 2
    assert "--speed: early exit is for classification directories" in capsys.readouterr().err

    bad = write_jsonl(tmp_path / "bad.jsonl", rows(2, 3) + [{"context": "x", "choices": [], "label": 0}])
    target = tmp_path / "never.jsonl"
    capsys.readouterr()
    assert cli(["predict", str(out / "final"), str(bad), "--out", str(target), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("bad.jsonl:3: 0 choices (a row needs at least one)") and "\n" not in err
    assert not target.exists()  # nothing written


def test_early_exit_is_refused_in_one_line(tmp_path, capsys):
    assert cli(["finetune", "--task", "multiple-choice", "--early-exit", "--model", tmp_path, "--train",
                tmp_path / "t.jsonl", "--out", tmp_path / "o"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "--early-exit trains FastBERT's exits on a sequence classifier (--task classification or regression), "
        "not on a --task multiple-choice model")
    assert not (tmp_path / "o").exists()
