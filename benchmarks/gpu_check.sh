#!/usr/bin/env bash
# One command for a GPU (about 8 minutes on one H100 or H200): the paper recipe's steps at full size run
# for real, each one's measured peak memory (torch.cuda.max_memory_allocated) printed beside the estimate
# benchmarks/paper_memory.py made on a CPU with fake tensors (benchmarks/paper_memory_estimates.json), then
# benchmarks/paper_scale.py's step times, throughput and MFU. Figures land in data/08_reporting/gpu_check/.
#
#   bash benchmarks/gpu_check.sh            # from the project root, after `make setup`
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=data/08_reporting/gpu_check
mkdir -p "$out"
"$python" -c "import torch; assert torch.cuda.is_available(), 'gpu_check.sh needs a CUDA GPU'; print(torch.cuda.get_device_name())"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.csv"
"$python" -m benchmarks.paper_memory --estimates benchmarks/paper_memory_estimates.json --measure-device cuda \
  --json "$out/paper_memory.json" | tee "$out/paper_memory.txt"
"$python" -m benchmarks.paper_scale --repeats 1 --json "$out/paper_scale.json" | tee "$out/paper_scale.txt"
