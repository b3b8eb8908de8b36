"""Reading images and saliency maps from users, and writing files without ever leaving a partial one."""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from ..errors import SalcodecError

MAX_INPUT_PIXELS = 200_000_000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
Image.MAX_IMAGE_PIXELS = MAX_INPUT_PIXELS


def open_image(path: Path, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Open and fully decode an image, refusing one whose header claims more than `max_pixels`."""
    try:
        img = Image.open(path)
        if img.width * img.height > max_pixels:
            raise SalcodecError(f"{path}: image is {img.width}x{img.height}, over the limit of {max_pixels} pixels")
        img.load()
        return img
    except SalcodecError:
        raise
    except FileNotFoundError:
        raise SalcodecError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise SalcodecError(f"is a directory, not an image: {path}") from None
    except Image.DecompressionBombError:
        raise SalcodecError(f"{path}: image is larger than {MAX_INPUT_PIXELS} pixels") from None
    except Exception as exc:  # Pillow's decoders raise many types on damaged data
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SalcodecError(f"{path}: cannot read image ({reason})") from None


def to_srgb(img: Image.Image, notes: list[str]) -> Image.Image:
    """The image's colours in sRGB when it carries another ICC profile (Display P3 from phones,
    Adobe RGB from cameras, a CMYK print profile): the codec and its decoded PNGs are sRGB, and
    values read as sRGB without conversion would shift every colour. sRGB-tagged and untagged
    images pass unchanged; a profile littleCMS cannot use is ignored, with a note."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "P", "PA", "CMYK", "L", "LA"):
        return img
    from PIL import ImageCms  # littleCMS: loaded only for tagged images
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = ImageCms.getProfileDescription(source).strip() or "unnamed"
    except (OSError, ImageCms.PyCMSError):
        notes.append("ignored an unreadable ICC profile (colours read as sRGB)")
        return img
    if "srgb" in name.lower():
        return img
    if img.mode in ("RGBA", "PA", "LA") or (img.mode == "P" and "transparency" in img.info):
        notes.append("dropped the alpha channel (transparency is not coded)")
    base = img.convert("L" if img.mode == "LA" else "RGB") if img.mode in ("RGBA", "P", "PA", "LA") else img
    try:
        converted = ImageCms.profileToProfile(base, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ImageCms.PyCMSError) as exc:
        notes.append(f"ignored the ICC profile '{name}' ({str(exc).splitlines()[0] if str(exc) else 'unusable'}; colours read as sRGB)")
        return img
    notes.append(f"converted colours from the ICC profile '{name}' to sRGB")
    return converted


def to_rgb_array(img: Image.Image, notes: list[str] | None = None) -> np.ndarray:
    """Any Pillow image to H×W×3 uint8 sRGB, honouring EXIF orientation and ICC profiles;
    conversions are noted."""
    notes = notes if notes is not None else []
    img = to_srgb(ImageOps.exif_transpose(img), notes)
    if img.width == 0 or img.height == 0:
        raise SalcodecError("image has zero pixels")
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        peak = 65535.0 if arr.max() > 255 or mode.startswith("I;16") else 255.0
        notes.append(f"converted {mode} ({'16-bit' if peak > 255 else 'integer'}) grayscale to 8-bit RGB")
        arr = np.clip(np.round(arr / peak * 255), 0, 255).astype(np.uint8)
        return np.repeat(arr[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        notes.append("dropped the alpha channel (transparency is not coded)")
    elif mode in ("L", "1"):
        notes.append("converted grayscale to RGB")
    elif mode == "CMYK":
        notes.append("converted CMYK to RGB")
    elif mode not in ("RGB", "P"):
        notes.append(f"converted {mode} to RGB")
    if mode == "RGBa":
        img = img.convert("RGBA")
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(source, notes: list[str] | None = None, max_pixels: int = MAX_INPUT_PIXELS) -> np.ndarray:
    """A path, a PIL image or an array to H×W×3 uint8 RGB."""
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise SalcodecError(f"image array must be H×W×3 (got shape {source.shape})")
        if arr.dtype != np.uint8:
            raise SalcodecError(f"image array must be uint8 (got {arr.dtype})")
        return np.ascontiguousarray(arr[:, :, :3])
    img = source if isinstance(source, Image.Image) else open_image(Path(source), max_pixels)
    try:
        return to_rgb_array(img, notes)
    except SalcodecError:
        raise
    except Exception as exc:  # damaged metadata (EXIF) or pixel data Pillow could not convert
        raise SalcodecError(f"cannot convert image to RGB ({type(exc).__name__}: {exc})") from None


def atomic_write(path: Path, data: bytes, force: bool = False) -> None:
    """Write to a temporary file beside `path`, then rename: readers never see a partial file."""
    path = Path(path)
    if path.exists() and not force:
        raise SalcodecError(f"{path} exists (use --force to overwrite)")
    if not path.parent.is_dir():
        raise SalcodecError(f"output folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def encode_png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
