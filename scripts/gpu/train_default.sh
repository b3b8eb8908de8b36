#!/usr/bin/env bash
# Runs on a lent GPU machine (its own python3 with PyTorch; no network): trains the config
# warm-started from WEIGHTS, then writes the fp16 weights and the log to $OUT.
# Back here: python scripts/export_weights.py OUT/<name>-state.pt src/salcodec/models/weights/<name>.pt
# (builds the entropy-coder tables, which need CompressAI's compiled extension).
#   usage: bash scripts/gpu/train_default.sh [CONFIG] [WEIGHTS] [HARD_LIMIT_S]
set -uo pipefail
config=${1:-configs/default-v4.yaml}
weights=${2:-src/salcodec/models/weights/default-v4.pt}
hard_limit=${3:-560}
out=${OUT:-runs/gpu-out}
mkdir -p "$out"
export PYTHONPATH=$PWD/src:$PWD/.devdata/site PYTHONUNBUFFERED=1 TQDM_MININTERVAL=20
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, numpy; print('torch', torch.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"
start=$(date +%s)
timeout -s TERM "$hard_limit" python3 -m salcodec --threads 4 train --config "$config" --init "$weights" 2>&1 \
  | tr '\r' '\n' | tee "$out/train_stdout.log" | grep -v "^ *$" | awk 'NR % 20 == 1 || /steps\/s|error|Error|warning/'
echo "training wall time: $(( $(date +%s) - start )) s"
python3 scripts/gpu/save_state.py "$config" "$out"
tail -3 "$out/log.csv"
