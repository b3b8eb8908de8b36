"""A stand-in for the `compressai` package object, so that its submodules import alone.

`compressai/__init__.py` imports every CompressAI subpackage, data sets included, which pulls in
torchvision and torch_geometric and costs about 2 s on a 2-core machine: more than salcodec
needs to code an image. A light package object stands in for it, so only the submodules asked
for load (the entropy models, GDN, the compiled rANS coder). If the full package was imported
first, it is used as it is.
"""
from __future__ import annotations

import importlib.util
import sys
import types


def install_light_package() -> None:
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
