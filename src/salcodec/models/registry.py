"""Model families by name, and the shipped models by id.

A shipped model is a weights-only file in `models/weights/<id>.pt` holding the hyper-parameters
it was built with, so the file alone rebuilds the model. A model that keeps most of another's
weights (a retrained entropy model on the same transforms) may store only what differs and
name that base model: loading it needs the base's weights file too, checked by digest.
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


def export_weights(model: nn.Module, family: str, hparams: dict, path: Path, meta: dict | None = None,
                   base: str | None = None) -> None:
    """Weights-only fp16 file with the entropy-coder tables built from the fp16 weights.

    The tables are integers stored in the file, so every machine codes with the same ones. With
    `base` (a model id), tensors equal to that model's are left out and the file names it.
    """
    model.load_state_dict({k: v.float() if v.dtype == torch.float16 else v for k, v in half_parameters(model).items()})
    model.update_entropy_tables()
    state = half_parameters(model)
    blob = {"family": family, "hparams": hparams, "meta": meta or {}}
    if base is not None:
        base_model, base_digest = load_model(base)
        state = differences(state, half_parameters(base_model))
        blob.update(base_model=base, base_digest=base_digest.hex())
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob | {"state_dict": state}, path)


def differences(state: dict[str, torch.Tensor], base_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of `state` that `base_state` lacks or holds with other values."""
    return {k: v for k, v in state.items()
            if k not in base_state or base_state[k].shape != v.shape or not torch.equal(base_state[k], v)}


def _base_state(blob: dict, path: Path) -> dict[str, torch.Tensor]:
    """The weights a file stores only the differences from (none for a whole model)."""
    if "base_model" not in blob:
        return {}
    base_id = blob["base_model"]
    base_path = model_file(base_id)
    if base_path is None:
        raise SalcodecError(f"weights file {path} builds on model '{base_id}', which is not installed")
    base, digest = _load_cached(base_path.resolve(), base_path.stat().st_mtime_ns)
    if digest.hex() != blob["base_digest"]:
        raise SalcodecError(f"weights file {path} builds on other weights of model '{base_id}' "
                            f"(digest {blob['base_digest']}, installed {digest.hex()})")
    return {k: v.clone() for k, v in base.state_dict().items()}  # ours to assign: the base model keeps its own


def stored_weights(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """A weights file's contents and its whole state in float32 (a base's tensors included)."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(blob, dict):
            raise KeyError("state_dict")
        state = _base_state(blob, path) | blob["state_dict"]
    except (OSError, KeyError, RuntimeError, EOFError) as exc:
        raise SalcodecError(f"cannot load model weights {path}: {exc}") from None
    return blob, {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def load_weights_file(path: Path) -> tuple[nn.Module, str]:
    """Rebuild a model from a weights file; returns (model in eval mode, digest of the file's weights)."""
    blob, state = stored_weights(path)
    try:
        model = build_model(blob["family"], **blob["hparams"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise SalcodecError(f"cannot load model weights {path}: {exc}") from None
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
