"""`salcodec train --config FILE`: the training loop that produced the shipped codec weights.

Resumable: the full state (weights, optimizers, step, random generators) is saved to
`<out_dir>/last.pt` every `checkpoint_every` steps and picked up on the next start.
`--init WEIGHTS` warm-starts from a weights-only file with fresh optimizers.
"""
from __future__ import annotations

import copy
import csv
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..errors import SalcodecError
from ..models.layers import load_state_resizing_buffers
from ..models.registry import build_model, export_weights
from .data import CropSampler, load_photo_folder, load_saliency_set
from .losses import rate_distortion_loss


def load_config(path: Path) -> dict:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SalcodecError(f"cannot read config {path}: {exc}") from None


def learning_rate(schedule: list[list[float]], step: int) -> float:
    """Piecewise-constant schedule: [[from_step, lr], ...]."""
    lr = schedule[0][1]
    for start, value in schedule:
        if step >= start:
            lr = value
    return lr


def build_sampler(cfg: dict, seed: int) -> CropSampler:
    data = cfg["data"]
    max_side = data.get("max_side", 1024)
    samples = []
    for folder in data.get("photos", []):
        samples += load_photo_folder(Path(folder), max_side)
    for folder in data.get("saliency_sets", []):
        samples += load_saliency_set(Path(folder), "train", Path(data["splits"]), max_side)
    return CropSampler(samples, cfg["train"]["crop"], seed, data.get("max_zoom", 1.6))


def train(config_path: Path, init: Path | None = None, max_steps: int | None = None) -> Path:
    cfg = load_config(config_path)
    tcfg, mcfg = cfg["train"], cfg["model"]
    out_dir = Path(cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg["seed"])

    hparams = {k: v for k, v in mcfg.items() if k != "family"}
    model = build_model(mcfg["family"], **hparams)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main_params, lr=learning_rate(tcfg["lr"], 0))
    aux_optimizer = torch.optim.Adam(aux_params, lr=tcfg.get("aux_lr", 1e-3))
    sampler = build_sampler(cfg, tcfg["seed"])

    step = 0
    last = out_dir / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        load_state_resizing_buffers(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        sampler.rng.bit_generator.state = state["sampler_rng"]
        torch.set_rng_state(state["torch_rng"])
        step = state["step"]
    elif init is not None:
        blob = torch.load(init, map_location="cpu", weights_only=True)
        load_state_resizing_buffers(model, {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()})

    def save() -> None:
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "aux_optimizer": aux_optimizer.state_dict(), "sampler_rng": sampler.rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "step": step, "config": cfg}, tmp)
        tmp.replace(last)

    log_path = out_dir / "log.csv"
    new_log = not log_path.exists()
    log_file = log_path.open("a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(["step", "wall_s", "lr", "loss", "bpp", "mse", "psnr", "aux"])

    total = tcfg["steps"] if max_steps is None else min(tcfg["steps"], step + max_steps)
    lam = (tcfg["lambda_min"], tcfg["lambda_max"])
    running: dict[str, float] = {}
    model.train()
    start = time.time()
    bar = tqdm(total=total, initial=step, desc=cfg.get("name", "train"), dynamic_ncols=True)
    try:
        while step < total:
            lr = learning_rate(tcfg["lr"], step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, _, q = sampler.batch(tcfg["batch"])
            q0 = torch.round(q.flatten(1).mean(1) * 255) / 255
            out = model(x, q, q0)
            terms = rate_distortion_loss(x, out.x_hat, out.y_likelihoods, out.z_likelihoods, q, *lam)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            torch.nn.utils.clip_grad_norm_(main_params, tcfg.get("clip", 1.0))
            optimizer.step()
            aux = model.aux_loss()
            aux_optimizer.zero_grad(set_to_none=True)
            aux.backward()
            aux_optimizer.step()
            step += 1
            bar.update(1)

            for key, value in terms.items():
                running[key] = running.get(key, 0.0) + value.item()
            running["aux"] = running.get("aux", 0.0) + aux.item()
            if step % tcfg.get("log_every", 50) == 0:
                n = tcfg.get("log_every", 50)
                avg = {k: v / n for k, v in running.items()}
                log.writerow([step, round(time.time() - start, 1), lr] + [round(avg[k], 5) for k in ("loss", "bpp", "mse", "psnr", "aux")])
                log_file.flush()
                bar.set_postfix(bpp=f"{avg['bpp']:.3f}", psnr=f"{avg['psnr']:.2f}", loss=f"{avg['loss']:.3f}")
                running = {}
            if step % tcfg.get("checkpoint_every", 500) == 0:
                save()
            if step % tcfg.get("snapshot_every", 5000) == 0:
                export_weights(copy.deepcopy(model).eval(), mcfg["family"], hparams,
                               out_dir / "snapshots" / f"step{step:07d}.pt", {"step": step})
    finally:
        save()
        log_file.close()
        bar.close()
    return last
