"""Image <-> `.sgc` bytes with a shipped model: padding, quality maps, containers, rate control."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import SalcodecError
from ..models.registry import DEFAULT_MODEL, load_model
from ..models.transforms import DECODERS, ENCODERS, load_decoder, load_encoder
from . import bitstream
from .encoded import TILE_ABOVE_PIXELS, TILE_SIDE, Encoded, pad_to_stride, padded_size, search_bpp
from .memory import return_large_blocks_to_the_system
from .orientation import flip
from .quality import lambda_map, q0_byte, quality_map, quality_to_q0


def _as_batch(array: np.ndarray) -> torch.Tensor:
    """H×W or H×W×C array to a 1×C×H×W tensor view (no copy)."""
    t = torch.from_numpy(array)
    return t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]


def encode(image: np.ndarray, quality: float = 50, saliency: np.ndarray | None = None, strength: float = 0.0,
           model_name: str = DEFAULT_MODEL, encoder: str = "default", refine_steps: int = 0) -> Encoded:
    """Compress an H×W×3 uint8 image. `saliency` (H×W in [0, 1]) shapes the encoder's quality map.

    encoder: 'default' (the model's own analysis) or 'fast' (a narrower one trained for the same
    decoder, when installed): either writes a file of the model that every decoder reads.
    refine_steps: > 0 searches that many steps for better latents of this image (models/refinement.py)
    and keeps the refined file only where its bpp + mean(λ(q) · squared error) is below the plain one's."""
    if encoder not in ENCODERS:
        raise SalcodecError(f"unknown encoder '{encoder}' (choose from {', '.join(ENCODERS)})")
    model, digest = load_model(model_name)
    encoder_options = {}
    if encoder != "default":
        if not getattr(model, "variable_rate", False):
            raise SalcodecError(f"model '{model_name}' has no {encoder} encoder (use --encoder default)")
        encoder_options["analysis"] = load_encoder(model_name, encoder)
    h, w = image.shape[:2]
    q = quality_map((h, w), quality_to_q0(quality), saliency, strength)
    x = _as_batch(pad_to_stride(np.asarray(image, np.uint8), model.stride))  # uint8: converted tile by tile
    qt = _as_batch(pad_to_stride(q, model.stride))
    tile = TILE_SIDE if x.shape[-2] * x.shape[-1] > TILE_ABOVE_PIXELS else 0
    if refine_steps:
        _check_refinable(model, model_name, tile, refine_steps)
    if tile:
        return_large_blocks_to_the_system()
    st = _as_batch(pad_to_stride(saliency.astype(np.float32), model.stride)) if saliency is not None else None
    q0 = q0_byte(q)
    used_saliency = saliency is not None and (strength != 0 or getattr(model, "saliency_input", False))
    header = bitstream.Header(model_name, digest, h, w, q0, bitstream.FLAG_SPATIAL_QUALITY if used_saliency else 0, tile)

    def compress(steps: int = 0) -> Encoded:  # other model families take no refine_steps
        options = dict(encoder_options, refine_steps=steps) if steps else encoder_options
        streams, est_bits = model.compress(x, qt, torch.tensor([q0 / 255.0]), st, tile, **options)
        return Encoded(bitstream.pack(bitstream.Container(header, streams)), h, w, est_bits)
    if not refine_steps:
        return compress()
    plain, refined = compress(), compress(refine_steps)
    if refined.data == plain.data:
        return plain
    costs = [file_cost(candidate, image, q) for candidate in (plain, refined)]
    return refined if costs[1] < costs[0] else plain


def file_cost(encoded: Encoded, image: np.ndarray, quality_map: np.ndarray) -> float:
    """What refinement minimises, measured on the real file: bpp + mean(λ(q) · squared error) in
    8-bit units, the training objective. The search measures it with nearest rounding in float
    arithmetic and the plain file has RD rounding, so only the files can say which is cheaper."""
    error = decode(encoded.data).astype(np.float32) - image
    lam = lambda_map(torch.from_numpy(quality_map)).numpy()
    return encoded.bpp + float(np.mean(lam[..., None] * error * error))


def _check_refinable(model: torch.nn.Module, model_name: str, tile: int, steps: int) -> None:
    if steps < 0:
        raise SalcodecError(f"refine steps must be >= 0 (got {steps})")
    if not getattr(model, "variable_rate", False):
        raise SalcodecError(f"model '{model_name}' cannot refine its latents (use the default model family)")
    if tile:
        raise SalcodecError(f"latent refinement works on images up to {TILE_ABOVE_PIXELS:,} pixels "
                            "(it keeps the whole image's gradients in memory); compress larger ones without it")


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
    padded = padded_size(head.height, head.width, model.stride)
    if head.tile:
        return_large_blocks_to_the_system()
    try:
        x_hat = model.decompress(container.streams, padded, torch.tensor([head.q0 / 255.0]), head.tile,
                                 **second_decoder)
    except (RuntimeError, ValueError) as exc:
        raise SalcodecError(f"corrupt file (entropy decoding failed: {exc})") from None
    return flip(x_hat[0, :, : head.height, : head.width].permute(1, 2, 0).contiguous().numpy(), head.flags)


def encode_to_bpp(image: np.ndarray, target_bpp: float, saliency: np.ndarray | None = None, strength: float = 0.0,
                  model_name: str = DEFAULT_MODEL, tolerance: float = 0.015, max_iter: int = 14,
                  encoder: str = "default") -> Encoded:
    """`encode` at the quality whose real bpp is within tolerance of the target (encoded.search_bpp)."""
    return search_bpp(lambda quality: encode(image, quality, saliency, strength, model_name, encoder),
                      target_bpp, tolerance, max_iter)
