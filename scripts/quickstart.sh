#!/usr/bin/env bash
# Install, then compress and decompress the example image with the shipped default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
.venv/bin/salcodec compress examples/kodim23.png -o out/kodim23.sgc --quality 50 --force
.venv/bin/salcodec decompress out/kodim23.sgc -o out/kodim23.sgc.png --reference examples/kodim23.png --force
