"""What a model's entropy model leaves on the table, with its transforms as they are.

    python benchmarks/entropy_headroom.py [--model ID] [--data ../shared/data/kodak] [--images 24]
                                          [--qualities 0 50 100]

For each image and quality the model's encoder gives the latents y and ẑ; its hyper-synthesis
(and contexts, in their float form) give each latent's Gaussian mean μ and scale σ. Printed per
quality, summed over the images:

- the bits of y and of ẑ, and ẑ's share: what a better prior for ẑ could save at most;
- the correlation of the normalised residuals r = (y − μ)/σ with their neighbours' (one latent
  right, one down), signed and in magnitude: what a spatial context could still predict (a signed
  correlation near 0 leaves the means nothing to learn; a magnitude correlation, the scales a little);
- the bits of y under other symmetric families (Laplace, logistic) with each latent's scale
  multiplied by the best of a few factors, against the Gaussian's: whether the family is the limit.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from salcodec.codec.encoded import pad_to_stride
from salcodec.models import DEFAULT_MODEL
from salcodec.models.hyperprior import analyze, hyper_analyze
from salcodec.models.layers import to_unit
from salcodec.models.registry import load_model


def family_bits(symbols: torch.Tensor, scales: torch.Tensor, family: str, factor: float) -> float:
    """Bits of integer residuals under a zero-mean family of scale factor · σ (unit-variance form for the Gaussian)."""
    s = scales * factor
    if family == "gauss":
        cdf = lambda t: 0.5 * (1 + torch.erf(t / (s * math.sqrt(2))))  # noqa: E731
    elif family == "laplace":
        cdf = lambda t: torch.where(t < 0, 0.5 * torch.exp(t / s), 1 - 0.5 * torch.exp(-t / s))  # noqa: E731
    else:
        cdf = lambda t: torch.sigmoid(t / s)  # noqa: E731
    p = (cdf(symbols + 0.5) - cdf(symbols - 0.5)).clamp_min(1e-9)
    return float(-torch.log2(p).sum())


FAMILIES = {"gauss": (0.9, 1.0, 1.1), "laplace": (0.6, 0.7, 0.8, 0.9), "logistic": (0.45, 0.55, 0.65)}


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


@torch.no_grad()
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--data", default="../shared/data/kodak")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--qualities", type=float, nargs="+", default=[0, 50, 100])
    args = ap.parse_args()
    model, _ = load_model(args.model)
    medians = model.entropy_bottleneck._get_medians()
    paths = sorted(p for p in Path(args.data).iterdir() if p.suffix.lower() in (".png", ".jpg"))[: args.images]
    print(f"# {args.model}, {len(paths)} images of {args.data}; bits summed over the images")
    print("| quality | bits of y | bits of ẑ | ẑ share | corr r (right, down) | corr abs r (right, down) |"
          " Gaussian | best Laplace | best logistic |")
    print("|---|---|---|---|---|---|---|---|---|")
    for quality in args.qualities:
        q0 = torch.tensor([quality / 100])
        y_bits = z_bits = 0.0
        residuals, bits = [], {name: {f: 0.0 for f in factors} for name, factors in FAMILIES.items()}
        for path in paths:
            image = pad_to_stride(np.asarray(Image.open(path).convert("RGB")), model.stride)
            x = torch.from_numpy(image).permute(2, 0, 1)[None]
            y, cond = analyze(model, to_unit(x), torch.full((1, 1, *x.shape[-2:]), float(q0)), q0)
            z = hyper_analyze(model, y, cond)
            z_hat = torch.round(z - medians) + medians
            _, z_likelihoods = model.entropy_bottleneck(z_hat, training=False)
            scales, means = model.latent_parameters(*model.h_s(z_hat).chunk(2, 1), y)
            scales = model.gaussian_conditional.lower_bound_scale(scales)
            symbols = torch.round(y - means)
            _, y_likelihoods = model.gaussian_conditional(symbols + means, scales, means=means, training=False)
            y_bits += float(-torch.log2(y_likelihoods).sum())
            z_bits += float(-torch.log2(z_likelihoods).sum())
            residuals.append((y - means) / scales)
            for name, factors in FAMILIES.items():
                for factor in factors:
                    bits[name][factor] += family_bits(symbols, scales, name, factor)
        right = [(r[..., :, :-1], r[..., :, 1:]) for r in residuals]
        down = [(r[..., :-1, :], r[..., 1:, :]) for r in residuals]

        def pooled(pairs, magnitude=False):
            a = torch.cat([p[0].flatten() for p in pairs])
            b = torch.cat([p[1].flatten() for p in pairs])
            return correlation(a.abs(), b.abs()) if magnitude else correlation(a, b)
        gauss = bits["gauss"][1.0]
        best = {name: min(v.values()) for name, v in bits.items()}
        print(f"| {quality:g} | {y_bits:,.0f} | {z_bits:,.0f} | {z_bits / (y_bits + z_bits):.1%} "
              f"| {pooled(right):+.3f}, {pooled(down):+.3f} | {pooled(right, True):+.3f}, {pooled(down, True):+.3f} "
              f"| {min(bits['gauss'].values()) / gauss - 1:+.2%} (best factor) "
              f"| {best['laplace'] / gauss - 1:+.2%} | {best['logistic'] / gauss - 1:+.2%} |")


if __name__ == "__main__":
    main()
