"""The exact hyper-synthesis (models/exact.py) in numpy: the same integers, hence the same scales.

models/exact.py runs h_s with integer-valued float64 weights and activations, so every sum is
exact whatever order a library adds in. That makes this numpy copy give bit-identical outputs to
the torch one: a file written by either engine picks the same coding tables in the other.
Transposed convolutions run as matrix products over the input pixels whose products are added
into the output at their k² offsets (col2im): every multiply-add is one of the kernel's real taps,
where sub-pixel phases padded to a common size spend 36 per 25 on a 5×5, stride-2 layer.
Ordinary convolutions run as one matrix product over unfolded patches.
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


def _conv_transpose(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Transposed convolution of C×H×W by a C×O×k×k kernel, with output `stride` times the input
    (output padding stride − 1): one matrix product of every tap with every input pixel, then
    input pixel (m, n)'s products added at output pixel (s·m + ky − p, s·n + kx − p)."""
    c, h, w = x.shape
    out_ch, k, s = weight.shape[1], weight.shape[-1], stride
    products = (weight.reshape(c, -1).T @ x.reshape(c, h * w)).reshape(out_ch, k, k, h, w)
    full = np.zeros((out_ch, s * (h - 1) + k + s, s * (w - 1) + k + s))
    for ky in range(k):
        for kx in range(k):
            full[:, ky: ky + s * h: s, kx: kx + s * w: s] += products[:, ky, kx]
    return full[:, padding: padding + s * h, padding: padding + s * w] + bias[:, None, None]


class ExactHyperSynthesis:
    """h_s from a bundle's tables: per layer, integer weights (float64), float64 bias, the
    power-of-two shift and the layer's geometry; leaky ReLUs between them."""

    def __init__(self, tables: dict[str, np.ndarray]):
        self.input_frac_bits = int(tables["h_s_input_frac_bits"])
        self.act_frac_bits = int(tables["h_s_act_frac_bits"])
        self.layers: list[tuple] = []
        for i in range(int(tables["h_s_layers"])):
            kind = str(tables[f"h_s_{i}_kind"])
            if kind == "leaky":
                self.layers.append(("leaky", float(tables[f"h_s_{i}_slope"])))
                continue
            weight, bias = tables[f"h_s_{i}_weight"].astype(np.float64), tables[f"h_s_{i}_bias"]
            stride, padding, shift = (int(v) for v in tables[f"h_s_{i}_geometry"])
            if kind != "deconv" and stride != 1:
                raise ValueError("strided convolutions are not part of h_s")
            self.layers.append((kind, weight, bias, shift, stride, padding))

    def __call__(self, z_hat: np.ndarray) -> np.ndarray:
        """C×h×w float32 hyper-latents to float32 outputs (scales and means stacked)."""
        x = np.floor(z_hat.astype(np.float64) * 2.0**self.input_frac_bits + 0.5)
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
            integer_bias = np.round(bias * 2.0**out_frac)
            if kind == "deconv":
                acc = _conv_transpose(x, weight, integer_bias, stride, padding)
            else:
                acc = _conv(x, weight, integer_bias, padding)
            h = acc * 2.0**-out_frac
        return h.astype(np.float32)
