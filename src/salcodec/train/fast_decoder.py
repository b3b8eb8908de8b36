"""`salcodec train` for a fast decoder: a narrower synthesis for the files of a shipped model.

Decoding time is almost all synthesis, and the synthesis' cost grows with the square of its
width. A fast decoder is a `SynthesisTransform` of smaller width trained, like the GAN decoder,
on the latents the frozen model gives training crops (the latent cache, gan.py): the encoder and
entropy model do not change, so files stay the same and either decoder reads them. The loss is
the MSE to the original crop, the decoder's true task; crops are coded over the whole q0 range
with random quality maps, as files are. It starts from the model's own synthesis narrowed to the
channels that carry most weight (narrowing.py). The train/held-out monitor runs as for the GAN
decoder, against the wide decoder's scores on the same crops (`monitor_base.json`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..models.hyperprior import SynthesisTransform
from ..models.transforms import export_decoder
from .gan import frozen_base, latent_cache, latent_function, monitor_for, run_monitored_training
from .narrowing import copy_narrowed_layers


@torch.no_grad()
def narrowed_synthesis(model: torch.nn.Module, widths: int | tuple[int, int, int]) -> SynthesisTransform:
    """The model's synthesis with hidden layers `widths` wide, from its most-read channels (narrowing.py)."""
    narrow = SynthesisTransform(model.M, widths)
    narrow.inverse_gain.copy_(model.inverse_gain)
    copy_narrowed_layers(model.g_s, narrow.g_s, model.g_s_igdn, narrow.g_s_igdn, model.g_s_mod, narrow.g_s_mod)
    return narrow


def train_fast_decoder(cfg: dict, max_steps: int | None = None) -> Path:
    """Train (or resume) the fast decoder a config describes; exports `<out_dir>/fast/<base>.pt`."""
    from .loop import learning_rate

    tcfg, mcfg = cfg["train"], cfg["model"]
    base_id, out_dir = mcfg["base"], Path(cfg["out_dir"])
    base, digest = frozen_base(cfg, "fast decoder")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    widths = tuple(mcfg["widths"]) if "widths" in mcfg else mcfg["width"]  # per hidden layer, or one for all
    synthesis = narrowed_synthesis(base, widths).to(device).train()
    optimizers = {"lr": torch.optim.Adam(synthesis.parameters(), lr=learning_rate(tcfg["lr"], 0))}
    cache = latent_cache(cfg, base)

    def step_fn(rng: np.random.Generator) -> dict[str, float]:
        idx = torch.from_numpy(rng.integers(len(cache.q0), size=tcfg["batch"]))
        x, y_hat, q0 = (t.to(device) for t in (cache.images[idx], cache.latents[idx], cache.q0[idx]))
        x = x.float() / 255
        squared = (synthesis(y_hat, q0) - x) ** 2
        loss = squared.mean() * 255**2
        optimizers["lr"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["lr"].step()
        mse = squared.detach().flatten(1).mean(1)
        return {"distortion": loss.item(), "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()}

    monitor_q0 = torch.tensor([float(tcfg.get("monitor_q0", 0.5))])

    coded = latent_function(cfg, base)

    def latents(x: torch.Tensor) -> torch.Tensor:
        return coded(x, torch.full_like(x[:, :1], float(monitor_q0)), monitor_q0.expand(x.shape[0]))

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        return synthesis(latents(x).to(device), monitor_q0.to(device)).cpu()

    monitor = monitor_for(cfg)
    monitor.write_reference(out_dir, lambda x: base.synthesis(latents(x), monitor_q0))
    step = run_monitored_training(cfg, {"synthesis": synthesis}, optimizers, step_fn, lambda: monitor(reconstruct),
                                  max_steps)
    if step >= tcfg["steps"]:
        export_decoder(synthesis.cpu().eval(), "fast", base_id, digest, out_dir / "fast" / f"{base_id}.pt",
                       {"step": step, "config": cfg.get("name")})
    return out_dir / "last.pt"
