#!/usr/bin/env bash
# The key experiment's second half (issue #5): every bls2017 variant trained by
# scripts/train_bls2017_variants.sh, at equal real bpp, on the OSIE validation images with human
# maps as the reference; the default model with and without saliency for scale. Results go to
# ${OUT_DIR:-out/bls2017-variants} (summary.json, per_image.csv, plots, report.html).
set -euo pipefail
cd "$(dirname "$0")/.."
variants="bls2017 bls2017-salweight-floor bls2017-salweight-norm bls2017-salenc bls2017-dilated ${EXTRA_VARIANTS:-}"
path="" models=""
for v in $variants; do
    path="$path${path:+:}runs/$v/models"
    ladder="$v=$v-l0+$v-l1+$v-l2+$v-l3"
    if [ "$v" = bls2017-salenc ]; then  # its encoder takes the map: human, then predicted
        models="$models,$ladder:human,$v=$v-l0+$v-l1+$v-l2+$v-l3:auto"
    else
        models="$models,$ladder:none"
    fi
done
SALCODEC_MODEL_PATH=$path .venv/bin/salcodec --threads "${THREADS:-2}" eval \
    --models "${models#,},default-v4:none,default-v4:human:0.35" \
    --data ../shared/data/saliency/osie --split val --images "${IMAGES:-20}" --reference human \
    --anchor bls2017:none --qualities 0 33 66 100 --crops 2 --out-dir "${OUT_DIR:-out/bls2017-variants}"
