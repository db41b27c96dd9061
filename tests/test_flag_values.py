"""Issue 30, class 3: values that mean nothing are one line, not a traceback nor a silent run.
The flags: one layer (berts.util.values, argparse types) shared by every command; the values a
config or the Python API can also carry (distillation weights, generation settings) are checked
where the config / GenerationConfig is validated."""
from __future__ import annotations

import argparse
import math

import pytest

from berts.cli import main
from berts.errors import UserError
from berts.util import values


@pytest.mark.parametrize("argv, says", [
    (["compare", "m", "--eval-file", "f", "--threads", "-2"], "--threads: an integer >= 1 expected, got '-2'"),
    (["generate", "m", "--temperature", "nan"], "--temperature: a finite number expected, got 'nan'"),
    (["generate", "m", "--length-penalty", "nan"], "--length-penalty: a finite number expected, got 'nan'"),
    (["generate", "m", "--top-p", "0"], "--top-p: a number in (0, 1] expected, got '0'"),
    (["augment", "f", "--model", "m", "--out", "o", "--batch-size", "0"], "--batch-size: an integer >= 1"),
    (["augment", "f", "--model", "m", "--out", "o", "--n", "1000000"], "--n: an integer in [1, 1,000] expected"),
    (["distill", "--alpha-ce", "-1"], "--alpha-ce: a finite number >= 0 expected, got '-1'"),
    (["finetune", "--lr", "inf"], "--learning_rate: a finite number expected, got 'inf'"),
    (["finetune", "--dropout", "1.5"], "--dropout: a number in [0, 1] expected"),
    (["prepare", "x", "--tokenizer", "t", "--out", "o", "--workers", "0"], "--workers: an integer >= 1"),
    (["bench", "--threads", "0"], "--threads: an integer >= 1"),
    (["tokenizer", "train", "c", "--out", "o", "--vocab-size", "zero"], "--vocab-size: an integer expected, got 'zero'"),
    (["export", "m", "--onnx", "o.onnx", "--threads", "0"], "--threads: an integer >= 1"),
    (["predict", "m", "f", "--speed", "-0.1"], "--speed: a number in [0, 1] expected"),
])
def test_numeric_flags_are_one_line_errors(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and says in err, err


def test_the_types_by_hand():
    assert values.count("3") == 3 and values.natural("0") == 0 and values.finite("-2.5") == -2.5
    assert values.probability("1") == 1.0 and values.count_at_most(5)("5") == 5
    for convert, text in ((values.count, "0"), (values.natural, "-1"), (values.positive, "0"), (values.finite, "nan"),
                          (values.nonnegative, "-inf"), (values.probability, "nan"), (values.count, "1.5"),
                          (values.count_at_most(5), "6")):
        with pytest.raises(argparse.ArgumentTypeError):
            convert(text)


def test_distillation_weights_that_make_no_loss_are_refused():
    from berts.config.schema import DistillConfig
    from berts.config.loader import load_config
    from berts.config.validate import check_run

    base = ["distill.teacher=t", "data.train=f.tsv", "distill.student_layers=[0]"]
    zero = load_config(DistillConfig, None, [*base, "distill.alpha_ce=0", "distill.alpha_mlm=0", "distill.alpha_cos=0"])
    with pytest.raises(UserError, match="every loss weight is 0"):
        check_run(zero)
    negative = load_config(DistillConfig, None, [*base, "distill.alpha_att=-1"])
    with pytest.raises(UserError, match=r"distill.alpha_att is a loss weight: a finite number >= 0, got -1"):
        check_run(negative)
    check_run(load_config(DistillConfig, None, [*base, "distill.alpha_ce=0", "distill.alpha_mlm=1", "distill.alpha_cos=0"]))


def test_generation_values_empty_and_long_prompts(tmp_path, capsys):
    import string

    import torch

    from berts.model.config import BertConfig
    from berts.model.heads import BertForUnifiedLM
    from berts.serve.generate import GenerationConfig, TextGenerator
    from berts.tokenizer.wordpiece import Tokenizer

    for bad in (dict(temperature=math.nan), dict(length_penalty=math.nan), dict(top_p=math.nan)):
        with pytest.raises(UserError, match="must be"):
            GenerationConfig(**bad).validate()
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(tokens)})
    torch.manual_seed(0)
    m = BertForUnifiedLM(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=32, max_position_embeddings=16))
    m.config.extra["berts_lm_mode"] = "left-to-right"
    m.save_pretrained(tmp_path / "lm", tok)
    gen = TextGenerator.load(tmp_path / "lm")
    with pytest.raises(UserError, match="an empty prompt"):
        gen("   ")
    long = " ".join("abcdefghijklmnopqrstuvwxyz")  # 26 tokens + [CLS], 16 positions
    with pytest.warns(UserWarning, match=r"a prompt of 27 tokens .* cut to 12"):
        assert gen.fit(gen.prompt_ids(long), 4) == [tok.cls_id] + gen.prompt_ids(long)[-11:]
    with pytest.warns(UserWarning):
        text = gen(long, max_new_tokens=4)
    assert 1 <= len(text.split()) <= 4  # it generates (an empty line before)
    # the command: an empty line of a file, --device cuda without CUDA
    (tmp_path / "p.txt").write_text("a b\n\nc\n")
    assert main(["generate", str(tmp_path / "lm"), str(tmp_path / "p.txt")]) == 2
    assert capsys.readouterr().err.strip().endswith("p.txt:2: an empty prompt: nothing to generate from")
    if not torch.cuda.is_available():
        assert main(["generate", str(tmp_path / "lm"), "--prompt", "a", "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "CUDA is not available" in err


def test_augment_bounds_a_huge_line_to_the_window(tmp_path):
    import string

    import torch

    from berts.model.config import BertConfig
    from berts.model.heads import BertForMaskedLM
    from berts.tokenizer.wordpiece import Tokenizer
    from berts.tools.augment import AugmentStats, Augmenter

    words = ["cat", "dog", "tree", "house"]
    tok = Tokenizer.from_vocab({t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words,
                                                             *string.ascii_lowercase])})
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                                       num_attention_heads=2, intermediate_size=32, max_position_embeddings=32))
    aug = Augmenter(model, tok, n=2, p=1.0, top_k=2)
    stats = AugmentStats()
    huge = " ".join(words * 50_000)  # 200,000 words
    out = aug.augment([huge, "cat dog"], stats=stats)
    assert (stats.cut, stats.window) == (1, 512)
    assert out[0][0] == huge and len(out[0]) > 1 and all(len(v.split()) == 512 for v in out[0][1:])


