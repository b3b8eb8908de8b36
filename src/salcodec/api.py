"""The library API; the CLI is a thin layer over these functions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .codec import codec
from .codec.image_io import load_image
from .codec.quality import DEFAULT_STRENGTH
from .errors import SalcodecError
from .models import registry
from .saliency.io import load_saliency_map

ImageLike = np.ndarray | Image.Image | str | Path
SaliencyLike = str | Path | np.ndarray | None


def predict_saliency(image: ImageLike, method: str = "auto") -> np.ndarray:
    """Float32 H×W map in [0, 1] of where people look."""
    from . import saliency
    return saliency.predict(load_image(image), method)


def resolve_saliency(pixels: np.ndarray, saliency: SaliencyLike) -> np.ndarray | None:
    """'none' → None (uniform map); 'auto' or a method name → a prediction; a path or an array → that map."""
    from . import saliency as sal
    if saliency is None or (isinstance(saliency, str) and saliency == "none"):
        return None
    if isinstance(saliency, str) and (saliency == "auto" or saliency in sal.METHODS):
        return sal.predict(pixels, saliency)
    if isinstance(saliency, (str, Path, np.ndarray)):
        return load_saliency_map(saliency, pixels.shape[:2])
    raise SalcodecError(f"saliency must be 'auto', 'none', a method, a map path or an array (got {type(saliency).__name__})")


def compress_image(image: ImageLike, quality: float = 50, saliency: SaliencyLike = "auto", strength: float = DEFAULT_STRENGTH,
                   bpp: float | None = None, model: str = registry.DEFAULT_MODEL, notes: list[str] | None = None,
                   encoder: str = "default") -> codec.Encoded:
    """Compress and return the container with its sizes and rate estimate."""
    if not 0 <= quality <= 100:
        raise SalcodecError(f"quality must be in 0-100 (got {quality})")
    pixels = load_image(image, notes)
    sal_map = resolve_saliency(pixels, saliency)
    if bpp is not None:
        return codec.encode_to_bpp(pixels, bpp, sal_map, strength, model, encoder=encoder)
    return codec.encode(pixels, quality, sal_map, strength, model, encoder)


def compress(image: ImageLike, quality: float = 50, saliency: SaliencyLike = "auto", strength: float = DEFAULT_STRENGTH,
             bpp: float | None = None, model: str = registry.DEFAULT_MODEL, encoder: str = "default") -> bytes:
    """Compress an image (uint8 H×W×3 array, PIL image or path) to `.sgc` bytes.

    quality: 0-100, higher is better; bpp: a target rate instead of a quality;
    saliency: 'auto', 'none', a method name, a map file (gray or RGBA alpha) or an H×W array in [0, 1];
    strength: how much quality drops where saliency is low, q = q0 − strength·(1 − s) (0 gives uniform coding);
    encoder: 'default' or 'fast' (a narrower encoder for the same decoder: quicker, slightly larger files).
    """
    return compress_image(image, quality, saliency, strength, bpp, model, encoder=encoder).data


def decompress(data: bytes, decoder: str = "mse") -> np.ndarray:
    """`.sgc` bytes to an H×W×3 uint8 RGB array. decoder: 'mse' (faithful), 'gan' (realistic
    texture at low rates) or 'fast' (narrower, quicker): the same file, read by a second decoder
    trained for the file's model."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SalcodecError("decompress expects bytes")
    return codec.decode(bytes(data), decoder=decoder)


def load_model(name: str = registry.DEFAULT_MODEL):
    """The shipped model `name`, in eval mode, with its entropy-coder tables built."""
    return registry.load_model(name)[0]
