"""Building blocks shared by the model families."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ._compressai import GDN as _CompressaiGDN


@contextmanager
def native_kernels_when_coding() -> Iterator[None]:
    """Run 1×1 convolutions with PyTorch's native kernel when coding (no autograd).

    oneDNN's k×k convolutions give the same floats whatever the thread count, but its 1×1
    convolutions do not (they split their sums by thread count: GDN's output differed in the
    sixth digit between 1 and 2 threads), and a float that differs can round a latent the other
    way and change the file. The native kernel (a GEMM split over output blocks) does not depend
    on the thread count, and 1×1 layers are a small part of the work, so every other layer keeps
    oneDNN's speed. Training, which tracks gradients, keeps oneDNN everywhere.
    """
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = previous and torch.is_grad_enabled()
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous


def coding_layout(x: torch.Tensor) -> torch.Tensor:
    """Channels-last memory when coding: oneDNN's convolutions run about 10 % faster on it (the
    default synthesis 285 → 249 ms on a Kodak image) and give the same floats. Training keeps
    PyTorch's default layout."""
    return x if torch.is_grad_enabled() else x.contiguous(memory_format=torch.channels_last)


class PointwiseConv2d(nn.Conv2d):
    """A 1×1 convolution whose coding-time output does not depend on the thread count."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with native_kernels_when_coding():
            return super().forward(x)


class GDN(_CompressaiGDN):
    """CompressAI's GDN (its normalisation is a 1×1 convolution), thread-invariant when coding."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with native_kernels_when_coding():
            return super().forward(x)


