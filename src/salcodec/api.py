"""The library API; the CLI is a thin layer over these functions."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import runtime
from .codec.encoded import Encoded
from .codec.image_io import load_image
from .codec.quality import DEFAULT_STRENGTH
from .errors import SalcodecError
from .models import DEFAULT_MODEL
from .saliency.io import load_saliency_map

ImageLike = np.ndarray | Image.Image | str | Path
SaliencyLike = str | Path | np.ndarray | None


def predict_saliency(image: ImageLike, method: str = "auto", engine: str = "auto") -> np.ndarray:
    """Float32 H×W map in [0, 1] of where people look."""
    return runtime.predict_saliency(load_image(image), method, engine)


def resolve_saliency(pixels: np.ndarray, saliency: SaliencyLike, engine: str = "auto") -> np.ndarray | None:
    """'none' → None (uniform map); 'auto' or a method name → a prediction; a path or an array → that map."""
    from . import saliency as sal
    if saliency is None or (isinstance(saliency, str) and saliency == "none"):
        return None
    if isinstance(saliency, str) and (saliency == "auto" or saliency in sal.METHODS):
        return runtime.predict_saliency(pixels, saliency, engine)
    if isinstance(saliency, (str, Path, np.ndarray)):
        return load_saliency_map(saliency, pixels.shape[:2])
    raise SalcodecError(f"saliency must be 'auto', 'none', a method, a map path or an array (got {type(saliency).__name__})")


def compress_image(image: ImageLike, quality: float = 50, saliency: SaliencyLike = "auto", strength: float = DEFAULT_STRENGTH,
                   bpp: float | None = None, model: str = DEFAULT_MODEL, notes: list[str] | None = None,
                   encoder: str = "default", engine: str = "auto", try_flips: bool = False,
                   refine: int = 0) -> Encoded:
    """Compress and return the container with its sizes and rate estimate."""
    if not 0 <= quality <= 100:
        raise SalcodecError(f"quality must be in 0-100 (got {quality})")
    pixels = load_image(image, notes)
    sal_map = resolve_saliency(pixels, saliency, engine)
    if bpp is not None:
        return runtime.encode_to_bpp(pixels, bpp, sal_map, strength, model, encoder, engine, try_flips, refine)
    return runtime.encode(pixels, quality, sal_map, strength, model, encoder, engine, try_flips, refine)


def compress(image: ImageLike, quality: float = 50, saliency: SaliencyLike = "auto", strength: float = DEFAULT_STRENGTH,
             bpp: float | None = None, model: str = DEFAULT_MODEL, encoder: str = "default", engine: str = "auto",
             try_flips: bool = False, refine: int = 0) -> bytes:
    """Compress an image (uint8 H×W×3 array, PIL image or path) to `.sgc` bytes.

    quality: 0-100, higher is better; bpp: a target rate instead of a quality;
    saliency: 'auto', 'none', a method name, a map file (gray or RGBA alpha) or an H×W array in [0, 1];
    strength: how much quality drops where saliency is low, q = q0 − strength·(1 − s) (0 gives uniform coding);
    encoder: 'default' or 'fast' (a narrower encoder for the same decoder: quicker, slightly larger files);
    engine: 'auto', 'onnx' (no torch: faster to start) or 'torch' (the reference; see salcodec.runtime);
    try_flips: also code the image flipped top-bottom, left-right and both, and keep the file with the
    lowest bpp + λ·MSE (about 1.4 % smaller at equal PSNR on Kodak, for four times the encoding work);
    refine: > 0 searches that many steps for better latents of this image and keeps the plain file
    where that costs less (torch engine, images up to 1024×768 pixels; 0.6–2.2 s a step for 768×512
    on two cores; 40, the CLI's --refine, makes files 1.6 % (BSDS500 test) to 4.3 % (Kodak) smaller
    at equal PSNR, larger and better at equal quality).
    """
    return compress_image(image, quality, saliency, strength, bpp, model, encoder=encoder, engine=engine,
                          try_flips=try_flips, refine=refine).data


def decompress(data: bytes, decoder: str = "mse", engine: str = "auto") -> np.ndarray:
    """`.sgc` bytes to an H×W×3 uint8 RGB array. decoder: 'mse' (faithful), 'gan' (realistic
    texture at low rates) or 'fast' (narrower, quicker): the same file, read by a second decoder
    trained for the file's model. engine: as for `compress`."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SalcodecError("decompress expects bytes")
    return runtime.decode(bytes(data), decoder, engine)


def load_model(name: str = DEFAULT_MODEL):
    """The shipped model `name`, in eval mode, with its entropy-coder tables built."""
    from .models import registry
    return registry.load_model(name)[0]
