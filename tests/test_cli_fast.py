"""The command line answers --help and argument errors without torch (issue 25, point 8): the
parsers are argparse-level, the machinery is imported inside the function that runs a command, and
berts/__init__.py loads its public names on first use. Asserted on modules, not seconds."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "numpy", "transformers", "tokenizers", "matplotlib", "safetensors")

# run main(argv) in a fresh interpreter; print the heavy modules that ended up imported
PROG = """
import contextlib, io, sys
from berts.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        rc = main(sys.argv[1:])
    except SystemExit as exc:
        rc = exc.code
print(rc)
print(" ".join(sorted(m for m in %r if m in sys.modules)))
print(out.getvalue() + err.getvalue())
""" % (HEAVY,)


def run_cli(*argv):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-c", PROG, *argv], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    rc, heavy, text = done.stdout.split("\n", 2)
    return int(rc), heavy.split(), text


def test_build_parser_imports_no_heavy_module():
    env = dict(os.environ, PYTHONPATH=SRC)
    code = ("import sys, berts.cli; berts.cli.build_parser(); "
            "print(' '.join(m for m in %r if m in sys.modules))" % (HEAVY,))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


@pytest.mark.parametrize("argv, rc, says", [
    (["--help"], 0, "finetune"),
    (["finetune", "--help"], 0, "--lr"),
    (["predict", "--help"], 0, "--patience"),  # early exit's flags (compress/early_exit/flags.py)
    (["pretrain", "--nope"], 2, "unrecognized arguments: --nope"),
    (["predict", "m", "f", "--exit", "sideways"], 2, "invalid choice: 'sideways'"),
    (["evaluate"], 2, "the following arguments are required: MODEL_DIR, FILE"),
])
def test_help_and_argument_errors_do_not_import_torch(argv, rc, says):
    code, heavy, text = run_cli(*argv)
    assert (code, heavy) == (rc, [])
    assert says in text


def test_every_command_help_is_torch_free():
    from berts.cli import COMMANDS

    for name in COMMANDS:
        code, heavy, text = run_cli(name, "--help")
        assert (name, code, heavy) == (name, 0, [])
        assert f"usage: berts {name}" in text


def test_python_dash_m_berts_help():
    env = dict(os.environ, PYTHONPATH=SRC)
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "berts", "--help"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0
    assert "usage: berts" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "berts.cli" in imported
    assert not imported & set(HEAVY)


def test_public_names_still_import():
    env = dict(os.environ, PYTHONPATH=SRC)
    code = ("import berts; from berts import BertConfig, BertForMaskedLM, ElectraForMaskedLM, load, Classifier; "
            "assert all(hasattr(berts, n) for n in berts.__all__); assert callable(berts.hf.read_config); "
            "assert not hasattr(berts, 'no_such_name'); "
            "from berts.hf import ARCHITECTURES; print(sorted(set(ARCHITECTURES) & {'ElectraForPreTraining', "
            "'BertForSequenceClassificationWithExits'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['BertForSequenceClassificationWithExits', 'ElectraForPreTraining']"
