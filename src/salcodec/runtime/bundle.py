"""A model's coding bundle: its transforms as ONNX graphs and its coding tables as arrays.

Each part is built once per weights file, with torch and onnx (export.py), into a cache folder,
and read afterwards without torch. A part's file name carries a hash of the weights files it was
built from (and the bundle version), so new weights never meet a stale part. Parts are written
to a temporary name and renamed into place, so a crash or a concurrent build leaves no half file.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

CACHE_ENV = "SALCODEC_CACHE"
BUNDLE_VERSION = 4  # raise when a part's contents change (2: synthesis phases without zero taps; 3: tiling in the
# tables; 4: squares as products)


class NotSupported(Exception):
    """The onnx engine does not handle this model, transform or image (the torch engine does)."""


def cache_dir() -> Path:
    """$SALCODEC_CACHE, else $XDG_CACHE_HOME/salcodec, else ~/.cache/salcodec."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "salcodec"


@lru_cache(maxsize=16)
def _file_hash(path: Path, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def part_path(role: str, sources: list[Path], suffix: str) -> Path:
    """Where the part `role` built from the weights files `sources` lives in the cache."""
    h = hashlib.sha256(f"v{BUNDLE_VERSION}".encode())
    for src in sources:
        st = src.stat()
        h.update(_file_hash(src.resolve(), st.st_mtime_ns, st.st_size).encode())
    return cache_dir() / f"{role}-{h.hexdigest()[:20]}{suffix}"


def ensure_part(role: str, sources: list[Path], suffix: str, build: Callable[[Path], None]) -> Path:
    """The cached part, built by `build(tmp_path)` on first use."""
    path = part_path(role, sources, suffix)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{role}-", suffix=suffix, dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise NotSupported(f"cache folder {path.parent} is not writable ({exc.strerror})") from None
    try:
        build(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
