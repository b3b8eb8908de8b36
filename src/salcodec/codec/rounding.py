"""Rate–distortion optimised rounding of the latents: an encoder-side choice only.

A decoder reads whatever integer symbols a file holds, so the encoder need not round each latent
to its nearest integer. Rounding one step toward zero (toward the mode of the latent's Gaussian,
around its predicted mean) costs a little precision and often saves bits. Each latent is rounded
the way that costs less in `code length + multiplier · (residual − symbol)²`, with the code length
read from the very tables the range coder uses, so both engines (torch and onnx) decide alike from
the same residuals. The latents of the next pass or slice are predicted from these choices, as the
decoder will predict them. The format and every decoder are unchanged.

The multiplier is one number in bits per squared latent step, the same at every rate (the gain
units put the quantization step at each rate's precision). It was tuned on BSDS500 training photos,
never on a test set: `python benchmarks/rd_rounding.py` sweeps it and prints the BD-rate of each
value against nearest rounding.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

RD_MULTIPLIER = 40.0
_multiplier = RD_MULTIPLIER


def current_multiplier() -> float:
    """The multiplier encoders use now (0 turns RD rounding off: nearest rounding)."""
    return _multiplier


@contextmanager
def rd_multiplier(value: float) -> Iterator[None]:
    """Encode with another multiplier inside a `with` block (research: benchmarks/rd_rounding.py)."""
    global _multiplier
    if not value >= 0:
        raise ValueError(f"the RD multiplier must be >= 0 (got {value})")
    previous, _multiplier = _multiplier, value
    try:
        yield
    finally:
        _multiplier = previous


def code_lengths(cdfs: np.ndarray) -> np.ndarray:
    """Bits of each symbol of each table, from the coder's 16-bit CDFs (a table's padding gets 0)."""
    p = np.diff(np.asarray(cdfs, np.int64), axis=1).astype(np.float64) / 65536
    return -np.log2(np.where(p > 0, p, 1))


def rd_round(residuals: np.ndarray, indexes: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
             bits: np.ndarray, multiplier: float | None = None) -> np.ndarray:
    """Integer symbols (as floats) for `residuals`, the latents minus their means.

    indexes: each latent's coding table; offsets and lengths: the tables' first symbol and CDF
    length (CompressAI's layout: the last two entries are the escape symbol and the end); bits:
    `code_lengths` of the tables; multiplier: `current_multiplier()` unless given. A symbol moves
    one step toward zero from the nearest integer when that lowers bits + multiplier · error²;
    symbols whose nearest integer is escape-coded stay as they are.
    """
    m = current_multiplier() if multiplier is None else multiplier
    nearest = np.round(residuals)
    if m == 0:
        return nearest
    toward = nearest - np.sign(nearest)
    position = (nearest - offsets[indexes]).astype(np.int64)
    inside = (position >= 0) & (position <= lengths[indexes] - 3)  # not the escape symbol
    position = np.where(inside, position, 0)
    step = np.sign(nearest).astype(np.int64)  # the table position of `toward` is one step back
    saved_bits = bits[indexes, position] - bits[indexes, np.maximum(position - step, 0)]
    extra_error = (residuals - toward) ** 2 - (residuals - nearest) ** 2
    move = inside & (nearest != 0) & (m * extra_error < saved_bits)
    return np.where(move, toward, nearest)
