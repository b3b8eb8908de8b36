"""`salcodec train-saliency --config FILE`: train the learned saliency model from scratch.

Data: the `train` ids of each fixation set in splits.json (images, density maps, fixation
points), resized once to the network's 240×320 input and held in memory. Loss (SAM):
10·KL(density ‖ prediction) − 2·CC − NSS. Every `val_every` steps the CC and NSS on the `val`
ids are logged (never trained on). Resumable from `<out_dir>/last.pt`.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..train.loop import load_config
from .learned import INPUT_SIZE, SaliencyNet

EPS = 1e-7


def load_split(root: Path, split: str, splits_file: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (uint8), density maps and fixation points of one split, all at the input size."""
    ids = json.loads(splits_file.read_text())[root.name][split]
    h, w = INPUT_SIZE
    images, dens, fixes = [], [], []
    for image_id in ids:
        path = next((p for p in (root / "images").glob(f"{image_id}.*")), None)
        if path is None:
            continue
        images.append(np.asarray(Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)))
        dens.append(np.asarray(Image.open(root / "maps" / f"{image_id}.png").convert("L").resize((w, h), Image.BILINEAR),
                               dtype=np.float32))
        points = np.asarray(Image.open(root / "fixations" / f"{image_id}.png").convert("L")) > 127
        ys, xs = np.nonzero(points)
        grid = np.zeros((h, w), np.float32)
        grid[ys * h // points.shape[0], xs * w // points.shape[1]] = 1
        fixes.append(grid)
    return (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(np.stack(dens))[:, None], torch.from_numpy(np.stack(fixes))[:, None])


def _standardise(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(1)
    return ((flat - flat.mean(1, keepdim=True)) / (flat.std(1, keepdim=True) + EPS)).view_as(x)


def sam_terms(pred: torch.Tensor, density: torch.Tensor, fixations: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-batch KL, CC and NSS of predicted densities (each B×1×H×W summing to 1)."""
    gt = density.flatten(1)
    gt = gt / (gt.sum(1, keepdim=True) + EPS)
    p = pred.flatten(1)
    kl = (gt * torch.log(EPS + gt / (p + EPS))).sum(1).mean()
    cc = (_standardise(pred) * _standardise(density)).flatten(1).mean(1).mean()
    fix = fixations.flatten(1)
    nss = ((_standardise(pred).flatten(1) * fix).sum(1) / fix.sum(1).clamp_min(1)).mean()
    return {"kl": kl, "cc": cc, "nss": nss}


def sam_loss(terms: dict[str, torch.Tensor], weights: dict[str, float]) -> torch.Tensor:
    return weights["kl"] * terms["kl"] - weights["cc"] * terms["cc"] - weights["nss"] * terms["nss"]


@torch.no_grad()
def validate(net: SaliencyNet, data: tuple[torch.Tensor, ...], batch: int = 16) -> dict[str, float]:
    net.eval()
    images, dens, fixes = data
    sums = {"kl": 0.0, "cc": 0.0, "nss": 0.0}
    for i in range(0, len(images), batch):
        pred = net(images[i:i + batch].float() / 255)
        terms = sam_terms(pred, dens[i:i + batch], fixes[i:i + batch])
        for k in sums:
            sums[k] += float(terms[k]) * len(pred)
    net.train()
    return {k: v / len(images) for k, v in sums.items()}


def train_saliency(config_path: Path, max_steps: int | None = None) -> Path:
    cfg = load_config(config_path)
    tcfg = cfg["train"]
    out_dir = Path(cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg["seed"])
    splits = Path(cfg["data"]["splits"])
    parts = [load_split(Path(root), "train", splits) for root in cfg["data"]["sets"]]
    train_data = tuple(torch.cat(t) for t in zip(*parts))
    val_sets = {Path(root).name: load_split(Path(root), "val", splits) for root in cfg["data"]["sets"]}

    net = SaliencyNet(**cfg["model"])
    optimizer = torch.optim.Adam(net.parameters(), lr=tcfg["lr"])
    rng = np.random.default_rng(tcfg["seed"])
    step = 0
    last = out_dir / "last.pt"
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        rng.bit_generator.state = state["rng"]
        step = state["step"]

    def save() -> None:
        tmp = last.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "rng": rng.bit_generator.state,
                    "step": step, "config": cfg}, tmp)
        tmp.replace(last)

    log_path = out_dir / "log.csv"
    new_log = not log_path.exists()
    with log_path.open("a", newline="") as fh:
        log = csv.writer(fh)
        if new_log:
            log.writerow(["step", "wall_s", "loss", "kl", "cc", "nss"] + [f"{n}_val_{m}" for n in val_sets for m in ("cc", "nss")])
        total = tcfg["steps"] if max_steps is None else min(tcfg["steps"], step + max_steps)
        weights = tcfg.get("loss_weights", {"kl": 10.0, "cc": 2.0, "nss": 1.0})
        start, running = time.time(), {}
        bar = tqdm(total=total, initial=step, desc="train-saliency", dynamic_ncols=True)
        net.train()
        try:
            while step < total:
                idx = rng.integers(0, len(train_data[0]), tcfg["batch"])
                images, dens, fixes = (t[idx] for t in train_data)
                images = images.float() / 255
                if rng.uniform() < 0.5:
                    images, dens, fixes = images.flip(-1), dens.flip(-1), fixes.flip(-1)
                terms = sam_terms(net(images), dens, fixes)
                loss = sam_loss(terms, weights)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                bar.update(1)
                for k, v in {"loss": loss, **terms}.items():
                    running[k] = running.get(k, 0.0) + v.item()
                if step % tcfg.get("val_every", 500) == 0 or step == total:
                    n = max(1, step % tcfg.get("val_every", 500) or tcfg.get("val_every", 500))
                    val = {name: validate(net, data) for name, data in val_sets.items()}
                    log.writerow([step, round(time.time() - start, 1)] + [round(running[k] / n, 4) for k in ("loss", "kl", "cc", "nss")]
                                 + [round(val[name][m], 4) for name in val_sets for m in ("cc", "nss")])
                    fh.flush()
                    bar.set_postfix({f"{name}_cc": f"{v['cc']:.3f}" for name, v in val.items()})
                    running = {}
                    save()
        finally:
            save()
            bar.close()
    return last


def export_saliency_weights(checkpoint: Path, path: Path) -> None:
    """Weights-only fp16 file for the package (what LearnedPredictor loads)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"hparams": state["config"]["model"], "step": state["step"],
                "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}}, path)
