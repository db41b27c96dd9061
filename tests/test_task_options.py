"""A task's own switches (TaskSpec.options): typed keys of the finetune config's task: section and
berts finetune flags, checked to belong to the chosen task (berts.tasks.registry)."""
from typing import Literal

import pytest

from berts.cli import build_parser
from berts.commands.finetune import _overrides
from berts.config.loader import load_config, show_config
from berts.config.schema import FinetuneConfig
from berts.errors import UserError
from berts.tasks import registry
from berts.tasks.registry import Option, TaskSpec


@pytest.fixture
def toy_tasks(monkeypatch):
    """Two tasks with options (one shared), registered for the test only."""
    a = TaskSpec("toy-a", "x:Y", ("loss",), "toy a", options=(
        Option("crf", bool, False, "a CRF on top"),
        Option("window", int, 64, "window length"),
        Option("scheme", Literal["auto", "bio", "bioes"], "auto", "tag scheme")))
    b = TaskSpec("toy-b", "x:Y", ("loss",), "toy b", options=(Option("window", int, 64, "window length"),))
    for spec in (a, b):
        monkeypatch.setitem(registry.TASKS, spec.name, spec)
    return a, b


def test_yaml_values_are_typed_and_defaults_filled(toy_tasks, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: toy-a\ntask:\n  crf: true\n  window: '128'\n")
    cfg = load_config(FinetuneConfig, [path])
    assert cfg.task.overrides == {"crf": True, "window": 128}  # '128' coerced to the option's int
    assert registry.options_of("toy-a", cfg.task.overrides) == {"crf": True, "window": 128, "scheme": "auto"}
    assert "task.scheme" in show_config(cfg)


def test_errors_name_the_file_line_and_the_owner(toy_tasks, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  task: toy-a\ntask:\n  window: many\n")
    with pytest.raises(UserError, match=r"run\.yaml:4: task\.window must be"):
        load_config(FinetuneConfig, [path])
    path.write_text("data:\n  task: toy-a\ntask:\n  crff: true\n")
    with pytest.raises(UserError, match=r"run\.yaml:4: .*task\.crff.*task\.crf"):
        load_config(FinetuneConfig, [path])
    path.write_text("data:\n  task: toy-b\ntask:\n  crf: true\n")  # toy-a's option, not toy-b's
    with pytest.raises(UserError, match=r"task\.crf is an option of (token-classification, )?toy-a, not of toy-b \(its options: window\)"):
        load_config(FinetuneConfig, [path])


def test_flags_come_from_the_options(toy_tasks):
    args = build_parser().parse_args(["finetune", "--task", "toy-a", "--crf", "--window", "32", "--scheme", "bio"])
    o = _overrides(args)
    assert o["task"] == {"crf": True, "window": "32", "scheme": "bio"}
    cfg = load_config(FinetuneConfig, None, overrides=o)
    assert cfg.task.overrides == {"crf": True, "window": 32, "scheme": "bio"}
    args = build_parser().parse_args(["finetune", "--task", "toy-b"])
    assert "task" not in _overrides(args)  # flags not given set nothing


def test_one_option_name_one_type(toy_tasks):
    with pytest.raises(ValueError, match="window"):
        registry.register(TaskSpec("toy-c", "x:Y", ("loss",), "toy c", options=(Option("window", str, "", "w"),)))
