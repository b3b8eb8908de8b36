"""Coding a flipped image when that costs less (`--try-flips`).

The transforms are not equivariant to flips: strided convolutions sample the image from its
top-left corner, padding sits at the bottom and right, and the checkerboard context starts at the
first latent. So the same photo flipped top-bottom, left-right or both codes to other bits for
another error, and which is cheapest depends on the photo (benchmarks/orientation.py: keeping the
cheapest of the four at each quality saves 1.43 % BD-rate on Kodak, on every image). The encoder
tries them and keeps the lowest bpp + λ(q0) · MSE, the model's own training objective; two header
flags tell the decoder how to flip the decoded image back. Numpy only: both engines use it.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import bitstream
from .encoded import Encoded

FLIPS = bitstream.FLAG_FLIP_ROWS | bitstream.FLAG_FLIP_COLUMNS
ORIENTATIONS = (0, bitstream.FLAG_FLIP_COLUMNS, bitstream.FLAG_FLIP_ROWS, FLIPS)


def flip(array: np.ndarray, flags: int) -> np.ndarray:
    """The image (or map) flipped as `flags` say; each flip is its own inverse."""
    rows, columns = bool(flags & bitstream.FLAG_FLIP_ROWS), bool(flags & bitstream.FLAG_FLIP_COLUMNS)
    if not (rows or columns):
        return array
    return np.ascontiguousarray(array[::-1 if rows else 1, ::-1 if columns else 1])


def flagged(encoded: Encoded, flags: int) -> Encoded:
    """The same file with the flip flags set (the streams are untouched)."""
    if not flags:
        return encoded
    container = bitstream.unpack(encoded.data)
    container.header.flags |= flags
    return Encoded(bitstream.pack(container), encoded.height, encoded.width, encoded.estimated_bits)


def encode_flipped(encode: Callable[[np.ndarray, np.ndarray | None], Encoded], image: np.ndarray,
                   saliency: np.ndarray | None, flags: int) -> Encoded:
    """`encode(image, saliency)` of the image and map flipped as `flags` say, in a file flagged to flip back."""
    return flagged(encode(flip(image, flags), None if saliency is None else flip(saliency, flags)), flags)


def orientation_of(data: bytes) -> int:
    """The flip flags a file was coded with."""
    return bitstream.unpack(data).header.flags & FLIPS


def mean_squared_error(a: np.ndarray, b: np.ndarray, rows: int = 256) -> float:
    """MSE of two uint8 images in 8-bit units, a band of rows at a time (bounded memory on big photos)."""
    total = 0
    for top in range(0, a.shape[0], rows):
        diff = a[top:top + rows].astype(np.int32) - b[top:top + rows]
        total += int(np.sum(diff * diff, dtype=np.int64))
    return total / a.size


def cheapest_orientation(encode: Callable[[np.ndarray, np.ndarray | None], Encoded], decode: Callable[[bytes], np.ndarray],
                         image: np.ndarray, saliency: np.ndarray | None, lam: float) -> tuple[Encoded, int]:
    """Encode the image in each orientation (`encode(image, saliency)`), decode each file as a
    decoder will, and keep the one with the lowest bpp + lam · MSE (8-bit units; with a saliency
    map too, every pixel's error counts at the one λ of the file's q0). Returns it and its flags."""
    best, best_flags, best_cost = None, 0, np.inf
    for flags in ORIENTATIONS:
        encoded = encode_flipped(encode, image, saliency, flags)
        cost = encoded.bpp + lam * mean_squared_error(decode(encoded.data), image)
        if cost < best_cost:
            best, best_flags, best_cost = encoded, flags, cost
    return best, best_flags
