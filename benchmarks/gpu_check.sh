#!/usr/bin/env bash
# The one prepared GPU check (issue 19): PPO and QuantilePPO, device="cuda" beside device="cpu", batched env
# at 64 and 1,024 accounts. Run from the repository root on a machine with a CUDA build of torch and the
# package installed (pip install -e . ); it takes a few minutes. Paste the table into benchmarks/results/gpu.md.
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device visible to torch')"
python -c "import sb3_trading" 2>/dev/null || pip install -q --no-deps -e .
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python benchmarks/gpu_check.py "$@"
