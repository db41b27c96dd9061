"""The config loader: several files merged left to right, --set last, errors naming the file and
line they came from, the nearest key for a typo, typed values; and every shipped config group loads."""
from pathlib import Path
from typing import Literal

import pytest

from berts.config.loader import build_config, coerce, load_config, show_config
from berts.config.schema import DistillConfig, FinetuneConfig, PretrainConfig
from berts.config.validate import check_run
from berts.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_files_merge_left_to_right_and_set_comes_last(tmp_path):
    a = write(tmp_path, "a.yaml", "model:\n  preset: mini\n  hidden_size: 64\noptim:\n  lr: 1e-3\n  eps: 1e-8\n")
    b = write(tmp_path, "b.yaml", "model:\n  preset: tiny\noptim:\n  lr: 2e-4\n")
    cfg = load_config(PretrainConfig, [a, b], ["optim.lr=5e-4"])
    # b's keys win, a's other keys stay (sections merge key by key), --set wins over both
    assert cfg.model.preset == "tiny" and cfg.model.overrides == {"hidden_size": 64}
    assert cfg.optim.eps == 1e-8 and cfg.optim.lr == 5e-4
    assert load_config(PretrainConfig, [b, a]).model.preset == "mini"  # the order is the rule
    assert load_config(PretrainConfig, [a, b]).optim.lr == 2e-4


def test_an_error_in_the_second_file_names_that_file_and_line(tmp_path):
    a = write(tmp_path, "a.yaml", "optim:\n  lr: 1e-3\n")
    b = write(tmp_path, "b.yaml", "train:\n  max_steps: 10\n  batch_sise: 8\n")
    with pytest.raises(UserError, match=r"^.*b\.yaml:3: unknown key train\.batch_sise "
                                        r"\(did you mean train\.batch_size\?\)$"):
        load_config(PretrainConfig, [a, b])
    c = write(tmp_path, "c.yaml", "\n\noptim:\n  lr: fast\n")
    with pytest.raises(UserError, match=r"c\.yaml:4: optim\.lr must be a number or null, got 'fast'"):
        load_config(PretrainConfig, [a, c])


def test_typed_values_through_the_coercion():
    assert coerce("1e-3", float) == 0.001  # YAML 1.1 reads 1e-3 as a string
    assert coerce(3.0, int) == 3 and coerce("1_000", int) == 1000
    assert coerce(0, str) == "0"  # a column index
    assert coerce("BF16", Literal["auto", "fp32", "bf16"]) == "bf16"
    assert coerce("null", int | None) is None and coerce([0.9, 0.98], list[float]) == [0.9, 0.98]
    with pytest.raises(UserError, match=r"--set train\.batch_size=true: train\.batch_size must be an integer, "
                                        r"got True"):
        load_config(PretrainConfig, None, ["train.batch_size=true"])  # true is not the number 1
    with pytest.raises(UserError, match=r"train\.max_steps must be an integer or null, got 2\.5"):
        load_config(PretrainConfig, None, ["train.max_steps=2.5"])


