"""Ballé et al. 2017, "End-to-end optimized image compression": a factorized-prior model with GDN,
and the seed's variants of it, each a constructor option.

- `saliency_input`: the encoder sees the saliency map as a fourth channel, E(x, s); the decoder
  never does (the seed's L_gc). A file made this way still decodes without the map.
- `dilated`: dilated 5×5 convolutions in the second and third encoder layers, to widen the
  receptive field (the seed's last experiment).

Fixed rate: one trained model per λ; `quality` does not apply.
"""
from __future__ import annotations

import torch
from torch import nn

from ..codec.bitstream import pad_stream
from ._compressai import EntropyBottleneck
from .layers import GDN, ForwardOutput, conv, deconv, to_pixels, to_unit
from .tiling import tiled


def _dilated_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 5, stride=2, padding=4, dilation=2)


class FactorizedPrior(nn.Module):
    stride = 16
    n_streams = 1
    variable_rate = False
    ANALYSIS_HALO = 64  # g_a sees 30 px to each side, 42 px when dilated
    SYNTHESIS_HALO = 64  # g_s reaches about 2 latents to each side

    def __init__(self, N: int = 64, M: int = 96, saliency_input: bool = False, dilated: bool = False):
        super().__init__()
        self.N, self.M, self.saliency_input = N, M, saliency_input
        middle = _dilated_conv if dilated else conv
        self.g_a = nn.Sequential(
            conv(4 if saliency_input else 3, N), GDN(N),
            middle(N, N), GDN(N),
            middle(N, N), GDN(N),
            conv(N, M),
        )
        self.g_s = nn.Sequential(
            deconv(M, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, N), GDN(N, inverse=True),
            deconv(N, 3),
        )
        self.entropy_bottleneck = EntropyBottleneck(M)

    def _encoder_input(self, x: torch.Tensor, saliency: torch.Tensor | None) -> torch.Tensor:
        if not self.saliency_input:
            return x
        if saliency is None:  # no map given: a flat one, as if every pixel mattered equally
            saliency = torch.full_like(x[:, :1], 0.5)
        return torch.cat([x, saliency], 1)

    def forward(self, x: torch.Tensor, saliency: torch.Tensor | None = None) -> ForwardOutput:
        """Mixed quantization: noise for the rate, rounding (straight-through) for the decoder."""
        y = self.g_a(self._encoder_input(x, saliency))
        _, likelihoods = self.entropy_bottleneck(y)
        offset = self.entropy_bottleneck._get_medians()
        y_hat = y + (torch.round(y - offset) + offset - y).detach()
        return ForwardOutput(self.g_s(y_hat), [likelihoods])

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    def entropy_tables_ready(self) -> bool:
        return self.entropy_bottleneck._quantized_cdf.numel() > 0

    def update_entropy_tables(self) -> None:
        self.entropy_bottleneck.update(force=True, update_quantiles=True)

    @torch.inference_mode()
    def compress(self, x: torch.Tensor, quality_map: torch.Tensor | None = None, q0: torch.Tensor | None = None,
                 saliency: torch.Tensor | None = None, tile: int = 0) -> tuple[list[bytes], float]:
        """x: 1×3×H×W uint8 pixels (or floats in [0, 1]). The [y] stream and its estimated bits;
        the quality map does not apply to a fixed-rate model."""
        inputs = (x, saliency) if saliency is not None and self.saliency_input else (x,)

        def encode(pixels: torch.Tensor, saliency: torch.Tensor | None = None) -> tuple[torch.Tensor]:
            return (self.g_a(self._encoder_input(to_unit(pixels), saliency)),)

        (y,) = tiled(encode, inputs, tile, self.ANALYSIS_HALO, 1 / 16) if tile else encode(*inputs)
        strings = self.entropy_bottleneck.compress(y)
        y_hat, likelihoods = self.entropy_bottleneck(y, training=False)
        return [strings[0]], float(-likelihoods.log2().sum())

    @torch.inference_mode()
    def decompress(self, strings: list[bytes], padded_shape: tuple[int, int], q0: torch.Tensor | None = None,
                   tile: int = 0) -> torch.Tensor:
        """Inverse of `compress`: 1×3×H×W uint8 pixels."""
        shape = (padded_shape[0] // self.stride, padded_shape[1] // self.stride)
        y_hat = self.entropy_bottleneck.decompress([pad_stream(strings[0], self.M * shape[0] * shape[1])], shape)
        if tile:
            (x_hat,) = tiled(lambda t: (to_pixels(self.g_s(t)),), (y_hat,), tile // 16, self.SYNTHESIS_HALO // 16, 16)
            return x_hat
        return to_pixels(self.g_s(y_hat))
