"""What both coding engines share, without torch: the result type, padding and rate control."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import SalcodecError

# Images above this many (padded) pixels are transformed in tiles, which bounds memory: the
# native convolutions unfold their input (im2col), about 600 MB for the second layer at this
# size. The tile side is written in the container so that the decoder tiles the same way.
TILE_ABOVE_PIXELS = 1024 * 768
TILE_SIDE = 512


@dataclass
class Encoded:
    data: bytes
    height: int
    width: int
    estimated_bits: float

    @property
    def bpp(self) -> float:
        """Real bits per pixel: 8 · file size / (H · W)."""
        return 8 * len(self.data) / (self.height * self.width)

    @property
    def estimated_bpp(self) -> float:
        return self.estimated_bits / (self.height * self.width)


def pad_to_stride(array: np.ndarray, stride: int) -> np.ndarray:
    """Repeat the last row and column up to a multiple of the model's stride (edges cost few
    bits, unlike zeros)."""
    h, w = array.shape[:2]
    pad = ((0, (-h) % stride), (0, (-w) % stride)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(array, pad, mode="edge")


def padded_size(height: int, width: int, stride: int) -> tuple[int, int]:
    return height + (-height) % stride, width + (-width) % stride


def search_bpp(encode_at: Callable[[float], Encoded], target_bpp: float, tolerance: float = 0.015,
               max_iter: int = 14) -> Encoded:
    """The file of the quality whose real bpp is within tolerance of the target (or the closest)."""
    return search_quality(encode_at, target_bpp, tolerance, max_iter)[1]


def search_quality(encode_at: Callable[[float], Encoded], target_bpp: float, tolerance: float = 0.015,
                   max_iter: int = 14, ends: tuple[Encoded, Encoded] | None = None) -> tuple[float, Encoded]:
    """Bisection on the quality (rate grows with it) until the real bpp is within tolerance; returns
    the quality and file closest to the target. `ends`: the files at qualities 0 and 100, if known."""
    if not target_bpp > 0:
        raise SalcodecError("--bpp must be positive")
    lo, hi = 0.0, 100.0
    low, high = ends or (encode_at(lo), encode_at(hi))
    if not low.bpp <= target_bpp * (1 + tolerance):
        raise SalcodecError(f"target {target_bpp} bpp is below this model's lowest rate for this image ({low.bpp:.3f} bpp)")
    if not high.bpp >= target_bpp * (1 - tolerance):
        raise SalcodecError(f"target {target_bpp} bpp is above this model's highest rate for this image ({high.bpp:.3f} bpp)")
    best = min(((lo, low), (hi, high)), key=lambda found: abs(found[1].bpp - target_bpp))
    for _ in range(max_iter):
        if abs(best[1].bpp - target_bpp) <= tolerance * target_bpp:
            break
        mid = (lo + hi) / 2
        enc = encode_at(mid)
        if abs(enc.bpp - target_bpp) < abs(best[1].bpp - target_bpp):
            best = mid, enc
        if enc.bpp > target_bpp:
            hi = mid
        else:
            lo = mid
    return best


def search_bpp_refined(plain_at: Callable[[float], Encoded], refined_at: Callable[[float], Encoded], target_bpp: float,
                       tolerance: float = 0.015, max_refines: int = 4) -> Encoded:
    """search_bpp for refined encodes, which cost a search each: the quality is searched on plain
    files, for the target divided by the size ratio of the last refined file to the plain one at
    its quality (refinement changes the size, most often upward), and only the quality found is
    refined. The ratio changes slowly with the quality, so one or two refinements usually land
    within tolerance; after `max_refines`, the closest refined file."""
    ends = plain_at(0.0), plain_at(100.0)
    target, best, refined_qualities = target_bpp, None, set()
    for _ in range(max_refines):
        quality, plain = search_quality(plain_at, target, tolerance, ends=ends)
        if quality in refined_qualities:  # the same file again (an end of the range, or no closer plain file)
            break
        refined_qualities.add(quality)
        refined = refined_at(quality)
        if best is None or abs(refined.bpp - target_bpp) < abs(best.bpp - target_bpp):
            best = refined
        if abs(refined.bpp - target_bpp) <= tolerance * target_bpp:
            break
        # the next plain target, kept inside the plain files' range: the target itself was in it
        target = min(max(target * plain.bpp / refined.bpp, ends[0].bpp), ends[1].bpp)
    return best
