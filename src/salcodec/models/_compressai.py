"""CompressAI's entropy models and GDN, imported without running `compressai/__init__.py`.

That file imports every CompressAI subpackage, data sets included, which pulls in torchvision
and torch_geometric and costs about 2 s on a 2-core machine: more than salcodec needs to code
an image. A light package object stands in for it, so only the submodules used here load. If
the full package was imported first, it is used as it is.
"""
from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager


def _light_package() -> None:
    if "compressai" in sys.modules:
        return
    spec = importlib.util.find_spec("compressai")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("compressai is not installed")
    package = types.ModuleType("compressai")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    package.__file__ = spec.origin
    # the two functions compressai.entropy_models asks the package for
    package.get_entropy_coder = lambda: "ans"
    package.available_entropy_coders = lambda: ["ans"]
    sys.modules["compressai"] = package


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


_light_package()
with _scipy_stats_deferred():
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402
from compressai.layers import GDN  # noqa: E402

__all__ = ["EntropyBottleneck", "GaussianConditional", "GDN"]
