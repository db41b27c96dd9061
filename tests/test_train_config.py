"""The training config: YAML sections, --set overrides, type checks, errors naming file:line."""
from pathlib import Path

import pytest
import yaml

from berts.errors import UserError
from berts.train.plan import BudgetPlan
from berts.config.schema import (
    FinetuneConfig,
    PretrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_duration,
    save_config,
)

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_shipped_configs_load():
    cfg = load_config(PretrainConfig, ROOT / "configs/pretrain-tiny.yaml")
    assert cfg.model.preset == "tiny" and cfg.model.overrides == {"max_position_embeddings": 128}
    assert cfg.optim.lr == 1e-3 and cfg.optim.betas == [0.9, 0.98]  # "1.0e-3" and lists are read as numbers
    fcfg = load_config(FinetuneConfig, ROOT / "configs/finetune.yaml")
    assert fcfg.model.overrides == {"classifier_dropout": 0.1} and fcfg.train.epochs == 3


def test_set_overrides_yaml_with_types(tmp_path):
    p = write(tmp_path, "optim:\n  lr: 1e-3\ntrain:\n  max_steps: 10\n")
    cfg = load_config(PretrainConfig, p, ["optim.lr=5e-4", "train.batch_size=16", "model.hidden_size=64",
                                          "optim.grad_clip=null", "schedule.name=one_cycle", "impl.deterministic=true"])
    assert cfg.optim.lr == 5e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.train.batch_size == 16 and cfg.train.max_steps == 10
    assert cfg.model.overrides["hidden_size"] == 64
    assert cfg.optim.grad_clip is None and cfg.schedule.name == "one_cycle" and cfg.impl.deterministic is True


@pytest.mark.parametrize("text, message", [
    ("optim:\n  lr: 1e-3\n  betass: [0.9, 0.99]\n", r"c.yaml:3: unknown key optim.betass \(did you mean optim.betas\?\)"),
    ("optim:\n  lr: fast\n", r"c.yaml:2: optim.lr must be a number or null, got 'fast'"),
    ("optimizer:\n  lr: 1\n", r"c.yaml:1: unknown section optimizer"),
    ("train:\n  batch_size: 3.5\n", r"c.yaml:2: train.batch_size must be an integer"),
    ("impl:\n  precision: fp8\n", r"c.yaml:2: impl.precision must be auto \| fp32 \| bf16 \| fp16, got 'fp8'"),
    ("model:\n  hidden_sise: 3\n", r"c.yaml:2: unknown key model.hidden_sise \(did you mean model.hidden_size\?\)"),
    ("train:\n  max_steps: [1\n", r"c.yaml:\d+: invalid YAML"),
    ("train: 3\n", r"c.yaml:1: section train must be a mapping"),
])
def test_yaml_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(UserError, match=message):
        load_config(PretrainConfig, write(tmp_path, text))


@pytest.mark.parametrize("item, message", [
    ("optim.lrr=1", r"--set optim.lrr=1: unknown key optim.lrr \(did you mean optim.lr\?\)"),
    ("optim.lr=abc", r"--set optim.lr=abc: optim.lr must be a number"),
    ("train.max_steps=ten", r"train.max_steps must be an integer or null"),
    ("optim=3", r"optim is a section"),
    ("lr=3", r"unknown section lr"),
    ("optim.lr", r"expected section.key=value"),
    ("train.budget=15", r"budget '15': give a duration with a unit"),
    ("train.batch_size=30", r"train.batch_size 30 is not a multiple of train.grad_accum 4"),
])
def test_set_errors(item, message):
    with pytest.raises(UserError, match=message):
        load_config(PretrainConfig, None, ["train.grad_accum=4", "train.batch_size=32", item])


