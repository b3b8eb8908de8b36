"""Image <-> `.sgc` bytes with a shipped model: padding, quality maps, containers, rate control."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SalcodecError
from ..models.transforms import DECODERS, ENCODERS, load_decoder, load_encoder
from ..models.registry import DEFAULT_MODEL, load_model
from . import bitstream
from .memory import return_large_blocks_to_the_system
from .quality import q0_byte, quality_map, quality_to_q0

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


def _pad(array: np.ndarray, stride: int) -> np.ndarray:
    """Repeat the last row and column up to a multiple of the model's stride (edges cost few
    bits, unlike zeros)."""
    h, w = array.shape[:2]
    pad = ((0, (-h) % stride), (0, (-w) % stride)) + ((0, 0),) * (array.ndim - 2)
    return np.pad(array, pad, mode="edge")


def _as_batch(array: np.ndarray) -> torch.Tensor:
    """H×W or H×W×C array to a 1×C×H×W tensor view (no copy)."""
    t = torch.from_numpy(array)
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


def encode(image: np.ndarray, quality: float = 50, saliency: np.ndarray | None = None, strength: float = 0.0,
           model_name: str = DEFAULT_MODEL, encoder: str = "default") -> Encoded:
    """Compress an H×W×3 uint8 image. `saliency` (H×W in [0, 1]) shapes the encoder's quality map.

    encoder: 'default' (the model's own analysis) or 'fast' (a narrower one trained for the same
    decoder, when installed): either writes a file of the model that every decoder reads."""
    if encoder not in ENCODERS:
        raise SalcodecError(f"unknown encoder '{encoder}' (choose from {', '.join(ENCODERS)})")
    model, digest = load_model(model_name)
    second_encoder = {}
    if encoder != "default":
        if not getattr(model, "variable_rate", False):
            raise SalcodecError(f"model '{model_name}' has no {encoder} encoder (use --encoder default)")
        second_encoder["analysis"] = load_encoder(model_name, encoder)
    h, w = image.shape[:2]
    q = quality_map((h, w), quality_to_q0(quality), saliency, strength)
    x = _as_batch(_pad(np.asarray(image, np.uint8), model.stride))  # uint8: converted tile by tile
    qt = _as_batch(_pad(q, model.stride))
    tile = TILE_SIDE if x.shape[-2] * x.shape[-1] > TILE_ABOVE_PIXELS else 0
    if tile:
        return_large_blocks_to_the_system()
    st = _as_batch(_pad(saliency.astype(np.float32), model.stride)) if saliency is not None else None
    q0 = q0_byte(q)
    streams, est_bits = model.compress(x, qt, torch.tensor([q0 / 255.0]), st, tile, **second_encoder)
    used_saliency = saliency is not None and (strength != 0 or getattr(model, "saliency_input", False))
    flags = bitstream.FLAG_SPATIAL_QUALITY if used_saliency else 0
    header = bitstream.Header(model_name, digest, h, w, q0, flags, tile)
    return Encoded(bitstream.pack(bitstream.Container(header, streams)), h, w, est_bits)


def decode(data: bytes, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS, decoder: str = "mse") -> np.ndarray:
    """`.sgc` bytes to an H×W×3 uint8 image; refuses files it cannot trust with a SalcodecError.

    decoder: 'mse' (the model's own synthesis: faithful), 'gan' (the generative decoder trained
    for the same latents: realistic texture at low rates) or 'fast' (a narrower synthesis: faster,
    slightly less faithful), when one is installed for the file's model."""
    if decoder not in DECODERS:
        raise SalcodecError(f"unknown decoder '{decoder}' (choose from {', '.join(DECODERS)})")
    container = bitstream.unpack(data, max_pixels=max_pixels)
    head = container.header
    try:
        model, digest = load_model(head.model_id)
    except SalcodecError as exc:
        if not str(exc).startswith("unknown model"):
            raise
        raise SalcodecError(f"file was made by model '{head.model_id}', which is not installed "
                            f"({str(exc).split('(', 1)[1].rstrip(')')}); decode it with the salcodec release that "
                            f"shipped '{head.model_id}'") from None
    if digest != head.digest:
        raise SalcodecError(f"file was made by different weights of model '{head.model_id}' (digest {head.digest.hex()}, installed {digest.hex()})")
    if len(container.streams) != model.n_streams:
        raise SalcodecError(f"corrupt file (expected {model.n_streams} streams, found {len(container.streams)})")
    second_decoder = {}
    if decoder != "mse":
        if not getattr(model, "variable_rate", False):
            raise SalcodecError(f"model '{head.model_id}' has no {decoder} decoder (use --decoder mse)")
        second_decoder["synthesis"] = load_decoder(head.model_id, decoder)
    stride = model.stride
    padded = (head.height + (-head.height) % stride, head.width + (-head.width) % stride)
    if head.tile:
        return_large_blocks_to_the_system()
    try:
        x_hat = model.decompress(container.streams, padded, torch.tensor([head.q0 / 255.0]), head.tile,
                                 **second_decoder)
    except (RuntimeError, ValueError) as exc:
        raise SalcodecError(f"corrupt file (entropy decoding failed: {exc})") from None
    return x_hat[0, :, : head.height, : head.width].permute(1, 2, 0).contiguous().numpy()


def encode_to_bpp(image: np.ndarray, target_bpp: float, saliency: np.ndarray | None = None, strength: float = 0.0,
                  model_name: str = DEFAULT_MODEL, tolerance: float = 0.015, max_iter: int = 14,
                  encoder: str = "default") -> Encoded:
    """Search the quality (bisection: rate grows with quality) until the real bpp is within tolerance."""
    if not target_bpp > 0:
        raise SalcodecError("--bpp must be positive")
    lo, hi = 0.0, 100.0
    low = encode(image, lo, saliency, strength, model_name, encoder)
    high = encode(image, hi, saliency, strength, model_name, encoder)
    if not low.bpp <= target_bpp * (1 + tolerance):
        raise SalcodecError(f"target {target_bpp} bpp is below this model's lowest rate for this image ({low.bpp:.3f} bpp)")
    if not high.bpp >= target_bpp * (1 - tolerance):
        raise SalcodecError(f"target {target_bpp} bpp is above this model's highest rate for this image ({high.bpp:.3f} bpp)")
    best = min((low, high), key=lambda e: abs(e.bpp - target_bpp))
    for _ in range(max_iter):
        if abs(best.bpp - target_bpp) <= tolerance * target_bpp:
            break
        mid = (lo + hi) / 2
        enc = encode(image, mid, saliency, strength, model_name, encoder)
        if abs(enc.bpp - target_bpp) < abs(best.bpp - target_bpp):
            best = enc
        if enc.bpp > target_bpp:
            hi = mid
        else:
            lo = mid
    return best
