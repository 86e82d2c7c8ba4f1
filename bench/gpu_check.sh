#!/usr/bin/env bash
# The GPU checks of issue 8 in one run that fits one 10-minute call of a lent GPU:
#   bash bench/gpu_check.sh [PEER_CHECKOUT]        # reports in $OUT (the device tool's folder) or ./gpu-check
# 1. the CUDA kernels of bias_act/upfirdn2d against the reference path and the GPU precisions against the CPU's
#    float32 (the tests that skip without CUDA);
# 2. generation at 1024x1024 config-f, batch 8 and 32: ours (float32, TF32 off), our reference path, the peer,
#    and ours in tf32, fp16 and bf16, with achieved TFLOP/s against each precision's matrix-product peak;
# 3. training steps of config-f at 1024x1024 (batch 32 in rounds of 4): ours vs. the reference path vs. the peer.
# Each part has its own time limit, so that a slow one cannot take the others' time.
set -uo pipefail
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
peer=()
if [ $# -ge 1 ]; then peer=(--peer "$1"); fi

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"; } 2>&1 | tee "$out/gpu.txt"
timeout 200 python3 -m pytest -q -rs tests/test_ops.py tests/test_mixed_precision.py 2>&1 | tee "$out/tests.txt"
timeout 220 python3 bench/generate.py --device cuda --resolutions 1024 --batch-sizes 8,32 --min-time 4 \
    --precision tf32,fp16,bf16 "${peer[@]}" 2>&1 | tee "$out/generate.txt"
timeout 150 python3 bench/train.py --device cuda --setups configf --resolution 1024 --steps 4 --repeats 3 \
    "${peer[@]}" 2>&1 | tee "$out/train.txt"
