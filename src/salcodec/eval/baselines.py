"""Classic codecs at a quality setting: JPEG (Pillow, optimize), WebP (method 6), AVIF (speed 6), JPEG XL."""
from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image


def _jpeg(image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, optimize=True)
    data = buf.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _webp(image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    import imagecodecs
    data = imagecodecs.webp_encode(image, level=quality, lossless=False, method=6)
    return data, imagecodecs.webp_decode(data)[:, :, :3]


def _avif(image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    import imagecodecs
    data = imagecodecs.avif_encode(image, level=quality, speed=6)
    return data, imagecodecs.avif_decode(data)[:, :, :3]


def _jxl(image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    import imagecodecs
    data = imagecodecs.jpegxl_encode(image, level=quality, effort=7)
    return data, imagecodecs.jpegxl_decode(data)[:, :, :3]


CODECS: dict[str, Callable[[np.ndarray, int], tuple[bytes, np.ndarray]]] = {
    "jpeg": _jpeg, "webp": _webp, "avif": _avif, "jxl": _jxl,
}

# quality ladders spanning about 0.1-2 bpp on Kodak
LADDERS: dict[str, list[int]] = {
    "jpeg": [2, 5, 10, 20, 30, 45, 60, 75, 85, 92],
    "webp": [1, 5, 15, 30, 50, 70, 82, 90, 95],
    "avif": [5, 15, 25, 35, 45, 55, 65, 75, 85],
    "jxl": [5, 15, 30, 45, 60, 75, 85, 92],
}


def run_codec(name: str, image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """Encode and decode one image; returns (file bytes, decoded uint8 RGB)."""
    return CODECS[name](image, quality)