def test_distill_student_preset_with_a_set_of_what_the_teacher_fixes(tmp_path):
    """`distill --student-preset tiny --set model.vocab_size=...` was a TypeError (the key given twice)."""
    from berts.config.loader import load_config
    from berts.config.schema import DistillConfig
    from berts.model.config import BertConfig
    from berts.model.heads import BertForSequenceClassification
    from berts.runs.distill import build_student

    teacher = BertForSequenceClassification(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2,
                                                       num_attention_heads=2, intermediate_size=32,
                                                       max_position_embeddings=32, num_labels=2))
    base = ["distill.teacher=t", "data.train=f.tsv", "model.preset=tiny"]
    cfg = load_config(DistillConfig, None, [*base, "model.vocab_size=99"])
    with pytest.raises(UserError, match=r"--set model.vocab_size=99: a distilled student has the teacher's "
                                        r"vocab_size \(50\); leave it out"):
        build_student(cfg, teacher, BertForSequenceClassification, False)
    same = load_config(DistillConfig, None, [*base, "model.vocab_size=50", "model.num_hidden_layers=1"])
    student, _ = build_student(same, teacher, BertForSequenceClassification, False)
    assert (student.config.vocab_size, student.config.num_hidden_layers, student.config.max_position_embeddings) == (50, 1, 32)
