"""Image quality and rate-distortion metrics, with the definitions of ../shared/DESIGN.md."""
from __future__ import annotations

import math
import warnings

import numpy as np

ROI_FRACTION = 0.2  # ROI: the top 20 % most salient pixels of the reference map


def _sq_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel squared error summed over RGB, in 8-bit units."""
    return ((a.astype(np.float64) - b.astype(np.float64)) ** 2).sum(axis=-1)


def _psnr_from_mse(mse: float) -> float:
    return float("inf") if mse <= 0 else 10 * math.log10(255.0**2 / mse)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR-RGB of two uint8 H×W×3 images (MSE over all pixels and channels)."""
    return _psnr_from_mse(float(_sq_err(a, b).mean() / 3))


def region_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR of a region: its summed squared error over its pixel count (× 3 channels)."""
    count = int(mask.sum())
    if count == 0:
        return float("nan")
    return _psnr_from_mse(float(_sq_err(a, b)[mask].sum() / (3 * count)))


def roi_mask(reference: np.ndarray, fraction: float = ROI_FRACTION) -> np.ndarray:
    """The pixels whose reference saliency is in the top `fraction` of the image."""
    threshold = np.quantile(reference, 1 - fraction)
    mask = reference >= threshold
    if mask.all():  # a flat map has no ROI: take none rather than everything
        return np.zeros_like(mask)
    return mask


def weighted_psnr(a: np.ndarray, b: np.ndarray, saliency: np.ndarray) -> float:
    """PSNR of the MSE weighted by s / mean(s)."""
    s = saliency.astype(np.float64)
    w = s / s.mean() if s.mean() > 0 else np.ones_like(s)
    return _psnr_from_mse(float((w * _sq_err(a, b)).mean() / 3))


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (pytorch-msssim) on 8-bit RGB; images smaller than 161 px use single-scale SSIM."""
    import torch  # here: `salcodec decompress --reference` uses psnr without torch
    from pytorch_msssim import ms_ssim as _ms_ssim
    from pytorch_msssim import ssim as _ssim
    ta = torch.from_numpy(np.array(a, dtype=np.float32)).permute(2, 0, 1)[None]
    tb = torch.from_numpy(np.array(b, dtype=np.float32)).permute(2, 0, 1)[None]
    if min(a.shape[:2]) > 160:
        return float(_ms_ssim(ta, tb, data_range=255))
    return float(_ssim(ta, tb, data_range=255))


def _upper_band(h: int, w: int) -> np.ndarray:
    """The rfft2 bins above a quarter cycle per pixel (half of Nyquist): the upper half of spatial frequencies."""
    return np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]) > 0.25


def _luma(image: np.ndarray) -> np.ndarray:
    luma = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return luma - luma.mean()


def high_frequency_power(image: np.ndarray) -> float:
    """Power of an H×W×3 uint8 image's luma in the upper half of spatial frequencies; a Hann window
    stops the image borders from adding edges of their own."""
    luma = _luma(image)
    h, w = luma.shape
    window = np.outer(np.hanning(h), np.hanning(w)) if min(h, w) > 1 else np.ones((h, w))
    power = np.abs(np.fft.rfft2(luma * window)) ** 2
    return float(power[_upper_band(h, w)].sum())


def high_frequency_detail(image: np.ndarray) -> np.ndarray:
    """H×W: the luma's upper-frequency band (the band of `high_frequency_power`) back in pixel
    space, squared: where in the image the fine detail is."""
    luma = _luma(image)
    spectrum = np.fft.rfft2(luma) * _upper_band(*luma.shape)
    return np.fft.irfft2(spectrum, s=luma.shape) ** 2


def region_high_frequency_ratio(original: np.ndarray, reconstruction: np.ndarray, mask: np.ndarray) -> float:
    """`high_frequency_ratio` inside a region: the reconstruction's fine-detail energy there over the
    original's. Says where a generative decoder puts its texture (ROI or background)."""
    if not mask.any():
        return float("nan")
    return float(high_frequency_detail(reconstruction)[mask].sum() / max(high_frequency_detail(original)[mask].sum(), 1e-12))


