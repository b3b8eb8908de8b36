"""salcodec: a learned image codec that spends its bits where people look.

    >>> import salcodec
    >>> data = salcodec.compress("photo.png", quality=50, saliency="auto")
    >>> pixels = salcodec.decompress(data)      # H×W×3 uint8
"""
from __future__ import annotations

import warnings

# compressai decorates functions with torch.jit.script at import; torch now warns about that on every run
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)

from .errors import SalcodecError

__all__ = ["compress", "decompress", "load_model", "predict_saliency", "SalcodecError"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """The API functions load on first use, so `salcodec --help` and `salcodec info` start without torch."""
    if name in ("compress", "decompress", "load_model", "predict_saliency"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'salcodec' has no attribute '{name}'")
