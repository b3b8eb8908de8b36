"""Saliency predictors behind one interface: predict(image, method) -> float32 H×W map in [0, 1]."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import SalcodecError
from . import classic


@lru_cache(maxsize=1)
def _learned_predictor():
    from .learned import LearnedPredictor
    return LearnedPredictor(LEARNED_WEIGHTS)


def _learned(image: np.ndarray) -> np.ndarray:
    return _learned_predictor()(image)


METHODS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "centre": classic.centre,
    "spectral-residual": classic.spectral_residual,
    "fine-grained": classic.fine_grained,
    "sr-centre": classic.spectral_residual_centre,
}
LEARNED_WEIGHTS = Path(__file__).parent / "weights" / "sam-lite-v1.pt"
if LEARNED_WEIGHTS.is_file():
    METHODS["learned"] = _learned
# the best predictor we ship, by the saliency-eval table in the README
AUTO_METHOD = "learned" if "learned" in METHODS else "sr-centre"


def predict(image: np.ndarray, method: str = "auto") -> np.ndarray:
    """Where people look in an H×W×3 uint8 RGB image."""
    name = AUTO_METHOD if method == "auto" else method
    if name not in METHODS:
        raise SalcodecError(f"unknown saliency method '{method}' (choose from auto, {', '.join(METHODS)})")
    return METHODS[name](image)
