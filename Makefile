# Two entry points: `make demo` (install + the main job) and `make test` (install + the test suite).
# `make test-fast` runs the suite without the slow, multi-process (ddp) and onnxruntime tests: about a minute.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check

.PHONY: demo test test-fast install bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[test,demo]'
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 tests

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -n 2 -m "not slow and not ddp and not onnx" tests

demo: $(VENV)/.installed
	$(PY) -m berts demo --out demo_out

bench: $(VENV)/.installed
	$(PY) -m berts bench

clean:
	rm -rf $(VENV) demo_out runs .pytest_cache