def conv(in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=kernel // 2)


def deconv(in_ch: int, out_ch: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return SubPixelConvTranspose2d(
        in_ch, out_ch, kernel, stride=stride, padding=kernel // 2, output_padding=stride - 1
    )


class SubPixelConvTranspose2d(nn.ConvTranspose2d):
    """A transposed convolution that, when coding (eval mode, no autograd), runs as an ordinary
    convolution followed by a pixel shuffle.

    Output pixel s·m + r of a stride-s transposed convolution sums input pixels m + t with kernel
    tap r + p − s·t, so each of the s² output phases is a small convolution of the input. One
    convolution with s²·C_out channels computes them all; the shuffle interleaves the phases.
    Same weights and the same function (float rounding aside); PyTorch's native transposed
    convolution spends most of its time scattering columns into a zeroed output (col2im), which
    made it more than half of decoding. Training keeps the transposed convolution.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if self.training or torch.is_grad_enabled() or output_size is not None or not self._shuffle_applies():
            return super().forward(x, output_size)
        weight, bias = self._phase_kernels()
        pad = weight.shape[-1] // 2
        return nn.functional.pixel_shuffle(nn.functional.conv2d(x, weight, bias, padding=pad), self.stride[0])

    def _shuffle_applies(self) -> bool:
        """Square and plain (no dilation, no groups), with the output exactly `stride` times the input,
        and, without oneDNN, wide enough: for a few output channels (the RGB layer) the native im2col
        of a 3×3 convolution costs several times the transposed convolution it replaces. oneDNN's
        convolution has no such cost, and its transposed convolution is slow (the default RGB
        layer: 27 ms as a convolution, 65 ms transposed, 21 ms native transposed)."""
        (k, k2), (s, s2), (p, p2) = self.kernel_size, self.stride, self.padding
        square = k == k2 and s == s2 and p == p2
        plain = self.dilation == (1, 1) and self.groups == 1
        exact_size = k == 2 * p + 1 and self.output_padding == (s - 1, s - 1)
        wide = self.out_channels * s * s >= self.in_channels or torch.backends.mkldnn.enabled
        return square and plain and exact_size and wide

    def _phase_kernels(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The s²·C_out phase kernels, rebuilt only when the weights change (loading bumps their version)."""
        key = (self.weight.data_ptr(), self.weight._version, None if self.bias is None else self.bias._version)
        cached = getattr(self, "_phase_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        k, s, p = self.kernel_size[0], self.stride[0], self.padding[0]
        reach = (p + s - 1) // s  # input offsets t run over −reach … reach
        taps = 2 * reach + 1
        c_in, c_out = self.weight.shape[:2]
        kernels = self.weight.new_zeros(c_out, s, s, c_in, taps, taps)
        w = self.weight.permute(1, 0, 2, 3)  # C_out × C_in × k × k
        for ry in range(s):
            for a in range(taps):
                ky = ry + p - s * (a - reach)
                if not 0 <= ky < k:
                    continue
                for rx in range(s):
                    for b in range(taps):
                        kx = rx + p - s * (b - reach)
                        if 0 <= kx < k:
                            kernels[:, ry, rx, :, a, b] = w[:, :, ky, kx]
        weight = kernels.reshape(c_out * s * s, c_in, taps, taps)
        bias = None if self.bias is None else self.bias.repeat_interleave(s * s)
        self._phase_cache = (key, weight, bias)
        return weight, bias


def to_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to floats in [0, 1]; floats pass through. Codecs take uint8 so that a big
    image is converted tile by tile instead of as one float copy four times its size."""
    if pixels.dtype == torch.uint8:
        return pixels.float().div_(255).contiguous()
    return pixels


def to_pixels(x_hat: torch.Tensor) -> torch.Tensor:
    """A reconstruction in [0, 1] (any range) to uint8 pixels, rounding to nearest."""
    return x_hat.clamp(0, 1).mul_(255).round_().to(torch.uint8)


class QualityPyramid(nn.Module):
    """Turns a 1-channel quality map into condition features at strides 2, 4, 8, 16.

    One shared, narrow network serves every SFT layer of the encoder, as in Song et al.
    (ICCV 2021); it starts at stride 2 because quality maps are smooth, which keeps its cost
    small next to the analysis transform.
    """

    def __init__(self, channels: int = 32, levels: int = 4):
        super().__init__()
        self.downs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(1 if i == 0 else channels, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.1, inplace=True))
            for i in range(levels)
        )

    def forward(self, quality_map: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = quality_map
        for down in self.downs:
            x = down(x)
            feats.append(x)
        return feats


class SFT(nn.Module):
    """Spatial feature transform: x * (1 + gamma(c)) + beta(c), starting as the identity."""

    def __init__(self, channels: int, cond_channels: int = 32):
        super().__init__()
        self.shared = nn.Sequential(PointwiseConv2d(cond_channels, cond_channels), nn.LeakyReLU(0.1, inplace=True))
        self.gamma = PointwiseConv2d(cond_channels, channels)
        self.beta = PointwiseConv2d(cond_channels, channels)
        for layer in (self.gamma, self.beta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.shared(cond)
        return x * (1 + self.gamma(h)) + self.beta(h)


def load_state_resizing_buffers(model: nn.Module, state: dict[str, torch.Tensor], strict: bool = True,
                                assign: bool = False) -> None:
    """load_state_dict that first gives entropy-coder table buffers the shapes in `state`.

    CompressAI's CDF tables start empty and are sized when built, so a saved model holds
    tables a fresh one has no room for. `assign` makes the model use the tensors of `state`
    instead of copying them (loading for inference: a copy of every weight saved).
    """
    buffers = dict(model.named_buffers())
    for name, value in state.items():
        if name in buffers and buffers[name].shape != value.shape:
            module_name, _, attr = name.rpartition(".")
            module = model.get_submodule(module_name) if module_name else model
            module.register_buffer(attr, torch.empty_like(value), persistent=True)
    model.load_state_dict(state, strict=strict, assign=assign)


@dataclass
class ForwardOutput:
    """What a model's training forward pass returns: the reconstruction and the likelihoods of
    every latent tensor that is coded (their -log2 sum is the estimated rate)."""
    x_hat: torch.Tensor
    likelihoods: list[torch.Tensor]
