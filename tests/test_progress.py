"""berts.util.progress: every long loop outside the trainer shows a bar on stderr when it is a
terminal (or with BERTS_PROGRESS=1), none otherwise or with --quiet."""
import sys
from pathlib import Path

import pytest

from berts.cli import main
from berts.util.progress import progress, progress_on

sys.path.insert(0, str(Path(__file__).parent))
from test_inference import make_classifier, sentences  # noqa: E402


def test_the_rule(monkeypatch):
    monkeypatch.delenv("BERTS_PROGRESS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress_on() and not progress_on(quiet=True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress_on() and not progress_on(quiet=True)
    monkeypatch.setenv("BERTS_PROGRESS", "0")
    assert not progress_on()
    monkeypatch.setenv("BERTS_PROGRESS", "1")
    assert progress_on() and not progress_on(quiet=True)
    silent = progress([1, 2, 3], enabled=False)
    assert list(silent) == [1, 2, 3] and silent.update(2) is None and silent.close() is None


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("progress")
    d = make_classifier(root / "c")
    table = root / "t.tsv"
    table.write_text("sentence\tlabel\n" + "".join(f"{t}\t{'pos' if i % 2 else 'neg'}\n"
                                                   for i, t in enumerate(sentences(20, seed=4))))
    return d, table


@pytest.mark.parametrize("command", ["predict", "evaluate", "compare"])
def test_forced_bar_on_stderr_and_quiet(files, tmp_path, capsys, monkeypatch, command):
    d, table = files
    args = {"predict": ["predict", str(d), str(table), "--out", str(tmp_path / "p.jsonl"), "--batch-size", "4"],
            "evaluate": ["evaluate", str(d), str(table), "--batch-size", "4"],
            "compare": ["compare", str(d), "--eval-file", str(table), "--repeats", "1", "--latency-examples", "2"]}[command]
    monkeypatch.setenv("BERTS_PROGRESS", "1")
    assert main(args) == 0
    err = capsys.readouterr().err
    bar = {"predict": "predict:   0%|          | 0/5 [", "evaluate": "predict:   0%|          | 0/5 [",
           "compare": "compare:   0%|          | 0/1 ["}[command]  # 20 rows in batches of 4; compare: one row
    assert bar in err, err
    if command == "predict":
        (tmp_path / "p.jsonl").unlink()
    assert main(args + ["--quiet"]) == 0
    assert "0%|" not in capsys.readouterr().err
    monkeypatch.delenv("BERTS_PROGRESS")  # not a terminal (pytest captures stderr): no bar
    if command == "predict":
        (tmp_path / "p.jsonl").unlink()
    assert main(args) == 0
    assert "0%|" not in capsys.readouterr().err


def test_embed_bar(tmp_path, capsys, monkeypatch):
    from test_embed_cli import TEXTS, make_model

    d = make_model(tmp_path / "m", st=True)
    f = tmp_path / "t.txt"
    f.write_text("\n".join(TEXTS) + "\n")
    monkeypatch.setenv("BERTS_PROGRESS", "1")
    assert main(["embed", str(d), str(f), "--out", str(tmp_path / "a.npy"), "--batch-size", "4"]) == 0
    assert "embedding:   0%|          | 0/2 [" in capsys.readouterr().err  # 8 texts, batches of 4
    assert main(["embed", str(d), str(f), "--out", str(tmp_path / "b.npy"), "--quiet"]) == 0
    assert "0%|" not in capsys.readouterr().err


def test_baseline_bar(files, capsys, monkeypatch):
    pytest.importorskip("sklearn")
    _, table = files
    monkeypatch.setenv("BERTS_PROGRESS", "1")
    assert main(["baseline", "--train", str(table), "--dev", str(table), "--C", "1,10",
                 "--text-column", "sentence", "--label-column", "label"]) == 0
    assert "baseline:   0%|          | 0/2 [" in capsys.readouterr().err  # one tick per C
