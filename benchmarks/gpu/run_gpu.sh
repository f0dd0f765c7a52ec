#!/usr/bin/env bash
# One command for one device call: GPU tests + GPU benchmark, everything under $OUT.
#
#   bash benchmarks/gpu/run_gpu.sh            # from the repository root
#
# Wheels carried in .whl/ (arbf's runtime and test dependencies that the device image
# lacks, e.g. array-api-compat, hypothesis, array-api-strict) are installed offline into
# /tmp/site; the repository itself is put on PYTHONPATH, so arbf is the working tree.
# Time budget: tests <= 240 s, benchmark <= 300 s (fits one 10-minute call).
set -u
OUT="${OUT:-$PWD/gpu_out}"
mkdir -p "$OUT"
cd "$(dirname "$0")/../.."

if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
    > "$OUT/pip.txt" 2>&1 || echo "pip install failed (see pip.txt)" >> "$OUT/summary.txt"
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"

{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 - <<'PY'
import importlib
for m in ("numpy", "array_api_compat", "cupy", "torch", "arbf", "pytest", "hypothesis"):
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"))
    except Exception as exc:
        print(m, "UNAVAILABLE", repr(exc))
try:
    import torch
    print("torch.cuda.is_available", torch.cuda.is_available())
except Exception:
    pass
PY
} > "$OUT/env.txt" 2>&1

# GPU tests: only the cupy / torch_cuda cases of the backend matrix
ARBF_BACKENDS=cupy,torch_cuda timeout 240 python3 -m pytest -q -p no:cacheprovider \
  -k "cupy or torch_cuda" --junitxml="$OUT/gpu_tests.xml" tests \
  > "$OUT/gpu_tests.txt" 2>&1
echo "pytest exit: $?" >> "$OUT/summary.txt"
tail -n 3 "$OUT/gpu_tests.txt" >> "$OUT/summary.txt"

# GPU benchmark (n = 1M .. 8M, d = 128, k = 1024, float32)
timeout 300 python3 benchmarks/gpu/bench_gpu.py --out "$OUT/gpu_bench" \
  > "$OUT/gpu_bench.log" 2>&1
echo "bench exit: $?" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
cat "$OUT/gpu_bench.md" 2>/dev/null
