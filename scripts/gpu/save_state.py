"""Save a training run's weights, fp16, where a GPU machine's output comes back from.

    python scripts/gpu/save_state.py CONFIG OUT_DIR

Reads `<out_dir of CONFIG>/last.pt` and writes `OUT_DIR/<name>-state.pt` and the run's log.csv.
fp16 parameters (as shipped) keep the file under the 16 MiB a file may bring back; the coder
tables are built afterwards by scripts/export_weights.py, which reads this file.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import torch
import yaml

from salcodec.models.layers import load_state_resizing_buffers
from salcodec.models.registry import build_model, half_parameters


def main() -> None:
    config, out = Path(sys.argv[1]), Path(sys.argv[2])
    cfg = yaml.safe_load(config.read_text())
    run = Path(cfg["out_dir"])
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    model = build_model(cfg["model"]["family"], **{k: v for k, v in cfg["model"].items() if k != "family"})
    load_state_resizing_buffers(model, state["model"])
    torch.save({"model": half_parameters(model), "step": state["step"], "config": cfg}, out / f"{cfg['name']}-state.pt")
    shutil.copy(run / "log.csv", out / "log.csv")
    print(f"saved {cfg['name']} at step {state['step']} to {out}")


if __name__ == "__main__":
    main()
