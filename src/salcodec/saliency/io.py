"""Saliency map files: 8-bit grayscale PNGs, or RGBA PNGs whose alpha channel is the map (the seed's storage)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from ..codec.image_io import open_image
from ..errors import SalcodecError


def load_saliency_map(source, shape: tuple[int, int]) -> np.ndarray:
    """A saliency map from a gray PNG, the alpha channel of an RGBA PNG, or an array; resized to `shape`."""
    if isinstance(source, np.ndarray):
        arr = source.astype(np.float32)
        if arr.ndim != 2:
            raise SalcodecError(f"saliency array must be H×W (got shape {source.shape})")
        if not np.isfinite(arr).all():
            raise SalcodecError("saliency array contains NaN or infinity")
        arr = np.clip(arr, 0, 1)
    else:
        img = open_image(Path(source))
        if img.mode in ("RGBA", "LA"):
            img = img.getchannel("A")
        elif img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            raw = np.asarray(img).astype(np.float32)
            img = Image.fromarray((raw / max(float(raw.max()), 1.0)).astype(np.float32))
        else:
            img = img.convert("L")
        arr = np.asarray(img, dtype=np.float32)
        arr = arr / 255.0 if img.mode == "L" else arr
    if arr.shape != shape:
        arr = np.asarray(Image.fromarray(arr.astype(np.float32)).resize((shape[1], shape[0]), Image.BILINEAR))
    return np.clip(arr, 0, 1).astype(np.float32)


def encode_map_png(saliency: np.ndarray, image: np.ndarray | None = None, fmt: str = "gray") -> bytes:
    """PNG bytes of a map: 'gray' (8-bit L) or 'alpha' (the image's RGB with the map as alpha)."""
    levels = np.clip(np.round(saliency * 255), 0, 255).astype(np.uint8)
    if fmt == "gray":
        img = Image.fromarray(levels)  # 2-D uint8: mode L
    elif fmt == "alpha":
        if image is None or image.shape[:2] != levels.shape:
            raise SalcodecError("an alpha-format map needs the image of the same size")
        img = Image.fromarray(np.dstack([image, levels]))
    else:
        raise SalcodecError(f"unknown map format '{fmt}' (gray or alpha)")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
