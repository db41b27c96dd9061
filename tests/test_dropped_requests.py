"""Issue 30, class 4: a request a command cannot honour is refused in one line, not accepted and
ignored (early exit on regression, seq2seq's pair column, int8 on a GPU, export's --max-length)."""
from __future__ import annotations

import pytest

from berts.cli import main
from berts.config.loader import load_config
from berts.config.schema import FinetuneConfig
from berts.config.validate import check_run
from berts.errors import UserError


def test_finetune_requests_that_would_be_ignored(tmp_path):
    (tmp_path / "m").mkdir()
    base = [f"model.init_from={tmp_path / 'm'}", "data.train=t.tsv"]
    for sets, says in ((["train.early_exit=true", "data.task=regression"], "--early-exit is for classification"),
                       (["data.task=seq2seq", "data.pair_column=b"], "--pair-column b: --task seq2seq reads")):
        with pytest.raises(UserError, match=says):
            check_run(load_config(FinetuneConfig, None, [*base, *sets]))


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_int8_on_a_gpu_is_refused(tmp_path, capsys, command):
    (tmp_path / "t.tsv").write_text("text\tlabel\na\tx\n")
    assert main([command, str(tmp_path), str(tmp_path / "t.tsv"), "--int8", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--int8 runs on the CPU" in err


def test_export_max_length_zero_is_refused_and_a_positive_one_is_passed_on(capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["export", "m", "--onnx", "o.onnx", "--max-length", "0"])
    assert "--max_seq_length: an integer >= 1 expected" in capsys.readouterr().err
    import inspect

    from berts.serve.export import export_onnx

    assert "max_length" in inspect.signature(export_onnx).parameters
