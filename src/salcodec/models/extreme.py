"""Extreme-rate generative compression (Agustsson et al. 2019, "Generative Adversarial Networks
for Extreme Learned Image Compression"), model family `gan-extreme`.

The encoder maps an image to C channels at 1/16 resolution; every value is quantized to the
nearest of L learned centres, so the rate is bounded by dim(w)·log2(L) bits without any entropy
model (C = 8, L = 5: 0.073 bpp). Beyond the paper the symbols are entropy-coded with a learned
categorical prior per channel, which makes the file smaller than the bound whenever the centres
are not used equally. The generator turns the quantized map (plus optional noise channels,
drawn from a fixed seed so that decoding stays deterministic) into an image; a multi-scale patch
discriminator trains it (train/gan.py). Fixed rate: `quality` does not apply.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..codec.bitstream import pad_stream
from ..errors import SalcodecError
from .generative import HIGH_PASS_GAIN
from .layers import ForwardOutput, to_pixels, to_unit
from .tiling import tiled

CDF_PRECISION = 16
NOISE_SEED = 0


class CentreQuantizer(nn.Module):
    """Nearest of L learned centres; soft assignments (softmax over −σ·distance²) carry the gradient."""

    def __init__(self, levels: int = 5, sigma: float = 1.0):
        super().__init__()
        self.centres = nn.Parameter(torch.linspace(-2, 2, levels))
        self.sigma = sigma

    def symbols(self, w: torch.Tensor) -> torch.Tensor:
        return (w[..., None] - self.centres).abs().argmin(-1)

    def forward(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(ŵ, symbols): ŵ takes only centre values in the forward pass, soft gradients backward."""
        distance = (w[..., None] - self.centres) ** 2
        soft = (torch.softmax(-self.sigma * distance, dim=-1) * self.centres).sum(-1)
        symbols = distance.argmin(-1)
        hard = self.centres[symbols]
        return soft + (hard - soft).detach(), symbols


class SoftClamp(nn.Module):
    """limit · tanh(x / limit): keeps the encoder's output within reach of the centres. Unbounded, it
    grew past the outer centres within 40 steps of a first training run, where the soft assignment
    saturates and the encoder's gradient vanished."""

    def __init__(self, limit: float):
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.limit * torch.tanh(x / self.limit)


def rate_bound_bits(channels: int, height: int, width: int, levels: int) -> float:
    """dim(w)·log2(L): what the symbols cost without an entropy model."""
    return channels * height * width * math.log2(levels)


