"""The exact entropy-model networks (models/exact.py) in numpy: the same integers, hence the same scales.

models/exact.py runs h_s (and a channel context's networks) with integer-valued float64 weights
and activations, so every sum is exact whatever order a library adds in. That makes this numpy
copy give bit-identical outputs to the torch one: a file written by either engine picks the same
coding tables in the other.
Transposed convolutions run as their sub-pixel phases (models/layers.SubPixelConvTranspose2d),
ordinary convolutions as one matrix product over unfolded patches.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, padding: int) -> np.ndarray:
    """Stride-1 convolution of C×H×W by O×C×k×k, padded with zeros, as one matrix product."""
    k = weight.shape[-1]
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    patches = sliding_window_view(padded, (k, k), axis=(1, 2))  # C×H×W×k×k, a view
    c, h, w = patches.shape[:3]
    columns = patches.transpose(1, 2, 0, 3, 4).reshape(h * w, c * k * k)
    return (columns @ weight.reshape(weight.shape[0], -1).T + bias).T.reshape(-1, h, w)


def _pixel_shuffle(x: np.ndarray, s: int) -> np.ndarray:
    c, h, w = x.shape
    return x.reshape(c // (s * s), s, s, h, w).transpose(0, 3, 1, 4, 2).reshape(c // (s * s), h * s, w * s)


def phase_kernels(weight: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """The stride²·O sub-pixel kernels of a transposed convolution (C×O×k×k weights), in the
    order models/layers.SubPixelConvTranspose2d builds them: output phase (ry, rx) of channel o
    is kernel o·s² + ry·s + rx."""
    c_in, c_out, k, _ = weight.shape
    s, p = stride, padding
    reach = (p + s - 1) // s
    taps = 2 * reach + 1
    kernels = np.zeros((c_out, s, s, c_in, taps, taps), weight.dtype)
    w = weight.transpose(1, 0, 2, 3)
    for ry in range(s):
        for a in range(taps):
            ky = ry + p - s * (a - reach)
            for rx in range(s):
                for b in range(taps):
                    kx = rx + p - s * (b - reach)
                    if 0 <= ky < k and 0 <= kx < k:
                        kernels[:, ry, rx, :, a, b] = w[:, :, ky, kx]
    return kernels.reshape(c_out * s * s, c_in, taps, taps)


class ExactNetwork:
    """A network from a bundle's tables (h_s, or context network j under the prefix `context_j`):
    per layer, integer weights (float64), float64 bias, the power-of-two shift and the layer's
    geometry; leaky ReLUs between them."""

    def __init__(self, tables: dict[str, np.ndarray], prefix: str = "h_s"):
        self.input_frac_bits = int(tables["h_s_input_frac_bits"])
        self.act_frac_bits = int(tables["h_s_act_frac_bits"])
        self.layers: list[tuple] = []
        for i in range(int(tables[f"{prefix}_layers"])):
            kind = str(tables[f"{prefix}_{i}_kind"])
            if kind == "leaky":
                self.layers.append(("leaky", float(tables[f"{prefix}_{i}_slope"])))
                continue
            weight, bias = tables[f"{prefix}_{i}_weight"].astype(np.float64), tables[f"{prefix}_{i}_bias"]
            stride, padding, shift = (int(v) for v in tables[f"{prefix}_{i}_geometry"])
            if kind == "deconv":
                weight, bias = phase_kernels(weight, stride, padding), np.repeat(bias, stride * stride)
                padding = weight.shape[-1] // 2
            elif stride != 1:
                raise ValueError("strided convolutions are not part of h_s")
            self.layers.append((kind, weight, bias, shift, stride, padding))

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """C×h×w float32 inputs (h_s: hyper-latents) to float32 outputs (h_s: scales and means stacked)."""
        x = np.floor(inputs.astype(np.float64) * 2.0**self.input_frac_bits + 0.5)
        frac = self.input_frac_bits
        h = x
        for layer in self.layers:
            if layer[0] == "leaky":
                h = np.where(h < 0, h * layer[1], h)
                x = np.floor(h * 2.0**self.act_frac_bits + 0.5)
                frac = self.act_frac_bits
                continue
            kind, weight, bias, shift, stride, padding = layer
            out_frac = frac + shift
            acc = _conv(x, weight, np.round(bias * 2.0**out_frac), padding)
            if kind == "deconv":
                acc = _pixel_shuffle(acc, stride)
            h = acc * 2.0**-out_frac
        return h.astype(np.float32)
