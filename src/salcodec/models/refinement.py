"""Refining one image's latents for its own rate–distortion cost: an encoder-side search.

The analysis transform is amortised: one network guesses good latents for every photo, and its
guess is off for each one (Campos et al. 2019). Since a decoder reads whatever symbols a file
holds, the encoder may instead search for the latents y and hyper-latents z that minimise this
image's own training loss, bits + 255² · mean(λ(q) · (x − x̂)²), through the frozen entropy model
and synthesis; the format and every decoder are unchanged.

Rounding has no useful gradient, and the straight-through estimate moves every latent a little at
each step until many cross a rounding boundary at once (tried: the cost rose after a few steps).
So y is rounded softly instead, by stochastic Gumbel annealing (Yang et al. 2020): each latent
takes a random mix of its two nearest integers around its mean, the nearer one likelier, and a
temperature that falls over the steps makes the mix nearly hard. z, far fewer values, is rounded
straight through. The search returns the starting latents where the cost with hard, nearest
rounding did not fall; otherwise the refined symbols are coded as they round, without the RD
rounding of rounding.py (the search has made that choice already, with the real distortion in
pixels). codec.encode then keeps the refined file only if it costs less than the plain one,
measured on the two files.

Settings: `python benchmarks/refine_settings.py`; gains: `python benchmarks/kodak_rd.py --refine`
(README, "Refined encoding").
"""
from __future__ import annotations

import math
from functools import partial

import torch

from ..codec.quality import LAMBDA_MAX, LAMBDA_MIN
from ..train.losses import rate_distortion_loss
from . import REFINE_STEPS
from .hyperprior import QualityMapHyperprior, ste_round

LEARNING_RATE = 0.01  # Adam's step in latent units (a quantization step is 1); benchmarks/refine_settings.py
START_TEMPERATURE, TEMPERATURE_FLOOR, TEMPERATURE_DECAY = 0.5, 0.1, 3.0  # τ = max(0.5 e^(−3 t/T), 0.1)


def soft_round(residuals: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """A random mix of floor and ceiling of each residual, the nearer one likelier: the logits are
    −atanh(distance)/τ, so a residual on an integer takes it surely and one halfway takes either
    alike; Gumbel-softmax at temperature τ draws the mix."""
    floor = torch.floor(residuals)
    up = residuals - floor  # distance to the floor; 1 − up to the ceiling
    logits = torch.stack([-torch.atanh(up.clamp(max=1 - 1e-4)), -torch.atanh((1 - up).clamp(max=1 - 1e-4))], -1)
    uniform = torch.rand(logits.shape, generator=generator).clamp(1e-9, 1 - 1e-9)
    gumbel = -torch.log(-torch.log(uniform))
    weights = torch.softmax((logits / temperature + gumbel) / temperature, -1)
    return floor + weights[..., 1]


def temperature(step: int, steps: int) -> float:
    return max(START_TEMPERATURE * math.exp(-TEMPERATURE_DECAY * step / steps), TEMPERATURE_FLOOR)


def coding_cost(model: QualityMapHyperprior, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor,
                y: torch.Tensor, z: torch.Tensor, rounding=None) -> torch.Tensor:
    """The training loss of coding x as latents y and z, in float arithmetic: bits per pixel +
    255² · mean(λ(q) · squared error). `rounding` turns y's residuals (latents minus their means)
    into symbols; None rounds them to the nearest integer, straight through."""
    medians = model.entropy_bottleneck._get_medians()
    z_hat = ste_round(z - medians) + medians
    scales, means = model.h_s(z_hat).chunk(2, 1)  # the float h_s: coding's exact one has no gradient
    scales, means = model.latent_parameters(scales, means, y)
    residuals = y - means
    y_hat = (ste_round(residuals) if rounding is None else rounding(residuals)) + means
    # the entropy models' likelihoods of the rounded values, not their forward(): it rounds again,
    # and torch.round would cut the rate's gradient to y and z
    conditional = model.gaussian_conditional
    y_likelihoods = conditional.likelihood_lower_bound(conditional._likelihood(y_hat, scales, means))
    z_likelihoods, _, _ = model.entropy_bottleneck._likelihood(z_hat.permute(1, 0, 2, 3).reshape(z.shape[1], 1, -1))
    z_likelihoods = model.entropy_bottleneck.likelihood_lower_bound(z_likelihoods).reshape(1, -1)
    x_hat = model.synthesis(y_hat, q0)
    return rate_distortion_loss(x, x_hat, [y_likelihoods, z_likelihoods], quality_map, LAMBDA_MIN, LAMBDA_MAX)["loss"]


def refine_latents(model: QualityMapHyperprior, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor,
                   y: torch.Tensor, z: torch.Tensor, steps: int = REFINE_STEPS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """`steps` of Adam on y and z for the cost of coding x (floats in [0, 1], 1×3×H×W) with this
    quality map. Returns the latents and whether they are the refined ones: the starting latents
    come back where refining did not lower the cost with nearest rounding. Deterministic for a seed."""
    with torch.inference_mode(False), torch.enable_grad():
        x, quality_map, q0 = x.clone(), quality_map.clone(), q0.clone()  # inference tensors cannot enter autograd
        start_y, start_z = y.clone(), z.clone()
        y, z = start_y.clone().requires_grad_(), start_z.clone().requires_grad_()
        frozen = [p for p in model.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            optimizer = torch.optim.Adam([y, z], lr=LEARNING_RATE)
            generator = torch.Generator().manual_seed(seed)
            for step in range(steps):
                rounding = partial(soft_round, temperature=temperature(step, steps), generator=generator)
                optimizer.zero_grad()
                coding_cost(model, x, quality_map, q0, y, z, rounding).backward()
                optimizer.step()
            with torch.no_grad():
                before = coding_cost(model, x, quality_map, q0, start_y, start_z)
                after = coding_cost(model, x, quality_map, q0, y, z)
        finally:
            for p in frozen:
                p.requires_grad_(True)
    if after < before:
        return y.detach(), z.detach(), True
    return start_y, start_z, False
