"""Classic saliency predictors that need no training: spectral residual, fine-grained, centre bias.

Every predictor maps an H×W×3 uint8 RGB array to a float32 H×W map in [0, 1], computed at a
working resolution of at most `WORK_SIDE` pixels on the long side (saliency is a coarse signal),
blurred as saliency benchmarks expect, then resized back.
"""
from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 400
BLUR_FRACTION = 0.03  # Gaussian blur sigma as a fraction of the long side


def _work_image(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return image


def _finish(sal: np.ndarray, shape: tuple[int, int], blur: bool = True) -> np.ndarray:
    sal = sal.astype(np.float32)
    if blur:
        sigma = BLUR_FRACTION * max(sal.shape)
        sal = cv2.GaussianBlur(sal, (0, 0), sigmaX=max(sigma, 0.5))
    sal = cv2.resize(sal, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    lo, hi = float(sal.min()), float(sal.max())
    return ((sal - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(sal)).astype(np.float32)


def centre_bias(shape: tuple[int, int], sigma_fraction: float = 0.25) -> np.ndarray:
    """An anisotropic Gaussian at the image centre: where people look when nothing stands out."""
    h, w = shape
    yy = (np.arange(h, dtype=np.float32) - (h - 1) / 2) / max(h * sigma_fraction, 1e-6)
    xx = (np.arange(w, dtype=np.float32) - (w - 1) / 2) / max(w * sigma_fraction, 1e-6)
    return np.exp(-0.5 * (yy[:, None] ** 2 + xx[None, :] ** 2)).astype(np.float32)


def spectral_residual(image: np.ndarray) -> np.ndarray:
    """Hou & Zhang (2007), via OpenCV contrib."""
    work = _work_image(image)
    ok, sal = cv2.saliency.StaticSaliencySpectralResidual_create().computeSaliency(cv2.cvtColor(work, cv2.COLOR_RGB2BGR))
    if not ok:
        sal = np.zeros(work.shape[:2], np.float32)
    return _finish(sal, image.shape[:2])


def fine_grained(image: np.ndarray) -> np.ndarray:
    """Montabone & Soto (2010) centre-surround fine-grained saliency, via OpenCV contrib."""
    work = _work_image(image)
    ok, sal = cv2.saliency.StaticSaliencyFineGrained_create().computeSaliency(cv2.cvtColor(work, cv2.COLOR_RGB2BGR))
    if not ok:
        sal = np.zeros(work.shape[:2], np.float32)
    return _finish(sal, image.shape[:2])


def centre(image: np.ndarray) -> np.ndarray:
    return centre_bias(image.shape[:2])


def spectral_residual_centre(image: np.ndarray) -> np.ndarray:
    """Spectral residual weighted by the centre prior: the best classic predictor we have."""
    work = _work_image(image)
    sr = spectral_residual(work)
    return _finish(sr * centre_bias(work.shape[:2]), image.shape[:2], blur=False)
