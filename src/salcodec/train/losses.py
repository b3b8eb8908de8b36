"""Rate-distortion losses."""
from __future__ import annotations

import math

import torch

from ..codec.quality import lambda_map


def bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Per-sample total bits: -Σ log2 p."""
    return -torch.log(likelihoods).flatten(1).sum(1) / math.log(2)


def rate_distortion_loss(x: torch.Tensor, x_hat: torch.Tensor, y_likelihoods: torch.Tensor, z_likelihoods: torch.Tensor,
                         quality_map: torch.Tensor, lambda_min: float, lambda_max: float) -> dict[str, torch.Tensor]:
    """bpp + 255² · mean(λ(x) · (x - x̂)²), with λ(x) from the quality map (../shared/DESIGN.md)."""
    pixels = x.shape[-2] * x.shape[-1]
    bpp = (bits(y_likelihoods) + bits(z_likelihoods)) / pixels
    sq_err = (x - x_hat).pow(2).mean(1, keepdim=True)
    weighted = (lambda_map(quality_map, lambda_min, lambda_max) * sq_err).flatten(1).mean(1)
    mse = sq_err.flatten(1).mean(1)
    loss = bpp + 255**2 * weighted
    return {"loss": loss.mean(), "bpp": bpp.mean(), "mse": mse.mean(),
            "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean()}
