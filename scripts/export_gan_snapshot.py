"""Export the GAN decoder of one checkpoint of a `gan-decoder` run (not only its last step).

    python scripts/export_gan_snapshot.py CONFIG CHECKPOINT OUT_DIR

CHECKPOINT is a copy of the run's `last.pt` taken at some step. The decoder is written to
OUT_DIR/gan/<base>.pt, usable with SALCODEC_MODEL_PATH=OUT_DIR (e.g. by benchmarks/generative.py).
It reuses the trainer: a run folder whose checkpoint has reached the configured step count
only exports (the run's latent cache is linked, not rebuilt).
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

from salcodec.train.gan import train_gan_decoder
from salcodec.train.loop import load_config


def main() -> None:
    config, checkpoint, out_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    cfg = load_config(config)
    step = torch.load(checkpoint, map_location="cpu", weights_only=False)["step"]
    run_dir = Path(cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = out_dir / "latent_cache.pt"
    if not cache.exists():
        os.link(run_dir / "latent_cache.pt", cache)
    shutil.copyfile(checkpoint, out_dir / "last.pt")
    cfg["out_dir"], cfg["train"]["steps"] = str(out_dir), step
    train_gan_decoder(cfg)
    print(f"step {step}: {out_dir / 'gan' / (cfg['model']['base'] + '.pt')}")


if __name__ == "__main__":
    main()
