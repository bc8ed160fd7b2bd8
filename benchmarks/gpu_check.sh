#!/usr/bin/env bash
# Every GPU check in one script, for a machine with CUDA (e.g. the `device` tool's H200):
#   1. pytest -m gpu: every registered model and the training loop on CUDA with AMP and
#      channels_last;
#   2. ResNet-50 training throughput on synthetic 224x224 data, ours vs torchvision
#      (bf16 autocast, channels_last, batch 64), and the forward/forward+backward table;
#   3. the training loop's overhead against a bare loop on the GPU.
# Output goes to $OUT (or ./gpu-check-out) as text files; copy the figures, with the GPU's name
# printed at the top of each, into benchmarks/RESULTS.md.
#
#   bash benchmarks/gpu_check.sh            # about 5 minutes on an H200 once torch is installed
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
PY=python
[ -x .venv/bin/python ] && PY=.venv/bin/python
if ! $PY -c "import convnets" 2>/dev/null; then
  $PY -m pip install -q -e . >"$OUT/pip.txt" 2>&1 || { echo "gpu_check: could not install the package (see $OUT/pip.txt)"; exit 1; }
fi
$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'gpu_check: no CUDA device here')" || exit 1
$PY -c "import torch; print(torch.cuda.get_device_name(), 'torch', torch.__version__)" | tee "$OUT/device.txt"
status=0
timeout 300 $PY -m pytest -q -m gpu tests/test_gpu.py 2>&1 | tail -25 | tee "$OUT/pytest-gpu.txt" || status=1
timeout 200 $PY benchmarks/bench_models.py --device cuda --models resnet50 --batches 64 --amp bf16 --channels-last \
  --repeats 10 2>&1 | tee "$OUT/resnet50-train-bf16-cl.txt" || status=1
timeout 200 $PY benchmarks/bench_models.py --device cuda --batches 1 32 2>&1 | tee "$OUT/models-fp32.txt" || status=1
timeout 120 $PY benchmarks/bench_train_loop.py --device cuda 2>&1 | tee "$OUT/train-loop.txt" || status=1
exit $status