class ResidualBlock(nn.Module):
    """No normalisation layers anywhere in this model: their image-wide statistics would make
    the output depend on image size and forbid tiling."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ExtremeGAN(nn.Module):
    stride = 16
    n_streams = 1
    variable_rate = False
    ANALYSIS_HALO = 64  # the encoder sees about 33 px to each side
    SYNTHESIS_HALO = 160  # pixels (10 latents): the generator's residual blocks reach 9 latents

    def __init__(self, channels: int = 8, levels: int = 5, width: int = 64, noise_channels: int = 0, blocks: int = 4):
        super().__init__()
        self.C, self.L, self.noise_channels = channels, levels, noise_channels
        widths = [width // 2, width, 2 * width, 3 * width]
        layers: list[nn.Module] = [nn.Conv2d(3, widths[0], 5, padding=2), nn.ReLU(inplace=True)]
        for a, b in zip([widths[0]] + widths, widths):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*layers, nn.Conv2d(widths[-1], channels, 3, padding=1), SoftClamp(2.5))
        self.quantizer = CentreQuantizer(levels)
        self.prior_logits = nn.Parameter(torch.zeros(channels, levels))  # learned categorical prior per channel
        top = 3 * width
        gen: list[nn.Module] = [nn.Conv2d(channels + noise_channels, top, 3, padding=1), nn.ReLU(inplace=True)]
        gen += [ResidualBlock(top) for _ in range(blocks)]
        for a, b in zip([top, 2 * width, width, width // 2], [2 * width, width, width // 2, width // 2]):
            gen += [nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1), nn.ReLU(inplace=True)]
        self.generator = nn.Sequential(*gen, nn.Conv2d(width // 2, 3, 5, padding=2))
        # start at mid-grey: from a zero output the last bias alone needed ~2,000 Adam steps to reach it
        nn.init.constant_(self.generator[-1].bias, 0.5)
        self.register_buffer("cdf", torch.zeros(0, dtype=torch.int32))  # integer coding tables, built at export

    # -- transforms -------------------------------------------------------------------------
    def noise(self, w_hat: torch.Tensor) -> torch.Tensor:
        """The generator's noise channels for a whole image, from a fixed seed (deterministic decoding)."""
        gen = torch.Generator().manual_seed(NOISE_SEED)
        return torch.randn((w_hat.shape[0], self.noise_channels) + w_hat.shape[2:], generator=gen).to(w_hat)

    def generate(self, w_hat: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.noise_channels:
            w_hat = torch.cat([w_hat, self.noise(w_hat) if noise is None else noise], 1)
        return self.generator(w_hat)

    def symbol_bits(self, symbols: torch.Tensor) -> torch.Tensor:
        """−log2 p(symbol) under the per-channel categorical prior (B×C×h×w)."""
        log_p = torch.log_softmax(self.prior_logits, dim=-1)  # C×L
        picked = log_p[torch.arange(self.C).view(1, -1, 1, 1), symbols]
        return -picked / math.log(2)

    def forward(self, x: torch.Tensor, saliency: torch.Tensor | None = None) -> ForwardOutput:
        """Hard quantization in the forward pass; the likelihoods are those of the prior (their
        −log2 sum is what the entropy-coded file costs)."""
        w_hat, symbols = self.quantizer(self.encoder(x))
        likelihoods = torch.exp2(-self.symbol_bits(symbols))
        return ForwardOutput(self.generate(w_hat), [likelihoods])

    # -- coding -----------------------------------------------------------------------------
    def update_entropy_tables(self) -> None:
        from compressai._CXX import pmf_to_quantized_cdf
        pmf = torch.softmax(self.prior_logits.detach().double(), dim=-1)
        tables = [pmf_to_quantized_cdf(p.tolist() + [0.0], CDF_PRECISION) for p in pmf]
        self.cdf = torch.tensor(tables, dtype=torch.int32)  # C×(L+2): L symbols and the escape symbol

    def entropy_tables_ready(self) -> bool:
        return self.cdf.numel() > 0

    def _coder_args(self, count: int) -> tuple[list[int], list[list[int]], list[int], list[int]]:
        per_channel = count // self.C
        indexes = torch.arange(self.C, dtype=torch.int32).repeat_interleave(per_channel).tolist()
        return indexes, self.cdf.tolist(), [self.L + 2] * self.C, [0] * self.C

    @torch.inference_mode()
    def compress(self, x: torch.Tensor, quality_map: torch.Tensor | None = None, q0: torch.Tensor | None = None,
                 saliency: torch.Tensor | None = None, tile: int = 0) -> tuple[list[bytes], float]:
        from compressai.ans import RansEncoder
        def encode(pixels: torch.Tensor) -> tuple[torch.Tensor]:
            return (self.encoder(to_unit(pixels)),)

        (w,) = tiled(encode, (x,), tile, self.ANALYSIS_HALO, 1 / 16) if tile else encode(x)
        symbols = self.quantizer.symbols(w)
        indexes, cdfs, lengths, offsets = self._coder_args(symbols.numel())
        stream = RansEncoder().encode_with_indexes(symbols.int().flatten().tolist(), indexes, cdfs, lengths, offsets)
        return [stream], float(self.symbol_bits(symbols).sum())

    @torch.inference_mode()
    def decompress(self, strings: list[bytes], padded_shape: tuple[int, int], q0: torch.Tensor | None = None,
                   tile: int = 0) -> torch.Tensor:
        from compressai.ans import RansDecoder
        shape = (1, self.C, padded_shape[0] // self.stride, padded_shape[1] // self.stride)
        count = math.prod(shape)
        indexes, cdfs, lengths, offsets = self._coder_args(count)
        values = RansDecoder().decode_with_indexes(pad_stream(strings[0], count), indexes, cdfs, lengths, offsets)
        symbols = torch.tensor(values, dtype=torch.long).view(shape)
        if symbols.min() < 0 or symbols.max() >= self.L:
            raise SalcodecError("corrupt file (symbols outside the quantizer's centres)")
        w_hat = self.quantizer.centres.detach()[symbols]
        noise = self.noise(w_hat) if self.noise_channels else w_hat[:, :0]
        if tile:
            (pixels,) = tiled(lambda w, n: (to_pixels(self.generate(w, n)),), (w_hat, noise), tile // 16,
                              self.SYNTHESIS_HALO // 16, 16)
            return pixels
        return to_pixels(self.generate(w_hat, noise))


class MultiScaleDiscriminator(nn.Module):
    """Patch discriminators on the image at full, half and quarter resolution (pix2pixHD), each
    seeing the image and its amplified high-pass residual (see generative.py)."""

    def __init__(self, width: int = 32, scales: int = 3):
        super().__init__()
        self.heads = nn.ModuleList()
        for _ in range(scales):
            widths = [6, width, 2 * width, 4 * width]
            layers: list[nn.Module] = []
            for a, b in zip(widths, widths[1:]):
                layers += [nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)]
            self.heads.append(nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 3, 1, 1)))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Mean patch logits over scales (flattened together) and each scale's logits as features."""
        logits = []
        for head in self.heads:
            blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
            logits.append(head(torch.cat([x * 2 - 1, HIGH_PASS_GAIN * (x - blurred)], 1)))
            x = F.avg_pool2d(x, 2)
        return torch.cat([scale_logits.flatten(1) for scale_logits in logits], 1), logits
