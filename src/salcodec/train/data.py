"""Training data: photos held in memory, random crops, and random quality maps.

Crops are cut from uint8 arrays in RAM, so a 2-core machine spends its time on the model,
not on JPEG decoding. Each image carries a saliency map: the human fixation density where
the data set has one (OSIE, NUS Scene train ids), a classic prediction otherwise (BSDS500).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..codec.image_io import IMAGE_SUFFIXES
from ..codec.quality import normalise_saliency
from ..saliency.classic import spectral_residual_centre


@dataclass
class Sample:
    image: np.ndarray  # H×W×3 uint8
    saliency: np.ndarray  # H×W uint8


def _load_rgb(path: Path, max_side: int) -> np.ndarray:
    img = Image.open(path).convert("RGB")
    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
    return np.asarray(img)


def _load_map(path: Path, size: tuple[int, int]) -> np.ndarray:
    img = Image.open(path).convert("L")
    if img.size != size:
        img = img.resize(size, Image.BILINEAR)
    return np.asarray(img)


def load_photo_folder(folder: Path, max_side: int) -> list[Sample]:
    """Photos without fixation data; their saliency is the classic prediction."""
    samples = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        image = _load_rgb(path, max_side)
        sal = (spectral_residual_centre(image) * 255).astype(np.uint8)
        samples.append(Sample(image, sal))
    return samples


def load_saliency_set(root: Path, split: str, splits_file: Path, max_side: int) -> list[Sample]:
    """Images of a fixation data set (OSIE or NUS layout) restricted to one split's ids."""
    ids = json.loads(splits_file.read_text())[root.name][split]
    samples = []
    for image_id in ids:
        candidates = [p for p in (root / "images").glob(f"{image_id}.*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if not candidates:
            continue
        image = _load_rgb(candidates[0], max_side)
        sal = _load_map(root / "maps" / f"{image_id}.png", (image.shape[1], image.shape[0]))
        samples.append(Sample(image, sal))
    return samples


def random_quality_map(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random map of the four kinds the model must follow: uniform, gradient, blobs, saliency."""
    h, w = saliency.shape
    kind = rng.choice(4, p=[0.4, 0.15, 0.15, 0.3])
    if kind == 0:
        return np.full((h, w), rng.uniform(), np.float32)
    if kind == 1:
        a, b = rng.uniform(size=2)
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        return (a + (b - a) * t).astype(np.float32)
    if kind == 2:
        q = np.full((h, w), rng.uniform(), np.float32)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            sigma = rng.uniform(0.1, 0.5) * max(h, w)
            q += rng.uniform(-0.7, 0.7) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        return np.clip(q, 0, 1).astype(np.float32)
    s = normalise_saliency(saliency)  # the inference form (codec.quality.quality_map) with random q0 and γ
    q = rng.uniform() - rng.uniform(0.2, 1.0) * (1.0 - s)
    return np.clip(q, 0, 1).astype(np.float32)


class CropSampler:
    """Draws batches of (image crop, saliency crop, quality map) with flips and random downscaling."""

    def __init__(self, samples: list[Sample], crop: int, seed: int, max_zoom: float = 1.6):
        if not samples:
            raise ValueError("no training images found")
        self.samples = samples
        self.crop = crop
        self.max_zoom = max_zoom
        self.rng = np.random.default_rng(seed)

    def _one(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sample = self.samples[self.rng.integers(len(self.samples))]
        h, w = sample.image.shape[:2]
        zoom = self.rng.uniform(1.0, self.max_zoom) if self.rng.uniform() < 0.5 else 1.0
        side = min(int(self.crop * zoom), h, w)
        y0, x0 = self.rng.integers(0, h - side + 1), self.rng.integers(0, w - side + 1)
        img = torch.from_numpy(np.array(sample.image[y0:y0 + side, x0:x0 + side])).permute(2, 0, 1).float() / 255
        sal = torch.from_numpy(np.array(sample.saliency[y0:y0 + side, x0:x0 + side])).float()[None] / 255
        if side != self.crop:
            img = F.interpolate(img[None], size=(self.crop, self.crop), mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
            sal = F.interpolate(sal[None], size=(self.crop, self.crop), mode="bilinear", align_corners=False)[0]
        if self.rng.uniform() < 0.5:
            img, sal = img.flip(-1), sal.flip(-1)
        q = torch.from_numpy(random_quality_map(sal[0].numpy(), self.rng))[None]
        return img, sal, q

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        imgs, sals, qs = zip(*(self._one() for _ in range(size)))
        return torch.stack(imgs), torch.stack(sals), torch.stack(qs)


class BatchStream(torch.utils.data.IterableDataset):
    """Endless batches from a CropSampler, for DataLoader worker processes.

    A GPU steps faster than one CPU core cuts crops; each worker draws from its own random
    stream (the sampler's seed and the worker's id), so workers never repeat each other.
    """

    def __init__(self, sampler: CropSampler, batch: int, seed: int):
        self.sampler, self.batch, self.seed = sampler, batch, seed

    def __iter__(self):
        worker = torch.utils.data.get_worker_info()
        if worker is not None:
            self.sampler.rng = np.random.default_rng([self.seed, worker.id])
        while True:
            yield self.sampler.batch(self.batch)
