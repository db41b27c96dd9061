#!/usr/bin/env bash
# Everything issue 29 asks of a GPU, in one call (about 9-10 minutes on one H100):
#   1. the CUDA test subset (pytest -m cuda), its report in $OUT/cuda-tests.txt;
#   2. benchmarks/gpu.py: gpu.json and gpu.md into benchmarks/ (or $OUT when set).
# Run from the repository root: `bash benchmarks/gpu.sh`. PYTHON picks the interpreter.
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
DEST=${OUT:-benchmarks}
mkdir -p "$DEST"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$DEST/gpu-device.txt"
timeout 240 "$PY" -m pytest -m cuda -q -s -p no:cacheprovider -rs tests/test_cuda.py 2>&1 | tee "$DEST/cuda-tests.txt"
tests=${PIPESTATUS[0]}
timeout 480 "$PY" benchmarks/gpu.py --out "$DEST" "$@"
bench=$?
echo "cuda tests rc $tests, gpu.py rc $bench"
exit $(( tests || bench ))