def test_show_config_of_merged_files(tmp_path, capsys):
    from berts.cli import main

    a = write(tmp_path, "a.yaml", "model:\n  preset: mini\n")
    b = write(tmp_path, "b.yaml", "train:\n  max_steps: 7\n")
    assert main(["pretrain", "--config", str(a), str(b), "--set", "optim.lr=0.5", "--show-config"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:]}
    assert rows["model.preset"] == "mini" and rows["train.max_steps"] == "7" and rows["optim.lr"] == "0.5"
    assert "model.hidden_size" in rows  # BertConfig's keys, through the model section's extra_keys
    assert show_config(build_config(PretrainConfig)).count("\n") == out.strip().count("\n")
    bad = write(tmp_path, "bad.yaml", "# a comment\noptim:\n  lr: 1e-3\n  betass: [0.9, 0.98]\n")
    assert main(["pretrain", "--config", str(a), str(bad), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"berts: error: {bad}:4: unknown key optim.betass (did you mean optim.betas?)\n"


# ----------------------------------------------------------------------------- the shipped configs
KINDS = {"model": (PretrainConfig, FinetuneConfig, DistillConfig), "budget": (PretrainConfig, FinetuneConfig,
         DistillConfig), "objectives": (PretrainConfig,), "recipe": (PretrainConfig,), "task": (FinetuneConfig,)}
SHIPPED = sorted((ROOT / "configs").rglob("*.yaml"))


def test_every_group_is_listed():
    assert {p.parent.name for p in SHIPPED} - {"configs"} == set(KINDS)
    assert len(SHIPPED) >= 15


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(ROOT / "configs").as_posix())
def test_shipped_config_loads_and_validates(path):
    group = path.parent.name
    classes = KINDS.get(group) or ((PretrainConfig,) if "pretrain" in path.name else (FinetuneConfig,))
    for cls in classes:
        cfg = load_config(cls, path)  # validate() ran: the values make sense together
        assert cfg is not None
    text = path.read_text()
    for section_key in [line.split(":")[0].strip() for line in text.splitlines()
                        if line.startswith("  ") and not line.strip().startswith("#") and ":" in line]:
        assert section_key in show_config(cfg)  # every key the file sets is a key of the config


def test_groups_compose_into_a_runnable_pretraining_config():
    cfg = load_config(PretrainConfig, [ROOT / "configs/model/tiny.yaml", ROOT / "configs/objectives/spanbert.yaml",
                                       ROOT / "configs/budget/15m.yaml"], ["data.shards=shards"])
    assert (cfg.model.preset, cfg.data.masking, cfg.data.objectives) == ("tiny", "span", ["mlm", "sbo"])
    assert (cfg.train.budget, cfg.train.max_steps, cfg.train.epochs) == ("15m", None, None)
    check_run(cfg)  # data.shards given: ready to run
    with pytest.raises(UserError, match="no training data: set data.shards"):
        check_run(load_config(PretrainConfig, ROOT / "configs/model/tiny.yaml"))
    ft = load_config(FinetuneConfig, [ROOT / "configs/finetune.yaml", ROOT / "configs/task/stsb.yaml",
                                      ROOT / "configs/budget/smoke.yaml"])
    assert (ft.data.task, ft.train.metric, ft.train.max_steps, ft.model.overrides) == \
        ("regression", "pearson", 20, {"classifier_dropout": 0.1})


# ----------------------------------------------------------------------------- demo and bench settings
def parse(argv):
    from berts.cli import build_parser

    return build_parser().parse_args(argv)


def test_demo_settings_through_the_loader(tmp_path):
    from berts.commands.demo import settings

    f = write(tmp_path, "demo.yaml", "finetune_lr: 3e-4\nsteps:\n  zh.pretrain: 15\nbudget: 30m\n")
    s = settings(parse(["demo", "--settings", str(f), "--preset", "mini", "--set", "en_lr=2e-4", "--set", "workers=1"]))
    assert (s.finetune_lr, s.steps, s.budget, s.preset, s.en_lr, s.workers) == (3e-4, {"zh.pretrain": 15}, "30m",
                                                                                "mini", 2e-4, 1)
    q = settings(parse(["demo", "--quick", "--vocab-size", "500"]))
    assert (q.quick, q.budget, q.vocab_size, q.max_seq_length) == (True, "3m", 500, 64)  # --quick, then the flag
    assert settings(parse(["demo", "--quick", "--vocab-size", "20000"])).vocab_size == 8000  # never above --quick's
    bad = write(tmp_path, "bad.yaml", "lang: zh\nbudgett: 5m\n")
    with pytest.raises(UserError, match=r"bad\.yaml:2: unknown key budgett \(did you mean budget\?\)"):
        settings(parse(["demo", "--settings", str(bad)]))
    with pytest.raises(UserError, match=r"--set en_precision=fp8: en_precision must be auto \| fp32 \| bf16"):
        settings(parse(["demo", "--set", "en_precision=fp8"]))
    with pytest.raises(UserError, match=r"--set workers=two: workers must be an integer, got 'two'"):
        settings(parse(["demo", "--set", "workers=two"]))


def test_bench_options_through_the_loader(tmp_path, capsys):
    from berts.cli import main
    from berts.commands.bench import options

    f = write(tmp_path, "bench.yaml", "seq: 64\nbatch: 4\nonly: [infer]\nmask_prob: 0.3\n")
    o = options(parse(["bench", "--options", str(f), "--batch", "8", "--set", "steps=1"]))
    assert (o.seq, o.batch, o.steps, o.only, o.mask_prob, o.preset) == (64, 8, 1, ("infer",), 0.3, "mini")
    assert options(parse(["bench", "--only", "pretrain,infer", "--no-transformers"])).only == ("pretrain", "infer")
    assert options(parse(["bench", "--no-transformers"])).transformers is False
    bad = write(tmp_path, "b2.yaml", "seq: 64\n\nseq_len: 32\n")
    with pytest.raises(UserError, match=r"b2\.yaml:3: unknown key seq_len \(did you mean seq\?\)"):
        options(parse(["bench", "--options", str(f), str(bad)]))
    assert main(["bench", "--options", str(f), "--set", "seq=long"]) == 2
    assert "--set seq=long: seq must be an integer, got 'long'" in capsys.readouterr().err
    assert main(["bench", "--options", str(f), "--show-options"]) == 0
    assert "only          [infer]" in capsys.readouterr().out
