"""Rate-distortion losses."""
from __future__ import annotations

import math

import torch

from ..codec.quality import lambda_map


def bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Per-sample total bits: -Σ log2 p."""
    return -torch.log(likelihoods).flatten(1).sum(1) / math.log(2)


def bpp(likelihoods: list[torch.Tensor], pixels: int) -> torch.Tensor:
    """Per-sample estimated bits per pixel over all coded latents."""
    return sum(bits(lik) for lik in likelihoods) / pixels


def rate_distortion_loss(x: torch.Tensor, x_hat: torch.Tensor, likelihoods: list[torch.Tensor],
                         quality_map: torch.Tensor, lambda_min: float, lambda_max: float) -> dict[str, torch.Tensor]:
    """bpp + 255² · mean(λ(x) · (x - x̂)²), with λ(x) from the quality map (../shared/DESIGN.md)."""
    rate = bpp(likelihoods, x.shape[-2] * x.shape[-1])
    sq_err = (x - x_hat).pow(2).mean(1, keepdim=True)
    weighted = (lambda_map(quality_map, lambda_min, lambda_max) * sq_err).flatten(1).mean(1)
    mse = sq_err.flatten(1).mean(1)
    loss = rate + 255**2 * weighted
    return {"loss": loss.mean(), "bpp": rate.mean(), "mse": mse.mean(),
            "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean()}


def saliency_weight(saliency: torch.Tensor, mode: str, floor: float = 0.1) -> torch.Tensor | None:
    """Per-pixel distortion weight from a saliency map (B×1×H×W in [0, 1]).

    'floor': w = ε + (1 − ε)·s, the seed's form (it raises the total weight, hence the rate);
    'normalised': the same divided by its mean per image, so the total weight — and the rate
    budget — stays where the unweighted loss puts it; 'none': no weighting.
    """
    if mode == "none":
        return None
    w = floor + (1 - floor) * saliency
    if mode == "floor":
        return w
    if mode == "normalised":
        return w / w.flatten(1).mean(1).view(-1, 1, 1, 1)
    raise ValueError(f"unknown saliency weighting '{mode}' (none, floor, normalised)")


def generation_weight(saliency: torch.Tensor, like: torch.Tensor, floor: float) -> torch.Tensor:
    """Where the generator is asked to look real: a B×1×h×w weight on the patches of `like` (a
    discriminator map), 1 − s pooled to its grid and raised to `floor`, divided by its mean per image.

    The distortion weight holds salient pixels to the original; without this the adversarial term
    still pulls them toward synthetic texture, and the two fight where people look. With it the
    GAN's push lands on the background, and its total stays that of the unweighted mean.
    """
    s = torch.nn.functional.adaptive_avg_pool2d(saliency, like.shape[-2:])
    w = floor + (1 - floor) * (1 - s)
    return w / w.flatten(1).mean(1).view(-1, 1, 1, 1)


def periodic_error_power(x: torch.Tensor, x_hat: torch.Tensor, period: int = 16) -> torch.Tensor:
    """Per-sample power (8-bit units²) of the part of the error that repeats every `period` pixels.

    A synthesis built from stride-2 upsampling can imprint a pattern on its 16-px grid (GAN decoders
    did: eval.metrics.grid_artefact_ratio). Averaging the error over all period×period blocks keeps
    exactly that pattern (the error's power at the grid harmonics, up to scale), while an error
    that does not repeat averages away (its power falls by the number of blocks).
    """
    b, c, h, w = x.shape
    h, w = h // period * period, w // period * period
    error = (x_hat - x)[..., :h, :w].mean(1)
    pattern = error.reshape(b, h // period, period, w // period, period).mean((1, 3))
    pattern = pattern - pattern.mean((1, 2), keepdim=True)  # the error's mean is no pattern
    return 255**2 * pattern.pow(2).mean((1, 2))


def high_frequency_energy(x: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """B×1×h×w: per patch, the mean power of the luma's upper half of spatial frequencies (above a
    quarter cycle per pixel: the band of eval.metrics.high_frequency_ratio), images in [0, 1]."""
    luma = (x * x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    spectrum = torch.fft.rfft2(luma)
    fy = torch.fft.fftfreq(x.shape[-2], device=x.device).view(-1, 1)
    fx = torch.fft.rfftfreq(x.shape[-1], device=x.device).view(1, -1)
    detail = torch.fft.irfft2(spectrum * (torch.hypot(fy, fx) > 0.25), s=x.shape[-2:])
    return torch.nn.functional.avg_pool2d(detail.pow(2), patch)


def texture_energy_mismatch(x: torch.Tensor, x_hat: torch.Tensor, saliency: torch.Tensor, floor: float,
                            patch: int = 16, noise_floor: float = (2 / 255) ** 2) -> torch.Tensor:
    """Per-sample squared log-ratio of the reconstruction's high-frequency energy to the original's,
    patch by patch, weighted towards the background (`generation_weight`).

    The adversarial term decides what generated texture looks like, but not how much of it there
    is: the GAN decoders put proportionally more fine detail where people look (the edges of the
    salient objects) than in the grass, foliage and water around them, the opposite of
    saliency-selective generation. This term asks every background patch for as much fine detail
    as the original had there, no more and no less; `noise_floor` (power of ±2 levels) keeps flat
    patches from asking for their sensor noise.
    """
    real, fake = high_frequency_energy(x, patch), high_frequency_energy(x_hat, patch)
    mismatch = (torch.log(fake + noise_floor) - torch.log(real + noise_floor)).pow(2)
    return (generation_weight(saliency, mismatch, floor) * mismatch).flatten(1).mean(1)


def distortion(x: torch.Tensor, x_hat: torch.Tensor, kind: str, weight: torch.Tensor | None = None,
               alpha: float = 0.84) -> torch.Tensor:
    """Per-sample distortion: 'mse' (in 8-bit units, 255²·MSE), 'ms-ssim' (1 − MS-SSIM) or
    'ssim-l1' (α·(1 − SSIM) + (1 − α)·L1, Zhao et al. 2017). `weight` weights the pixelwise terms."""
    from pytorch_msssim import ms_ssim, ssim
    w = torch.ones_like(x[:, :1]) if weight is None else weight
    if kind == "mse":
        return 255**2 * (w * (x - x_hat).pow(2).mean(1, keepdim=True)).flatten(1).mean(1)
    if kind == "ms-ssim":
        if weight is not None:
            raise ValueError("saliency weighting applies to pixelwise distortions (mse, ssim-l1), not ms-ssim")
        return 1 - ms_ssim(x, x_hat.clamp(0, 1), data_range=1.0, size_average=False, win_size=7)
    if kind == "ssim-l1":
        l1 = (w * (x - x_hat).abs().mean(1, keepdim=True)).flatten(1).mean(1)
        return alpha * (1 - ssim(x, x_hat.clamp(0, 1), data_range=1.0, size_average=False, win_size=7)) + (1 - alpha) * l1
    raise ValueError(f"unknown distortion '{kind}' (mse, ms-ssim, ssim-l1)")


def fixed_lambda_loss(x: torch.Tensor, x_hat: torch.Tensor, likelihoods: list[torch.Tensor], lmbda: float,
                      kind: str, weight: torch.Tensor | None, alpha: float = 0.84) -> dict[str, torch.Tensor]:
    """bpp + λ · d(x, x̂, w): the loss of the fixed-rate (bls2017) variants."""
    rate = bpp(likelihoods, x.shape[-2] * x.shape[-1])
    dist = distortion(x, x_hat, kind, weight, alpha)
    mse = (x - x_hat).pow(2).flatten(1).mean(1)
    return {"loss": (rate + lmbda * dist).mean(), "bpp": rate.mean(), "mse": mse.mean(),
            "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean()}
