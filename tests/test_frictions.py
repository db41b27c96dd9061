"""Issue 30's frictions: the run_glue / TrainingArguments spellings users type are aliases of
berts' flags (the config values they set, read back with --show-config), pretrain's dev shards
have a flag, and `berts pretrain --help` names only flags it has."""
from __future__ import annotations

import re

from berts.cli import main


def _shown(argv, capsys) -> dict:
    assert main([*argv, "--show-config"]) == 0
    out = capsys.readouterr().out
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\S+)\s+(\S+)", out, re.M)}


def test_run_glue_spellings(capsys):
    got = _shown(["finetune", "--model", "m", "--train", "t.tsv", "--max_seq_length", "64",
                  "--per_device_train_batch_size", "8", "--metric_for_best_model", "f1", "--save_steps", "50",
                  "--logging_steps", "5", "--report_to", "none", "--num_train_epochs", "2"], capsys)
    assert (got["data.max_length"], got["train.batch_size"], got["train.metric"], got["train.save_every"],
            got["log.every"], got["log.tensorboard"], got["train.epochs"]) == ("64", "8", "f1", "50", "5", "false", "2.0")
    got = _shown(["distill", "--teacher", "t", "--train", "t.tsv", "--metric_for_best_model", "accuracy",
                  "--report_to", "tensorboard", "--max_seq_length", "32"], capsys)
    assert (got["train.metric"], got["log.tensorboard"], got["data.max_length"]) == ("accuracy", "true", "32")


def test_pretrain_eval_shards_and_epochs(capsys):
    got = _shown(["pretrain", "--data", "d", "--eval-shards", "e", "--epochs", "2"], capsys)
    assert (got["data.eval_shards"], got["train.epochs"], got["train.max_steps"]) == ("e", "2.0", "null")


def test_pretrain_help_names_only_its_flags(capsys):
    import pytest

    from berts.cli import build_parser

    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = capsys.readouterr().out
    flags = set(re.findall(r"(--[a-z][a-z0-9_-]+)", text)) - {"--nproc_per_node"}  # torchrun's, in the description
    sub = build_parser()._subparsers._group_actions[0].choices["pretrain"]
    known = {o for a in sub._actions for o in a.option_strings}
    assert "--epochs" in flags and flags <= known, flags - known  # every flag the help mentions exists


def test_distill_reads_the_teachers_columns():
    """Task distillation takes the teacher's column settings where none is given (as predict does)."""
    from types import SimpleNamespace

    from berts.config.schema import DistillData
    from berts.runs.distill import teacher_columns

    teacher = SimpleNamespace(config=SimpleNamespace(finetune_data={
        "task": "classification", "text_column": "sentence", "pair_column": "question", "label_column": "gold",
        "format": "tsv", "header": True}))
    d = DistillData(train="t.tsv")
    assert teacher_columns(d, teacher) == ["text_column", "pair_column", "label_column", "format", "header"]
    assert (d.text_column, d.pair_column, d.label_column, d.format, d.header) == ("sentence", "question", "gold", "tsv", True)
    given = DistillData(train="t.tsv", text_column="review")  # a flag wins
    teacher_columns(given, teacher)
    assert (given.text_column, given.label_column) == ("review", "gold")


def test_a_budget_bar_shows_steps_done_and_expected(tmp_path):
    from berts.train.monitor import Monitor

    m = Monitor(tmp_path, progress="bar", tensorboard=False, budget=100.0, desc="train")
    assert m.expected_steps(0, 0.0) is None
    assert m.expected_steps(50, 25.0) == 200  # 2 steps/s, 75 s left: 50 + 150
    m.advance(50, 25.0)
    assert m.bar.desc.startswith("train step 50/~200")
    capped = Monitor(tmp_path / "b", progress="none", tensorboard=False, budget=100.0, total_steps=120)
    assert capped.expected_steps(50, 25.0) == 120  # max_steps ends it first
    m.close(), capped.close()
