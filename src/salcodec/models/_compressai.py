"""CompressAI's entropy models, rANS coder and GDN, imported without running `compressai/__init__.py`
(see _compressai_light.py for why).
"""
from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager

from .._compressai_light import install_light_package


@contextmanager
def _scipy_stats_deferred() -> Iterator[None]:
    """compressai.entropy_models imports scipy.stats (about 0.6 s) at the top for one call that
    runs only when coding tables are rebuilt, and shipped weights carry their tables. While it
    imports, a placeholder stands in for scipy.stats; afterwards the placeholder is gone, so
    `scipy.stats` there, or anywhere, is the real module, imported on first use by scipy's own
    lazy submodule loading."""
    if "scipy.stats" in sys.modules or importlib.util.find_spec("scipy") is None:
        yield
        return
    import scipy
    sys.modules["scipy.stats"] = types.ModuleType("scipy.stats")
    try:
        yield
    finally:
        del sys.modules["scipy.stats"]
        scipy.__dict__.pop("stats", None)


install_light_package()
with _scipy_stats_deferred():
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402
from compressai.ans import BufferedRansEncoder, RansDecoder  # noqa: E402
from compressai.layers import GDN  # noqa: E402

__all__ = ["BufferedRansEncoder", "EntropyBottleneck", "GaussianConditional", "GDN", "RansDecoder"]
