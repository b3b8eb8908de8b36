"""The two coding engines, and the choice between them.

`torch` (codec/codec.py) is the reference: it codes every model family and image size. `onnx`
(coder.py) codes the default family's files without importing torch, whose import alone takes
about 1.8 s of a 2-core machine's time: ONNX Runtime runs the transforms, exported once per
weights file into a cache folder (bundle.py). The hyper-synthesis is exact integer arithmetic in
both engines, so they pick the same coding tables: each reads the other's files. Their
transforms round differently in the last float bits, so a file can differ by a few bytes
between engines and a decoded pixel, rarely, by one level (as JPEG decoders with different
IDCTs do); each engine alone is deterministic. `auto` uses onnx where it applies and torch
elsewhere; `salcodec eval` and training always use torch.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ..codec import bitstream
from ..codec.encoded import Encoded, search_bpp, search_bpp_refined
from ..codec.orientation import cheapest_orientation, encode_flipped, orientation_of
from ..codec.quality import lambda_map, quality_to_q0
from ..errors import SalcodecError
from . import bundle  # noqa: F401  (salcodec.runtime.bundle.CACHE_ENV and friends)

ENGINES = ("auto", "onnx", "torch")
T = TypeVar("T")


def set_threads(count: int) -> None:
    """CPU threads for both engines' transforms."""
    from .coder import set_threads as set_onnx_threads
    set_onnx_threads(count)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(count)
    else:  # read by torch when it loads
        os.environ["OMP_NUM_THREADS"] = str(count)


def _check(engine: str) -> None:
    if engine not in ENGINES:
        raise SalcodecError(f"unknown engine '{engine}' (choose from {', '.join(ENGINES)})")


def _onnx_or_none(engine: str, call: Callable[[], T]) -> T | None:
    """`call()` on the onnx engine; None where auto falls back to torch."""
    from .bundle import NotSupported
    _check(engine)
    if engine == "torch":
        return None
    try:
        return call()
    except NotSupported as why:
        if engine == "onnx":
            raise SalcodecError(f"the onnx engine cannot do this: {why} (use --engine torch)") from None
        return None


def encode(pixels: np.ndarray, quality: float, saliency: np.ndarray | None, strength: float, model: str,
           encoder: str, engine: str = "auto", try_flips: bool = False, refine_steps: int = 0) -> Encoded:
    """`try_flips`: also code the image flipped and keep the cheapest file (codec/orientation.py);
    `refine_steps` > 0: search for better latents of the image (models/refinement.py, torch engine).
    With both, the orientation is chosen first, on plain files, and only its latents are refined:
    one search instead of four."""
    from . import coder

    if refine_steps:  # gradients: the torch engine only
        _check(engine)
        if engine == "onnx":
            raise SalcodecError("the onnx engine cannot refine latents (use --engine torch or auto)")

    def encode_as(image: np.ndarray, sal: np.ndarray | None, refine: int = 0) -> Encoded:
        if not refine:
            encoded = _onnx_or_none(engine, lambda: coder.encode(image, quality, sal, strength, model, encoder))
            if encoded is not None:
                return encoded
        from ..codec import codec
        return codec.encode(image, quality, sal, strength, model, encoder, refine)
    if not try_flips:
        return encode_as(pixels, saliency, refine_steps)
    lam = float(lambda_map(np.float64(quality_to_q0(quality))))
    best, flags = cheapest_orientation(encode_as, lambda data: decode(data, engine=engine), pixels, saliency, lam)
    if not refine_steps:
        return best
    return encode_flipped(lambda image, sal: encode_as(image, sal, refine_steps), pixels, saliency, flags)


def encode_to_bpp(pixels: np.ndarray, target_bpp: float, saliency: np.ndarray | None, strength: float, model: str,
                  encoder: str, engine: str = "auto", try_flips: bool = False, refine_steps: int = 0) -> Encoded:
    """`encode` at the quality whose real bpp is within 1.5 % of the target; with `refine_steps`,
    the quality is searched on plain files and only the one found is refined (search_bpp_refined),
    in the orientation its plain file chose when `try_flips`."""
    orientations: dict[float, int] = {}  # the flips each quality's plain file was coded with

    def plain_at(quality: float) -> Encoded:
        encoded = encode(pixels, quality, saliency, strength, model, encoder, engine, try_flips)
        orientations[quality] = orientation_of(encoded.data)
        return encoded
    if not refine_steps:
        return search_bpp(plain_at, target_bpp)

    def refined_at(quality: float) -> Encoded:  # in its plain file's orientation: no second four encodes
        return encode_flipped(lambda image, sal: encode(image, quality, sal, strength, model, encoder, engine,
                                                        refine_steps=refine_steps), pixels, saliency, orientations[quality])
    return search_bpp_refined(plain_at, refined_at, target_bpp)


def decode(data: bytes, decoder: str = "mse", engine: str = "auto",
           max_pixels: int = bitstream.DEFAULT_MAX_PIXELS) -> np.ndarray:
    from . import coder
    pixels = _onnx_or_none(engine, lambda: coder.decode(data, max_pixels, decoder))
    if pixels is None:
        from ..codec import codec
        pixels = codec.decode(data, max_pixels, decoder)
    return pixels


def predict_saliency(pixels: np.ndarray, method: str, engine: str = "auto") -> np.ndarray:
    """saliency.predict, with the learned predictor on the onnx engine where it applies."""
    from .. import saliency
    name = saliency.AUTO_METHOD if method == "auto" else method
    if name == "learned":
        from . import coder
        sal = _onnx_or_none(engine, lambda: coder.predict_saliency(pixels))
        if sal is not None:
            return sal
    return saliency.predict(pixels, method)
