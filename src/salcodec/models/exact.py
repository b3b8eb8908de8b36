"""The entropy model's networks in exact integer arithmetic, so that encoder and decoder always agree.

The entropy decoder picks each latent's probability table from the scale the hyper-synthesis
predicts; if a decoder computed that scale a hair differently from the encoder (another
machine, another thread count, another BLAS), it could pick another table and derail the
whole stream (CompressAI issues #279, #309, #320). Here the trained float network is run with
integer-valued weights and activations held in float64: every product and every sum of a
convolution is then an integer below 2^53, hence exact whatever the summation order, and the
remaining elementwise steps (scaling by powers of two, leaky ReLU, rounding) are single IEEE
operations, which every machine computes identically. This is the idea of Ballé et al. 2019,
"Integer networks for data compression with latent-variable models", applied after training.
It serves the hyper-synthesis and, in models with a channel context, the context networks,
whose corrected scales pick tables just the same.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .tiling import tiled

INPUT_FRAC_BITS = 8  # the hyper-latents enter as round(z_hat · 2^8)
ACT_FRAC_BITS = 8  # activations are kept on a 2^-8 grid between layers
WEIGHT_BITS = 13  # the largest weight of a layer becomes about 2^13
# Float64 convolutions unfold their input: on a 12-megapixel image h_s's last layer alone would
# take about 1 GB. Bigger inputs run in tiles; the arithmetic being exact, tiled and whole
# results are identical, so this changes no decoded bit.
TILE_Z, HALO_Z = 16, 4  # h_s: tiles of hyper-latents; its receptive field reaches 3 of them to each side


def _power_of_two_scale(weight: torch.Tensor) -> int:
    """Exponent e such that max|w| · 2^e lies in [2^(WEIGHT_BITS-1), 2^WEIGHT_BITS) (frexp is exact)."""
    _, exponent = torch.frexp(weight.abs().max().double())
    return WEIGHT_BITS - int(exponent)


class ExactNetwork:
    """Inference-only copy of a Sequential of (transposed) convolutions and leaky ReLUs, run in
    tiles of `tile` inputs with a `halo` (at least its receptive radius) when the input is bigger;
    `scale` is its output's size over its input's."""

    def __init__(self, network: nn.Sequential, tile: int = TILE_Z, halo: int = HALO_Z, scale: int = 4):
        self.tile, self.halo, self.scale = tile, halo, scale
        self.layers: list[tuple] = []
        for module in network:
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                w = module.weight.detach().double()
                shift = _power_of_two_scale(w)
                self.layers.append(("conv", module, torch.round(w * 2.0**shift),
                                    module.bias.detach().double(), shift))
            elif isinstance(module, nn.LeakyReLU):
                self.layers.append(("leaky", module.negative_slope))
            else:
                raise TypeError(f"cannot run {type(module).__name__} exactly")

    @torch.inference_mode()
    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        if max(inputs.shape[-2:]) <= self.tile + self.halo:
            return self._run(inputs)
        (out,) = tiled(lambda t: (self._run(t),), (inputs,), self.tile, self.halo, self.scale)
        return out

    def _run(self, inputs: torch.Tensor) -> torch.Tensor:
        # scaling by 2.0**k is exact in float64, like ldexp, and an order of magnitude cheaper in torch
        x = torch.floor(inputs.double() * 2.0**INPUT_FRAC_BITS + 0.5)
        frac = INPUT_FRAC_BITS
        h = x
        for layer in self.layers:
            if layer[0] == "conv":
                _, module, weight, bias, shift = layer
                out_frac = frac + shift
                b = torch.round(bias * 2.0**out_frac)
                if isinstance(module, nn.ConvTranspose2d):
                    acc = F.conv_transpose2d(x, weight, b, module.stride, module.padding, module.output_padding)
                else:
                    acc = F.conv2d(x, weight, b, module.stride, module.padding)
                h = acc * 2.0**-out_frac
            else:
                h = torch.where(h < 0, h * layer[1], h)
                x = torch.floor(h * 2.0**ACT_FRAC_BITS + 0.5)
                frac = ACT_FRAC_BITS
        return h.float()
