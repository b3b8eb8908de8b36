"""`salcodec saliency-eval`: score predictors against human fixations on a folder laid out like OSIE.

    DIR/images/<id>.jpg   DIR/maps/<id>.png (density)   DIR/fixations/<id>.png (points, 0/255)

Maps are scored at most `max_side` pixels on the long side (the resolution the README's
targets use); fixation points are carried over by max-pooling so none is lost.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec.image_io import IMAGE_SUFFIXES
from ..errors import SalcodecError
from . import metrics as M


def list_ids(data: Path, split: str, splits_file: Path | None) -> list[str]:
    """Ids in DIR/images, restricted to a split of splits.json when one is asked for."""
    if not (data / "images").is_dir():
        raise SalcodecError(f"{data} has no images/ folder")
    ids = sorted(p.stem for p in (data / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if split == "all":
        return ids
    splits_file = splits_file or data.parent / "splits.json"
    try:
        chosen = set(json.loads(splits_file.read_text())[data.name][split])
    except (OSError, KeyError, ValueError):
        raise SalcodecError(f"no '{split}' split for {data.name} in {splits_file} (use --split all)") from None
    return [i for i in ids if i in chosen]


def _scale_shape(shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    h, w = shape
    s = min(1.0, max_side / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def _resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if arr.shape == shape:
        return arr.astype(np.float32)
    return np.asarray(Image.fromarray(arr.astype(np.float32)).resize((shape[1], shape[0]), Image.BILINEAR))


def _pool_points(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Fixation points onto a coarser grid: a cell is fixated if any of its pixels is."""
    if points.shape == shape:
        return points
    ys, xs = np.nonzero(points)
    out = np.zeros(shape, bool)
    out[np.minimum(ys * shape[0] // points.shape[0], shape[0] - 1), np.minimum(xs * shape[1] // points.shape[1], shape[1] - 1)] = True
    return out


def load_item(data: Path, image_id: str, max_side: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image at full size, density and fixation points at scoring size)."""
    image_path = next(p for p in (data / "images").glob(f"{image_id}.*") if p.suffix.lower() in IMAGE_SUFFIXES)
    image = np.asarray(Image.open(image_path).convert("RGB"))
    density = np.asarray(Image.open(data / "maps" / f"{image_id}.png").convert("L"), dtype=np.float32) / 255
    points = np.asarray(Image.open(data / "fixations" / f"{image_id}.png").convert("L")) > 127
    shape = _scale_shape(image.shape[:2], max_side)
    return image, _resize(density, shape), _pool_points(points, shape)


def evaluate(data: Path, methods: list[str], split: str = "val", splits_file: Path | None = None,
             max_side: int = 400, progress: bool = True) -> dict[str, dict[str, float]]:
    """Mean of every metric for every method over the chosen ids."""
    from tqdm import tqdm

    from . import predict
    ids = list_ids(data, split, splits_file)
    if not ids:
        raise SalcodecError(f"no images to evaluate in {data} (split {split})")
    scores = {m: {k: [] for k in M.METRICS} for m in methods}
    for image_id in tqdm(ids, desc=f"saliency-eval {data.name}", disable=not progress):
        image, density, points = load_item(data, image_id, max_side)
        for method in methods:
            pred = _resize(predict(image, method), density.shape)
            for name, fn in M.METRICS.items():
                scores[method][name].append(fn(pred, points if name in M.USES_FIXATIONS else density))
    return {m: {k: float(np.nanmean(v)) for k, v in per.items()} | {"n": len(ids)} for m, per in scores.items()}


def format_table(results: dict[str, dict[str, float]], title: str) -> str:
    names = list(M.METRICS)
    lines = [f"{title}", "| method | " + " | ".join(names) + " | images |", "|---" * (len(names) + 2) + "|"]
    for method, row in results.items():
        lines.append(f"| {method} | " + " | ".join(f"{row[n]:.3f}" for n in names) + f" | {int(row['n'])} |")
    return "\n".join(lines)
