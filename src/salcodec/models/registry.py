"""Model families by name, and the shipped models by id.

A shipped model is a weights-only file in `models/weights/<id>.pt` holding the hyper-parameters
it was built with, so the file alone rebuilds the model.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import SalcodecError
from . import DEFAULT_MODEL, MODEL_PATH_ENV, WEIGHTS_DIR, model_file, weights_dirs  # noqa: F401  (re-exported)
from .layers import load_state_resizing_buffers


def build_model(family: str, **kwargs) -> nn.Module:
    if family == "quality-map-hyperprior":
        from .hyperprior import QualityMapHyperprior
        return QualityMapHyperprior(**kwargs)
    if family == "bls2017":
        from .bls2017 import FactorizedPrior
        return FactorizedPrior(**kwargs)
    if family == "gan-extreme":
        from .extreme import ExtremeGAN
        return ExtremeGAN(**kwargs)
    raise SalcodecError(f"unknown model family '{family}'")


def shipped_models() -> list[str]:
    return sorted({p.stem for d in weights_dirs() for p in d.glob("*.pt")})


def half_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state with its learned parameters in fp16, as weights files store them.

    Buffers stay as they are: they hold constants such as the likelihood lower bound (1e-9)
    and GDN's pedestal (2^-36), which fp16 would flush to zero.
    """
    params = {name for name, _ in model.named_parameters()}
    return {k: (v.half() if k in params else v) for k, v in model.state_dict().items()}


def export_weights(model: nn.Module, family: str, hparams: dict, path: Path, meta: dict | None = None) -> None:
    """Weights-only fp16 file with the entropy-coder tables built from the fp16 weights.

    The tables are integers stored in the file, so every machine codes with the same ones.
    """
    model.load_state_dict({k: v.float() if v.dtype == torch.float16 else v for k, v in half_parameters(model).items()})
    model.update_entropy_tables()
    state = half_parameters(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"family": family, "hparams": hparams, "state_dict": state, "meta": meta or {}}, path)


def load_weights_file(path: Path) -> tuple[nn.Module, str]:
    """Rebuild a model from a weights file; returns (model in eval mode, digest of the file's weights)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        model = build_model(blob["family"], **blob["hparams"])
    except (OSError, KeyError, RuntimeError, EOFError) as exc:
        raise SalcodecError(f"cannot load model weights {path}: {exc}") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    try:
        load_state_resizing_buffers(model, state, assign=True)  # `state` is ours alone: no copy
    except RuntimeError as exc:
        raise SalcodecError(f"weights file {path} does not fit its model: {str(exc).splitlines()[0]}") from None
    if not model.entropy_tables_ready():
        raise SalcodecError(f"weights file {path} has no entropy-coder tables (export it with export_weights)")
    model.eval()
    return model, weights_digest(state)


def weights_digest(state: dict[str, torch.Tensor]) -> bytes:
    """8-byte digest of every tensor the decoder could depend on, in a fixed order."""
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.digest()[:8]


def load_model(name: str = DEFAULT_MODEL) -> tuple[nn.Module, bytes]:
    """The model `name` from the first weights folder that has it (cached per file)."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise SalcodecError(f"invalid model id {name!r}")
    path = model_file(name)
    if path is not None:
        return _load_cached(path.resolve(), path.stat().st_mtime_ns)
    available = ", ".join(shipped_models()) or "none"
    raise SalcodecError(f"unknown model '{name}' (available: {available})")


@lru_cache(maxsize=4)
def _load_cached(path: Path, mtime_ns: int) -> tuple[nn.Module, bytes]:
    return load_weights_file(path)
