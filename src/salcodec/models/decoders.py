"""Second decoders: other synthesis transforms that read the latents of the same `.sgc` file.

A file made by a default-family model can be decoded by the model's own synthesis (`mse`:
faithful), by a GAN decoder (`gan`: realistic texture at low rates, generative.py) or by a fast
decoder (`fast`: a narrower synthesis, distilled on the frozen model's latents, for speed). The
encoder and entropy model are shared and frozen, so a second decoder costs no bits and needs no
other file format. Each is stored as `<kind>/<base id>.pt` in a weights folder: fp16 synthesis
weights (their shapes give the width) and the id and digest of the model whose latents they were trained on, so
they cannot be paired with other weights.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import SalcodecError
from .hyperprior import SynthesisTransform

DECODERS = ("mse", "gan", "fast")
# the parameters and buffers of QualityMapHyperprior.synthesis: what a second decoder replaces
SYNTHESIS_PREFIXES = ("g_s.", "g_s_igdn.", "g_s_mod.", "inverse_gain")


def synthesis_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(SYNTHESIS_PREFIXES)}


def export_decoder(synthesis: nn.Module, kind: str, base_id: str, base_digest: bytes, path: Path,
                   meta: dict | None = None) -> None:
    """fp16 weights of a synthesis (a `SynthesisTransform`, or a model whose g_s was fine-tuned)."""
    params = {name for name, _ in synthesis.named_parameters()}
    state = {k: (v.half() if k in params else v) for k, v in synthesis_state(synthesis).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": f"{kind}-decoder", "base_model": base_id, "base_digest": base_digest.hex(),
                "state_dict": state, "meta": meta or {}}, path)


def decoder_path(base_id: str, kind: str) -> Path | None:
    """`<kind>/<base id>.pt` in the first weights folder that has it."""
    from .registry import weights_dirs
    for folder in weights_dirs():
        path = folder / kind / f"{base_id}.pt"
        if path.is_file():
            return path
    return None


def load_decoder(base_id: str, kind: str) -> SynthesisTransform:
    """The `kind` decoder trained for model `base_id` (cached per file)."""
    if kind not in DECODERS or kind == "mse":
        raise SalcodecError(f"unknown second decoder '{kind}' (choose from {', '.join(DECODERS[1:])})")
    path = decoder_path(base_id, kind)
    if path is None:
        raise SalcodecError(f"no {kind} decoder is installed for model '{base_id}' (use --decoder mse)")
    return _load_cached(base_id, kind, path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=4)
def _load_cached(base_id: str, kind: str, path: Path, mtime_ns: int) -> SynthesisTransform:
    from .registry import load_model
    base, digest = load_model(base_id)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("kind") != f"{kind}-decoder":
            raise KeyError("kind")
        trained_on = bytes.fromhex(blob["base_digest"])
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
        width = int(state["g_s.0.bias"].numel())
    except (OSError, KeyError, ValueError, RuntimeError, EOFError) as exc:
        raise SalcodecError(f"cannot load {kind} decoder {path}: {exc}") from None
    if trained_on != digest:
        raise SalcodecError(f"{kind} decoder {path} was trained for other weights of '{base_id}' "
                            f"(digest {trained_on.hex()}, installed {digest.hex()})")
    synthesis = SynthesisTransform(base.M, width)
    if not getattr(base, "variable_rate", False) or set(state) != set(synthesis.state_dict()):
        raise SalcodecError(f"{kind} decoder {path} does not fit model '{base_id}'")
    synthesis.load_state_dict(state)
    return synthesis.eval()
