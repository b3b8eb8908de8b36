"""Export a training checkpoint as a shipped, weights-only model file.

    python scripts/export_weights.py runs/default/last.pt src/salcodec/models/weights/default-v1.pt

fp16 weights plus the integer entropy-coder tables built from them; the step and the config go
into the file's metadata.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from salcodec.models.layers import load_state_resizing_buffers
from salcodec.models.registry import build_model, export_weights


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("output")
    args = ap.parse_args()
    state = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    mcfg = state["config"]["model"]
    hparams = {k: v for k, v in mcfg.items() if k != "family"}
    model = build_model(mcfg["family"], **hparams)
    load_state_resizing_buffers(model, state["model"])
    export_weights(model.eval(), mcfg["family"], hparams, Path(args.output),
                   {"step": state["step"], "config": state["config"]["name"]})
    print(f"{args.output}: step {state['step']}, {sum(p.numel() for p in model.parameters())} parameters")


if __name__ == "__main__":
    main()
