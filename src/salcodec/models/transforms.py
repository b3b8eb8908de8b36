"""Second transforms: other decoders and encoders for the same `.sgc` files of a model.

A file made by a default-family model can be decoded by the model's own synthesis (`mse`:
faithful), by a GAN decoder (`gan`: realistic texture at low rates, generative.py) or by a fast
decoder (`fast`: a narrower synthesis, distilled on the frozen model's latents, for speed).
Symmetrically it can be written by the model's own analysis (`default`) or by a fast encoder
(`fast`: a narrower g_a trained against the frozen entropy model and decoder). The entropy model
is shared and frozen, so a second transform costs no bits and needs no other file format.

Each is stored in a weights folder as `<kind>/<base id>.pt` (decoders) or
`<kind>-encoder/<base id>.pt` (encoders): fp16 weights (their shapes give the widths) and the id
and digest of the model they were trained for, so they cannot be paired with other weights.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import SalcodecError
from . import DECODERS, ENCODERS, transform_file  # noqa: F401  (re-exported)
from .hyperprior import AnalysisTransform, SynthesisTransform

# the parameters and buffers of QualityMapHyperprior.synthesis / .analysis: what a second transform replaces
SYNTHESIS_PREFIXES = ("g_s.", "g_s_igdn.", "g_s_mod.", "inverse_gain")
ANALYSIS_PREFIXES = ("quality_pyramid.", "g_a.", "g_a_gdn.", "g_a_sft.", "h_a.", "h_a_sft.", "gain")


def synthesis_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(SYNTHESIS_PREFIXES)}


def analysis_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(ANALYSIS_PREFIXES)}


def _export(module: nn.Module, state: dict[str, torch.Tensor], kind: str, role: str, base_id: str,
            base_digest: bytes, path: Path, meta: dict | None) -> None:
    params = {name for name, _ in module.named_parameters()}
    state = {k: (v.half() if k in params else v) for k, v in state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": f"{kind}-{role}", "base_model": base_id, "base_digest": base_digest.hex(),
                "state_dict": state, "meta": meta or {}}, path)


def export_decoder(synthesis: nn.Module, kind: str, base_id: str, base_digest: bytes, path: Path,
                   meta: dict | None = None) -> None:
    """fp16 weights of a synthesis (a `SynthesisTransform`, or a model whose g_s was fine-tuned)."""
    _export(synthesis, synthesis_state(synthesis), kind, "decoder", base_id, base_digest, path, meta)


def export_encoder(analysis: AnalysisTransform, kind: str, base_id: str, base_digest: bytes, path: Path,
                   meta: dict | None = None) -> None:
    """fp16 weights of an analysis (g_a and h_a)."""
    _export(analysis, analysis_state(analysis), kind, "encoder", base_id, base_digest, path, meta)


def _find(base_id: str, kind: str, role: str, choices: tuple[str, ...]) -> Path:
    if kind not in choices[1:]:
        raise SalcodecError(f"unknown second {role} '{kind}' (choose from {', '.join(choices[1:])})")
    path = transform_file(base_id, kind, role)
    if path is None:
        raise SalcodecError(f"no {kind} {role} is installed for model '{base_id}' (use --{role} {choices[0]})")
    return path


def load_decoder(base_id: str, kind: str) -> SynthesisTransform:
    """The `kind` decoder trained for model `base_id` (cached per file)."""
    path = _find(base_id, kind, "decoder", DECODERS)
    return _load_cached(base_id, kind, "decoder", path.resolve(), path.stat().st_mtime_ns)


def load_encoder(base_id: str, kind: str) -> AnalysisTransform:
    """The `kind` encoder trained for model `base_id` (cached per file)."""
    path = _find(base_id, kind, "encoder", ENCODERS)
    return _load_cached(base_id, kind, "encoder", path.resolve(), path.stat().st_mtime_ns)


ENTROPY_PARAMETER_PREFIXES = ("h_s.", "channel_context.", "spatial_context.")  # what predicts y's scales and means


def _outside_entropy_parameters(model: nn.Module) -> bytes:
    """Digest of a model's weights but h_s and the contexts: what its second transforms depend on."""
    from .registry import weights_digest
    return weights_digest({k: v for k, v in model.state_dict().items() if not k.startswith(ENTROPY_PARAMETER_PREFIXES)})


@lru_cache(maxsize=4)
def _load_cached(base_id: str, kind: str, role: str, path: Path, mtime_ns: int) -> nn.Module:
    from .registry import load_model
    base, base_digest = load_model(base_id)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("kind") != f"{kind}-{role}":
            raise KeyError("kind")
        trained_on, owner_id = bytes.fromhex(blob["base_digest"]), blob["base_model"]
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
        if role == "decoder":
            transform = SynthesisTransform(base.M, tuple(int(state[f"g_s.{i}.bias"].numel()) for i in range(3)))
        else:
            widths = tuple(int(state[f"g_a.{i}.bias"].numel()) for i in range(3))
            transform = AnalysisTransform(base.M, base.N, widths, int(state["quality_pyramid.downs.0.0.bias"].numel()))
    except (OSError, KeyError, ValueError, RuntimeError, EOFError) as exc:
        raise SalcodecError(f"cannot load {kind} {role} {path}: {exc}") from None
    owner, owner_digest = (base, base_digest) if owner_id == base_id else load_model(owner_id)
    if trained_on != owner_digest:
        raise SalcodecError(f"{kind} {role} {path} was trained for other weights of '{owner_id}' "
                            f"(digest {trained_on.hex()}, installed {owner_digest.hex()})")
    if owner is not base and _outside_entropy_parameters(owner) != _outside_entropy_parameters(base):
        raise SalcodecError(f"{kind} {role} {path} of '{owner_id}' does not fit model '{base_id}': "
                            "their weights differ outside the hyper-synthesis and contexts")
    if not getattr(base, "variable_rate", False) or set(state) != set(transform.state_dict()):
        raise SalcodecError(f"{kind} {role} {path} does not fit model '{base_id}'")
    transform.load_state_dict(state)
    return transform.eval()
