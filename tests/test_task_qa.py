"""Extractive QA (berts.tasks.qa, ``berts finetune --task qa``): the head against transformers'
BertForQuestionAnswering both ways (logits and loss, 1e-5), the training run through the command
line with its logged EM/F1 recomputed by hand, ``berts predict`` / ``berts evaluate`` and their errors."""
import json
import string
import warnings

import numpy as np
import pytest
import torch

import berts
from berts.tasks.qa import BertForQuestionAnswering
from conftest import padded_batch, randomize

ATOL = 1e-5


def test_saved_directory_loads_in_transformers_with_the_same_logits(tiny_config, tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    ours = randomize(BertForQuestionAnswering(tiny_config)).eval()
    ours.save_pretrained(tmp_path / "ours")
    cfg = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert cfg["architectures"] == ["BertForQuestionAnswering"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = transformers.AutoModelForQuestionAnswering.from_pretrained(tmp_path / "ours").eval()
    assert type(theirs).__name__ == "BertForQuestionAnswering" and theirs.config.num_labels == 2
    batch = padded_batch()
    # positions: inside, [CLS], and past the end (clamped to S and ignored by both)
    targets = dict(start_positions=torch.tensor([3, 0, 40]), end_positions=torch.tensor([5, 0, 2]))
    with torch.no_grad():
        a, b = ours(**batch, **targets), theirs(**batch, **targets)
    torch.testing.assert_close(a.start_logits, b.start_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.end_logits, b.end_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.loss, b.loss, atol=ATOL, rtol=0)
    assert a.start_logits.shape == (3, 13) and a.logits is None
    # by hand: mean of the start and end cross-entropies over the rows not ignored
    s, e = a.start_logits, a.end_logits
    start = (torch.nn.functional.cross_entropy(s[:2], torch.tensor([3, 0]), reduction="sum")) / 2
    end = torch.nn.functional.cross_entropy(e, torch.tensor([5, 0, 2]))
    assert float(a.loss) == pytest.approx(float((start + end) / 2), abs=1e-6)


def test_a_transformers_directory_loads_into_berts_equal(tiny_config, tmp_path):
    transformers = pytest.importorskip("transformers")
    hf_config = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, max_position_embeddings=64)
    torch.manual_seed(1)
    theirs = randomize(transformers.BertForQuestionAnswering(hf_config), seed=3).eval()
    theirs.save_pretrained(tmp_path / "hf")
    ours = berts.load(tmp_path / "hf")
    assert isinstance(ours, BertForQuestionAnswering)
    batch = padded_batch()
    with torch.no_grad():
        a, b = ours.eval()(**batch), theirs(**batch)
    torch.testing.assert_close(a.start_logits, b.start_logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(a.end_logits, b.end_logits, atol=ATOL, rtol=0)
    # the fast paths (unpadded rows, packed attention) give the same numbers
    ours.set_fast_path(unpad=True, pack=True, sparse_output=True)
    with torch.no_grad():
        c = ours(**batch)
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(c.start_logits[mask], b.start_logits[mask], atol=ATOL, rtol=0)


# ----------------------------------------------------------------------------- the run, end to end
WORDS = "the dog bird sat ran flew over under near a big small red blue green house tree river hill".split()
NAMES = "ann bob cid dan eve fay gus".split()
COMMON = ["--set", "impl.threads=1", "--set", "impl.device=cpu", "--set", "log.progress=none",
          "--set", "log.tensorboard=false", "--set", "log.plots=false"]


def cli(argv):
    from berts.cli import main

    return main([str(a) for a in argv])


@pytest.fixture
def base(tmp_path):
    """A tiny berts BertModel directory with its tokenizer."""
    from berts import BertConfig, BertModel
    from berts.tokenizer.wordpiece import Tokenizer

    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *NAMES, "who", "?", ".",
              *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(dict.fromkeys(tokens))})
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(tmp_path / "bert",
                                                                                           tokenizer=tok)
    return tmp_path / "bert"


def qa_rows(n, seed, impossible=0.0):
    """'who ?' on a context of words holding one name (its answer), or none (unanswerable)."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(4, 30))]
        row = {"id": f"q{i}", "question": "who ?", "answers": []}
        if rng.random() >= impossible:
            name = rng.choice(NAMES)
            words.insert(rng.randrange(len(words)), name)
            context = " ".join(words)
            row["answers"] = [{"text": name, "answer_start": context.index(f" {name} ") + 1
                               if f" {name} " in context else context.index(name)}]
        else:
            context = " ".join(words)
        row["context"] = context
        rows.append(row)
    return rows


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_finetune_evaluate_predict(base, tmp_path, capsys):
    from berts.data.qa import read_qa
    from berts.tasks.qa import answer, score

    train = write_jsonl(tmp_path / "train.jsonl", qa_rows(48, 1))
    dev = write_jsonl(tmp_path / "dev.jsonl", qa_rows(16, 2))
    out = tmp_path / "run"
    assert cli(["finetune", "--task", "qa", "--model", base, "--train", train, "--dev", dev, "--out", out,
                "--max-steps", "6", "--batch-size", "8", "--lr", "3e-3", "--eval-every", "3", "--keep-last", "0",
                "--max-length", "24", "--doc-stride", "8", "--max-answer-length", "4", *COMMON]) == 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [e["step"] for e in evals] == [3, 6] and set(evals[-1]) >= {"f1", "exact_match"}
    cfg = json.loads((out / "final" / "config.json").read_text())
    assert cfg["architectures"] == ["BertForQuestionAnswering"]
    assert cfg["berts_qa"]["doc_stride"] == 8 and cfg["berts_qa"]["max_answer_length"] == 4
    assert cfg["berts_qa"]["version_2"] is False and cfg["berts_qa"]["lang"] == "en"
    # by hand: the final model's answers (the predict path), scored as SQuAD does
    model = berts.load(out / "final").eval()
    from berts.tokenizer.wordpiece import load_tokenizer

    examples = read_qa(dev)
    results = answer(model, load_tokenizer(out / "final"), examples)
    from berts.metrics.qa import squad_scores

    hand = squad_scores({r["id"]: r["text"] for r in results}, {e.id: [a for a, _ in e.answers] for e in examples})
    assert evals[-1]["f1"] == pytest.approx(hand["f1"], abs=1e-6)
    assert evals[-1]["exact_match"] == pytest.approx(hand["exact_match"], abs=1e-6)
    assert score(examples, results)["f1"] == pytest.approx(hand["f1"])
    for r, e in zip(results, examples):  # offsets point into the context
        assert r["text"] == e.context[r["start"]:r["end"]]