def high_frequency_ratio(original: np.ndarray, reconstruction: np.ndarray) -> float:
    """Realism without learned features: high-frequency power of the reconstruction over the
    original's. Blurry (MSE-optimal) reconstructions fall well below 1; generated texture brings
    it back towards 1 (it says nothing about whether the texture is the right one: PSNR does)."""
    return high_frequency_power(reconstruction) / max(high_frequency_power(original), 1e-12)


def grid_artefact_ratio(original: np.ndarray, reconstruction: np.ndarray, period: int = 16) -> float:
    """Checkerboard and blocking artefacts as a number: the error's power at the harmonics of the
    decoder's upsampling grid (frequencies k/period in each direction, which every stride-2 stage
    of a period-16 synthesis can imprint) over its power at the neighbouring frequencies. About 1
    when the error has no periodic pattern; well above 1 when it does."""
    h = original.shape[0] // period * period
    w = original.shape[1] // period * period
    error = (reconstruction[:h, :w].astype(np.float64) - original[:h, :w].astype(np.float64)).mean(axis=-1)
    power = np.abs(np.fft.fft2(error - error.mean())) ** 2
    grid = np.zeros((h, w), bool)
    grid[:: h // period, :: w // period] = True
    grid[0, 0] = False  # the mean, removed above
    near = np.zeros((h, w), bool)  # a ring of bins around each grid frequency, wrapping at the edges
    for dy in range(-2, 3):
        for dx in range(-2, 3):
            if (dy, dx) != (0, 0):
                near |= np.roll(grid, (dy, dx), axis=(0, 1))
    near &= ~grid
    near[0, 0] = False
    return float(power[grid].mean() / max(power[near].mean(), 1e-12))


def bd_rate(rate_a: list[float], quality_a: list[float], rate_b: list[float], quality_b: list[float]) -> float:
    """Bjøntegaard delta rate of curve B against anchor A, in percent (negative: B needs fewer bits).

    A cubic fit of log(rate) against quality for each curve, integrated over the overlapping
    quality range.
    """
    qa, qb = np.asarray(quality_a, float), np.asarray(quality_b, float)
    la, lb = np.log(np.asarray(rate_a, float)), np.log(np.asarray(rate_b, float))
    if len(qa) < 4 or len(qb) < 4:
        raise ValueError("BD-rate needs at least 4 points per curve")
    lo, hi = max(qa.min(), qb.min()), min(qa.max(), qb.max())
    if hi <= lo or not np.all(np.isfinite(np.concatenate([qa, qb, la, lb]))):
        return float("nan")  # no overlap, or a degenerate curve
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", np.RankWarning)
            pa, pb = np.polyint(np.polyfit(qa, la, 3)), np.polyint(np.polyfit(qb, lb, 3))
    except np.linalg.LinAlgError:
        return float("nan")
    avg_a = (np.polyval(pa, hi) - np.polyval(pa, lo)) / (hi - lo)
    avg_b = (np.polyval(pb, hi) - np.polyval(pb, lo)) / (hi - lo)
    return float((math.exp(avg_b - avg_a) - 1) * 100)


def quality_at_rate(rates: list[float], qualities: list[float], target: float) -> float | None:
    """One image's quality at `target` bpp, linear in log(bpp) between the nearest settings; None outside."""
    r = np.asarray(rates, float)
    q = np.asarray(qualities, float)
    order = np.argsort(r)
    r, q = r[order], q[order]
    if target < r[0] or target > r[-1]:
        return None
    return float(np.interp(math.log(target), np.log(r), q))


def mean_quality_at_rate(curves: list[tuple[list[float], list[float]]], target: float) -> float | None:
    """Average over images of quality_at_rate; None unless every image's curve covers the target."""
    values = [quality_at_rate(r, q, target) for r, q in curves]
    if any(v is None for v in values):
        return None
    return float(np.mean(values))
