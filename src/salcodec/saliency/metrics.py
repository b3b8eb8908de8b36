"""Saliency metrics with the MIT/Tübingen benchmark definitions.

`pred` is a predicted map, `density` a human fixation density map and `fixations` a boolean
map of fixation points, all H×W and of the same size.
"""
from __future__ import annotations

import numpy as np

EPS = np.finfo(np.float64).eps


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    std = x.std()
    return (x - x.mean()) / std if std > 0 else np.zeros_like(x)


def _as_distribution(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64) - min(0.0, float(x.min()))
    total = x.sum()
    return x / total if total > 0 else np.full_like(x, 1.0 / x.size)


def cc(pred: np.ndarray, density: np.ndarray) -> float:
    """Pearson linear correlation coefficient."""
    return float((_standardise(pred) * _standardise(density)).mean())


def nss(pred: np.ndarray, fixations: np.ndarray) -> float:
    """Normalised scanpath saliency: mean standardised prediction at the fixated pixels."""
    fix = fixations.astype(bool)
    if not fix.any():
        return float("nan")
    return float(_standardise(pred)[fix].mean())


def kld(pred: np.ndarray, density: np.ndarray) -> float:
    """KL divergence of the prediction from the density, both as distributions (lower is better)."""
    p, g = _as_distribution(pred), _as_distribution(density)
    return float((g * np.log(EPS + g / (p + EPS))).sum())


def sim(pred: np.ndarray, density: np.ndarray) -> float:
    """Similarity: the histogram intersection of the two distributions."""
    return float(np.minimum(_as_distribution(pred), _as_distribution(density)).sum())


def auc_judd(pred: np.ndarray, fixations: np.ndarray) -> float:
    """AUC-Judd: thresholds at the prediction's values on fixations; true positives are fixations above,
    false positives the other pixels above."""
    fix = fixations.astype(bool).ravel()
    s = pred.astype(np.float64).ravel()
    s = (s - s.min()) / (s.max() - s.min()) if s.max() > s.min() else np.zeros_like(s)
    n_fix, n_pix = int(fix.sum()), s.size
    if n_fix == 0 or n_fix == n_pix:
        return float("nan")
    thresholds = np.sort(s[fix])[::-1]
    sorted_all = np.sort(s)
    above_all = n_pix - np.searchsorted(sorted_all, thresholds, side="left")  # pixels >= threshold
    tp = np.arange(1, n_fix + 1) / n_fix
    fp = (above_all - np.arange(1, n_fix + 1)) / (n_pix - n_fix)
    tp = np.concatenate([[0.0], tp, [1.0]])
    fp = np.concatenate([[0.0], fp, [1.0]])
    return float(np.trapz(tp, fp))


METRICS = {"CC": cc, "NSS": nss, "KLD": kld, "SIM": sim, "AUC-Judd": auc_judd}
USES_FIXATIONS = {"NSS", "AUC-Judd"}
