#!/usr/bin/env bash
# GPU check: device tests and the training benchmark on a CUDA machine, mml vs a hand-written loop.
# Expects wheels of the pure-Python deps the GPU image lacks (cattrs, returns) in .whl/ (see
# benchmarks/RESULTS.md for how they were fetched) and writes results under $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/mml-gpu}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, mml; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'mml', mml.__version__)"
} 2>&1 | tee "$OUT/gpu_env.txt"
timeout 240 python3 -m pytest -q -p no:cacheprovider --no-header -o addopts="" -W ignore::DeprecationWarning \
  tests/training tests/backends/test_torch.py -k "cuda or device" 2>&1 | tail -15 | tee "$OUT/gpu_tests.txt"
python3 benchmarks/bench_training.py --device cuda --batch 256 32 --repeats 3 2>&1 | tee "$OUT/gpu_training.txt"
python3 benchmarks/bench_training.py --device cuda --batch 256 --repeats 1 --n 1000000 2>&1 | tee -a "$OUT/gpu_training.txt"