def test_cli_reports_a_bad_key_in_one_line(tmp_path, capsys):
    from berts.cli import main

    rc = main(["pretrain", "--data", str(tmp_path), "--set", "optim.lrr=1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("berts: error: --set optim.lrr=1: unknown key optim.lrr") and err.count("\n") == 1


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(PretrainConfig, None, ["model.hidden_size=48", "train.budget=1h30m", "optim.name=lamb"])
    save_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["model"]["hidden_size"] == 48 and data["optim"]["name"] == "lamb"
    again = load_config(PretrainConfig, tmp_path / "config.yaml")
    assert config_to_dict(again) == config_to_dict(cfg) == config_to_dict(config_from_dict(PretrainConfig, data))


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("15m") == 900 and parse_duration("1h30m") == 5400
    assert parse_duration("1.5h") == 5400 and parse_duration("2d") == 172800
    for bad in ("15", "m", "-1m", "1x", "0s"):
        with pytest.raises(UserError):
            parse_duration(bad)


def test_cross_checks():
    with pytest.raises(UserError, match="warmup must be a fraction of the run"):
        load_config(PretrainConfig, None, ["train.budget=1m", "train.max_steps=null", "schedule.warmup=100"])
    load_config(PretrainConfig, None, ["train.budget=1m", "schedule.warmup=100"])  # steps known: fine
    with pytest.raises(UserError, match="set one of train.max_steps"):
        load_config(PretrainConfig, None, ["train.max_steps=null"])


def test_malloc_tuning_on_glibc():
    import platform

    from berts.train.engine import tune_malloc

    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert tune_malloc() is expected


def test_malloc_tuning_keeps_freed_memory():
    """After tune_malloc, a freed 64 MiB block is reused without page faults. (Its trim threshold
    was once 1 << 40, which ctypes hands mallopt as the C int 0: glibc then trimmed the heap at
    every free, and each step faulted its buffers back in.)"""
    import ctypes
    import resource

    from berts.train.engine import KEEP_FREED, tune_malloc

    assert ctypes.c_int(KEEP_FREED).value == KEEP_FREED  # it survives the conversion to a C int
    if not tune_malloc():
        pytest.skip("not glibc")
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, (ctypes.c_size_t,), (ctypes.c_void_p,)
    size, faults = 64 << 20, []
    for _ in range(3):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        block = libc.malloc(size)
        ctypes.memset(block, 1, size)
        libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    assert faults[-1] < size // 4096 // 10, faults  # 16,384 pages would fault if the heap were trimmed


def test_run_plan_by_hand():
    """The plan's numbers: steps from epochs, warm-up in steps as a fraction, evaluation each
    epoch, progress by steps or clock (the further), and why a run stops."""
    from berts.train.plan import RunPlan

    cfg = load_config(FinetuneConfig, None, ["train.epochs=2.5", "schedule.warmup=10"])
    plan = RunPlan.from_config(cfg.train, cfg.schedule, steps_per_epoch=12.5)
    assert plan.max_steps == 32 and plan.warmup == 10 / 32 and plan.eval_every == 12 and plan.budget is None
    assert plan.evaluates_at(24) and not plan.evaluates_at(25)
    assert plan.progress(8, 1e9) == 0.25 and plan.stop_reason(31, 0.0) is None
    assert plan.stop_reason(32, 0.0) == "finished" and plan.stop_reason(5, 0.0, early_stop=True) == "stopped early"

    cfg = load_config(PretrainConfig, None, ["train.budget=1m", "train.max_steps=null"])
    plan = RunPlan.from_config(cfg.train, cfg.schedule, steps_per_epoch=100)
    assert plan.max_steps is None and plan.budget == 60 and plan.eval_every is None
    assert plan.progress(10**6, 15.0) == 0.25
    # stops when the next step (as long as the last) and the final checkpoint would not fit
    assert plan.stop_reason(7, 58.0, next_step_seconds=1.0, save_seconds=0.5) is None
    assert plan.stop_reason(7, 58.5, next_step_seconds=1.0, save_seconds=0.5) == "budget spent"
    with pytest.raises(UserError, match="not less than the 4 steps"):
        RunPlan.from_config(load_config(PretrainConfig, None, ["train.max_steps=4", "schedule.warmup=4"]).train,
                            load_config(PretrainConfig, None, ["schedule.warmup=4"]).schedule, steps_per_epoch=1)


def test_budget_plan_shares_what_is_left_after_the_fixed_steps():
    # the demo's budget (was demo.Clock, now berts.train.plan.BudgetPlan): 100 s, stages a and b
    # weighted 1:3, a fixed step x expected to take 20 s
    plan = BudgetPlan(100.0, {"a": 1.0, "b": 3.0}, {"x": 20.0})
    assert plan.left(10.0) == 70.0  # 10 s gone: 100 - 10 - 20 = 70 left to share
    assert plan.start("a", 10.0) == 70 * 0.25 and plan.deadlines["a"] == 10 + 17.5
    plan.done("x")  # the fixed step is over: b gets everything that is left
    assert plan.start("b", 30.0) == 70.0 and plan.deadlines["b"] == 100.0
    with pytest.raises(KeyError, match="a: not a budgeted stage, or started already"):
        plan.start("a", 40.0)
    late = BudgetPlan(100.0, {"c": 1.0}, {})
    assert late.start("c", 97.0) == 8.0  # never below the floor, even past the budget


def test_demo_budget_ends_on_time_when_the_estimates_hold():
    """The demo's shares and fixed-step estimates: if every stage takes its budget and every fixed
    step its estimate, the job ends exactly at its budget, and each stage gets its weight's share."""
    from berts.demo.run import FIXED, WEIGHTS

    total = 1200.0
    plan = BudgetPlan(total, WEIGHTS, FIXED, floor=0.0)
    fixed_total, elapsed, got = sum(FIXED.values()), 0.0, {}
    for stage in WEIGHTS:
        got[stage] = plan.start(stage, elapsed)
        elapsed += got[stage]
        assert plan.deadlines[stage] == pytest.approx(elapsed)
    for step in FIXED:
        plan.done(step)
    assert elapsed + fixed_total == pytest.approx(total)
    share = (total - fixed_total) / sum(WEIGHTS.values())
    assert got == pytest.approx({k: w * share for k, w in WEIGHTS.items()})
