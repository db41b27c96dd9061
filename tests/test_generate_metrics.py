"""BLEU and ROUGE-L by hand, and `berts finetune --task seq2seq` end to end: the seq2seq dataset's
layout, evaluation with loss / token_acc / bleu / rouge_l, and `berts generate` on the result."""
import json
import math

import pytest

from berts.model.attention import MODES
from berts.data.seq2seq import Seq2SeqDataset
from berts.data.tables import Example
from berts.metrics import corpus_bleu, lcs_length, rouge_l
from berts.objectives.lm import next_token_targets
from berts.tokenizer.wordpiece import Tokenizer
from train_utils import cli

REF = "the cat sat on the mat".split()


def test_bleu_by_hand():
    assert corpus_bleu([REF], [REF]) == pytest.approx(1.0)
    longer = REF + ["today"]  # p1..p4 = 6/7, 5/6, 4/5, 3/4; longer than the reference: no penalty
    assert corpus_bleu([longer], [REF]) == pytest.approx((6 / 7 * 5 / 6 * 4 / 5 * 3 / 4) ** 0.25)
    short = REF[:5]  # every n-gram matches; brevity penalty exp(1 - 6/5)
    assert corpus_bleu([short], [REF]) == pytest.approx(math.exp(-0.2))
    assert corpus_bleu(["the cat the cat on the mat".split()], [REF]) == 0.0  # no 4-gram match, unsmoothed
    # corpus level: n-gram counts summed over the pairs before the precisions
    two = corpus_bleu([longer, REF], [REF, REF])
    assert two == pytest.approx((12 / 13 * 10 / 11 * 8 / 9 * 6 / 7) ** 0.25)
    # clipping: "the the the" against a reference with two "the"
    assert corpus_bleu(["the the the the".split()], ["the the cat sat".split()], max_n=1) == pytest.approx(0.5)


def test_rouge_l_by_hand():
    assert lcs_length("a b c d e".split(), "a c e f".split()) == 3
    hyp = "the cat was on the mat".split()
    p = r = 5 / 6  # LCS "the cat on the mat"
    assert rouge_l([hyp], [REF]) == pytest.approx(2 * p * r / (p + r))
    assert rouge_l([["x"], REF], [REF, REF]) == pytest.approx(0.5)
    assert rouge_l([[]], [REF]) == 0.0


def tok():
    words = "the cat sat on mat a dog ran over hill bird flew near river red blue green".split()
    return Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)})


def test_seq2seq_dataset_layout():
    t = tok()
    ds = Seq2SeqDataset([Example("red cat", "the cat sat"), Example("blue dog", "a dog ran over the hill")], t,
                        max_length=10, pad_to_multiple_of=4)
    b = ds.batch([0, 1])
    cls, sep = t.cls_id, t.sep_id
    assert ds.ids[0].tolist() == [cls, *t.encode_ids_batch(["red cat"])[0], sep, *t.encode_ids_batch(["the cat sat"])[0], sep]
    # the target cut to 5 tokens (max_length // 2), its [SEP] counted: "a dog ran over"
    assert ds.ids[1].tolist() == [cls, *t.encode_ids_batch(["blue dog"])[0], sep,
                                  *t.encode_ids_batch(["a dog ran over"])[0], sep]
    assert int(b["lm_mode"]) == MODES.index("seq2seq")
    pos, nxt = next_token_targets(b["input_ids"], b["attention_mask"], b["token_type_ids"], target_only=True)
    assert b["lm_positions"].tolist() == pos.tolist() and b["lm_labels"].tolist() == nxt.tolist()
    assert ds.source_ids(0) == [cls, *t.encode_ids_batch(["red cat"])[0], sep]


PAIRS = [("red cat", "the cat sat on the mat"), ("blue dog", "a dog ran over the hill"),
         ("green bird", "a bird flew near the river"), ("red dog", "the dog sat on the hill")]


def test_finetune_seq2seq_end_to_end(tmp_path, capsys):
    t = tok()
    t.save_pretrained(tmp_path / "tok")
    data = tmp_path / "pairs.tsv"
    data.write_text("src\ttgt\n" + "".join(f"{s}\t{g}\n" for s, g in PAIRS * 4))
    args = ["finetune", "--from-scratch", "tiny", "--tokenizer", tmp_path / "tok", "--task", "seq2seq",
            "--train", data, "--dev", data, "--source-column", "src", "--target-column", "tgt",
            "--out", tmp_path / "out", "--lr", "3e-3", "--epochs", "40", "--batch-size", "8",
            "--set", "model.hidden_size=64", "--set", "model.num_hidden_layers=2", "--set", "model.num_attention_heads=2",
            "--set", "model.intermediate_size=128", "--set", "model.hidden_dropout_prob=0.0",
            "--set", "model.attention_probs_dropout_prob=0.0", "--set", "impl.device=cpu",
            "--set", "log.progress=none", "--set", "log.tensorboard=false", "--set", "log.plots=false",
            "--set", "data.num_workers=0", "--set", "train.eval_every=40", "--set", "schedule.warmup=0.05"]
    assert cli(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert evals and {"loss", "token_acc", "bleu", "rouge_l"} <= set(evals[-1])
    assert evals[-1]["rouge_l"] == pytest.approx(1.0) and evals[-1]["token_acc"] == pytest.approx(1.0)
    assert evals[-1]["bleu"] == pytest.approx(1.0)
    cfg = json.loads((tmp_path / "out" / "best" / "config.json").read_text())
    assert cfg["lm_mode"] == "seq2seq" and cfg["architectures"] == ["BertForUnifiedLM"]
    capsys.readouterr()
    assert cli(["generate", tmp_path / "out" / "best", "--prompt", "green bird"]) == 0
    assert capsys.readouterr().out == "a bird flew near the river\n"
