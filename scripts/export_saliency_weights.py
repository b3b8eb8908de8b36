"""Export a saliency training checkpoint as the shipped, weights-only predictor file.

    python scripts/export_saliency_weights.py runs/saliency/last.pt src/salcodec/saliency/weights/sam-lite-v1.pt

fp16 weights, the model's hyper-parameters and the training step; `--saliency auto` uses the
learned predictor whenever this file is in the package.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from salcodec.saliency.train import export_saliency_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("output", type=Path)
    args = ap.parse_args()
    export_saliency_weights(args.checkpoint, args.output)


if __name__ == "__main__":
    main()
