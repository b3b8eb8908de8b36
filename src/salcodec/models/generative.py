"""Generative decoding for the default codec (HiFiC-style, Mentzer et al. 2020).

The same `.sgc` file decodes two ways. The MSE decoder is the model's own synthesis transform:
faithful, and blurry at low rates. The GAN decoder is a second synthesis transform of the same
architecture, fine-tuned from the first with a conditional discriminator while the encoder and
entropy model stay frozen, so it reads exactly the latents the file holds and restores texture
the rate could not pay for. Its file holds only the synthesis weights, together with the id and
digest of the model whose latents it was trained on: it cannot be paired with other weights.
"""
from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import SalcodecError

# the parameters and buffers of QualityMapHyperprior.synthesis: what a GAN decoder replaces
SYNTHESIS_PREFIXES = ("g_s.", "g_s_igdn.", "g_s_mod.", "inverse_gain")
DECODERS = ("mse", "gan")
HIGH_PASS_GAIN = 8.0  # texture residuals are a few percent of the range: bring them to about ±1


def synthesis_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if k.startswith(SYNTHESIS_PREFIXES)}


class ConditionalPatchDiscriminator(nn.Module):
    """Real or generated, judged per patch (about 46 px wide), given the decoded latents.

    Conditioning on y_hat (as HiFiC does) asks "is this a plausible image *for these latents*",
    so the generator cannot win by drawing texture that the latents contradict. Besides the
    image, the discriminator sees its high-pass residual, amplified: what separates a decoded
    image from a photo is mostly fine texture of small amplitude, and with the plain image alone
    a discriminator was still at chance after hundreds of steps (too slow for CPU budgets).
    """

    def __init__(self, latent_channels: int, width: int = 64, latent_features: int = 12):
        super().__init__()
        self.latent = nn.Sequential(nn.Conv2d(latent_channels, latent_features, 1), nn.LeakyReLU(0.2),
                                    nn.Upsample(scale_factor=16, mode="nearest"))
        widths = [6 + latent_features, width, 2 * width, 4 * width]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)) for a, b in zip(widths, widths[1:]))
        self.head = nn.Conv2d(widths[-1], 1, 3, 1, 1)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Patch logits and the intermediate features (for feature matching)."""
        blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        h = torch.cat([x * 2 - 1, HIGH_PASS_GAIN * (x - blurred), self.latent(y_hat)], 1)
        features = []
        for block in self.blocks:
            h = block(h)
            features.append(h)
        return self.head(h), features


def export_gan_decoder(generator: nn.Module, base_id: str, base_digest: bytes, path: Path, meta: dict | None = None) -> None:
    """fp16 synthesis weights of a fine-tuned copy of the base model, tied to the base's digest."""
    params = {name for name, _ in generator.named_parameters()}
    state = {k: (v.half() if k in params else v) for k, v in synthesis_state(generator).items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"kind": "gan-decoder", "base_model": base_id, "base_digest": base_digest.hex(),
                "state_dict": state, "meta": meta or {}}, path)


def gan_decoder_path(base_id: str) -> Path | None:
    """`gan/<base id>.pt` in the first weights folder that has it."""
    from .registry import weights_dirs
    for folder in weights_dirs():
        path = folder / "gan" / f"{base_id}.pt"
        if path.is_file():
            return path
    return None


def load_gan_decoder(base_id: str) -> nn.Module:
    """The base model with its synthesis replaced by the GAN decoder's (cached per file)."""
    path = gan_decoder_path(base_id)
    if path is None:
        raise SalcodecError(f"no GAN decoder is installed for model '{base_id}' (use --decoder mse)")
    return _load_cached(base_id, path.resolve(), path.stat().st_mtime_ns)


@lru_cache(maxsize=2)
def _load_cached(base_id: str, path: Path, mtime_ns: int) -> nn.Module:
    from .registry import load_model
    base, digest = load_model(base_id)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("kind") != "gan-decoder":
            raise KeyError("kind")
        trained_on = bytes.fromhex(blob["base_digest"])
        state = {k: (v.float() if v.is_floating_point() else v) for k, v in blob["state_dict"].items()}
    except (OSError, KeyError, ValueError, RuntimeError, EOFError) as exc:
        raise SalcodecError(f"cannot load GAN decoder {path}: {exc}") from None
    if trained_on != digest:
        raise SalcodecError(f"GAN decoder {path} was trained for other weights of '{base_id}' "
                            f"(digest {trained_on.hex()}, installed {digest.hex()})")
    if set(state) != set(synthesis_state(base)):
        raise SalcodecError(f"GAN decoder {path} does not fit model '{base_id}'")
    generator = copy.deepcopy(base)
    generator.load_state_dict(state, strict=False)
    return generator.eval()
