"""What a training step optimises, per model family: one batch in, the loss terms out."""
from __future__ import annotations

import torch
from torch import nn

from .losses import fixed_lambda_loss, rate_distortion_loss, saliency_weight


class QualityMapObjective:
    """Variable rate: random quality maps, λ(x) = λ_min·(λ_max/λ_min)^q(x) (the default model)."""

    def __init__(self, tcfg: dict):
        self.lambdas = (tcfg["lambda_min"], tcfg["lambda_max"])

    def __call__(self, net: nn.Module, x: torch.Tensor, saliency: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
        q0 = torch.round(q.flatten(1).amax(1) * 255) / 255  # what the file header will carry (quality.q0_byte)
        out = net(x, q, q0)
        return rate_distortion_loss(x, out.x_hat, out.likelihoods, q, *self.lambdas)


class FixedLambdaObjective:
    """Fixed rate: bpp + λ·d(x, x̂, w(s)) with a chosen distortion and saliency weighting (bls2017 variants)."""

    def __init__(self, tcfg: dict):
        self.lmbda = tcfg["lambda"]
        self.kind = tcfg.get("distortion", "mse")
        self.weighting = tcfg.get("saliency_weighting", "none")
        self.floor = tcfg.get("saliency_floor", 0.1)
        self.alpha = tcfg.get("ssim_alpha", 0.84)

    def __call__(self, net: nn.Module, x: torch.Tensor, saliency: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
        out = net(x, saliency)
        weight = saliency_weight(saliency, self.weighting, self.floor)
        return fixed_lambda_loss(x, out.x_hat, out.likelihoods, self.lmbda, self.kind, weight, self.alpha)


def make_objective(family: str, tcfg: dict):
    return QualityMapObjective(tcfg) if family == "quality-map-hyperprior" else FixedLambdaObjective(tcfg)
