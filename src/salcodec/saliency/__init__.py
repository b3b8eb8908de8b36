"""Saliency predictors behind one interface: predict(image, method) -> float32 H×W map in [0, 1]."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import SalcodecError
from . import classic

METHODS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "centre": classic.centre,
    "spectral-residual": classic.spectral_residual,
    "fine-grained": classic.fine_grained,
    "sr-centre": classic.spectral_residual_centre,
}
AUTO_METHOD = "sr-centre"  # the best predictor we ship (see README, saliency-eval table)


def predict(image: np.ndarray, method: str = "auto") -> np.ndarray:
    """Where people look in an H×W×3 uint8 RGB image."""
    name = AUTO_METHOD if method == "auto" else method
    if name not in METHODS:
        raise SalcodecError(f"unknown saliency method '{method}' (choose from auto, {', '.join(METHODS)})")
    return METHODS[name](image)
