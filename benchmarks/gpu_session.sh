#!/usr/bin/env bash
# On a GPU machine with no network or package registry (PyTorch, transformers, accelerate already there), with
# .gpu/ carried beside the code (python -m benchmarks.gpu_carry --data-dir ../shared/superglue):
#   bash benchmarks/gpu_session.sh check                  # tests/test_cuda.py, then dp_speed on CUDA
#   bash benchmarks/gpu_session.sh results FILE ARGS...   # benchmarks.dp_results ARGS on the GPU, resumable: FILE
#                                                         # (JSON lines) is copied to $OUT and grown there
# Logs and results go to $OUT (the device tool brings that folder back; elsewhere it defaults to runs/gpu). A run
# cut off by the call's limit is lost and redone next time; the finished ones are in $OUT/FILE's copy.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HOME=$PWD/.gpu/hf HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-runs/gpu}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT" /tmp/dp_data
tar xJf .gpu/superglue.tar.xz -C /tmp/dp_data
DATA=/tmp/dp_data/superglue
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PYTHON" -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/gpu.txt"

stage=${1:?check or results}
shift
case $stage in
  check)
    "$PYTHON" -m pytest tests/test_cuda.py -v -p no:cacheprovider --superglue-dir "$DATA" 2>&1 | tee "$OUT/test_cuda.log"
    "$PYTHON" -m benchmarks.dp_speed --device cuda --data-dir "$DATA" 2>&1 | tee "$OUT/dp_speed_cuda.log"
    ;;
  results)
    file=${1:?results FILE ARGS...}
    shift
    [ -f "$file" ] && cp "$file" "$OUT/$(basename "$file")"
    timeout "${GRID_S:-540}" "$PYTHON" -m benchmarks.dp_results --data-dir "$DATA" --results "$OUT/$(basename "$file")" \
      --output "$OUT/results.md" "$@" 2>&1 | grep -v "Loading weights" | tee "$OUT/results.log"
    ;;
  *) echo "unknown stage $stage: check or results" >&2; exit 2 ;;
esac
