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


_light_package()

from compressai.entropy_models import EntropyBottleneck, GaussianConditional  # noqa: E402
from compressai.layers import GDN  # noqa: E402

__all__ = ["EntropyBottleneck", "GaussianConditional", "GDN"]
