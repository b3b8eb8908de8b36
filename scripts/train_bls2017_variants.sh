#!/usr/bin/env bash
# The #5 ladder at one budget: the shared warm start, then every bls2017 variant fine-tuned from it
# at four λ (configs/bls2017/*.yaml). Resumable: stop it any time, run it again to go on.
set -euo pipefail
cd "$(dirname "$0")/.."
SALCODEC=".venv/bin/salcodec --threads ${THREADS:-2}"
$SALCODEC train --config configs/bls2017/warm-start.yaml
for variant in bls2017 bls2017-salweight-floor bls2017-salweight-norm bls2017-salenc bls2017-dilated \
               bls2017-msssim bls2017-ssim-l1; do
    $SALCODEC train --config "configs/bls2017/$variant.yaml"
done
