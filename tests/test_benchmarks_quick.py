"""Every script under benchmarks/ runs its --quick mode (toy sizes, tiny made-up data, no download)
to the end: a benchmark that no longer runs against the current code is found here, not by the
next person who needs its numbers. The numbers themselves mean nothing at this size."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCH.glob("*.py") if p.name != "quick.py")
# what each prints at the end when it ran through (its table or JSON), beyond the exit status
LAST_WORDS = {  # one line each, so that new benchmarks merge cleanly
    'batch1.py': '| berts onnx engine |',
    'bench.py': 'tokens/s',
    'compare.py': 'compare.md',
    'cpu_bf16.py': 'bf16 speed-up',
    'distill.py': '| tinybert4 |',
    'embed.py': 'max abs diff',
    'fastbert.py': 'chosen on dev',
    'generate.py': 'same ids',
    'gpu.py': '| electra |',
    'inference.py': 'int8 accuracy',
    'long_context.py': '"benchmark": "long_context"',
    'ner_predict.py': 'speed-up vs pipeline',
    'prepare_throughput.py': '"benchmark": "prepare_throughput"',
    'qa_predict.py': 'same answers',
    'search.py': '| hnsw |',
}


def test_every_script_is_covered():
    assert set(LAST_WORDS) == set(SCRIPTS), "a benchmark without a --quick check: add it to LAST_WORDS"


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_quick_mode_runs(script, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
               BERTS_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert LAST_WORDS[script] in proc.stdout, proc.stdout[-2000:]


def test_gpu_largest_batch_search():
    """benchmarks/gpu.py's search for the largest batch that fits (doubling, then bisection to a
    multiple of 8): the OOM side of it, which a CPU dry run never reaches."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_bench", BENCH / "gpu.py")
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    for largest in (8, 9, 100, 1500, 1504, 8191):
        tried = []
        fits = lambda b: tried.append(b) or b <= largest  # noqa: E731
        assert gpu.search(fits, 8192, 8) == (largest // 8 * 8, largest // 8 * 8 + 8)
        assert len(tried) <= 2 * 11
    assert gpu.search(lambda b: True, 8192, 8) == (8192, None)
    assert gpu.search(lambda b: False, 8192, 8) == (0, 8)
