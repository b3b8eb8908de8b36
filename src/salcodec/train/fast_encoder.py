"""`salcodec train` for a fast encoder: a narrower analysis whose files the model's decoders read.

Encoding time is mostly g_a, whose cost grows with the square of its width (its second
convolution alone, 128 → 128 channels at half resolution, was 36 % of a Kodak compress). A fast
encoder is an `AnalysisTransform` with a narrower g_a, trained with the model's own objective —
rate plus λ(q)-weighted squared error, on crops with random quality maps — while the model's
entropy model, hyper-synthesis and synthesis stay frozen. So whatever it writes is a file of the
same model, in the same format, and every decoder of that model reads it; what it can lose is
rate–distortion, which `salcodec eval --models 'ID,ID^fast'` measures on the same images. It
starts from the model's own analysis narrowed to the channels that carry most weight into the
next layer (narrowing.py). The train/held-out monitor runs as for the GAN decoder, against the
full encoder's scores on the same crops (`monitor_base.json`).
"""
from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..models.hyperprior import AnalysisTransform
from ..models.transforms import export_encoder
from .gan import frozen_base, monitor_for, run_monitored_training
from .narrowing import copy_narrowed_layers
from .objectives import QualityMapObjective


@torch.no_grad()
def narrowed_analysis(model: torch.nn.Module, widths: tuple[int, int, int]) -> AnalysisTransform:
    """The model's analysis with g_a's hidden layers `widths` channels wide, from its most-read
    channels (narrowing.py); the quality pyramid, the gain and h_a are copied whole."""
    cond = model.quality_pyramid.downs[0][0].out_channels
    narrow = AnalysisTransform(model.M, model.N, widths, cond)
    for name in ("quality_pyramid", "h_a", "h_a_sft"):
        getattr(narrow, name).load_state_dict(getattr(model, name).state_dict())
    narrow.gain.copy_(model.gain)
    copy_narrowed_layers(model.g_a, narrow.g_a, model.g_a_gdn, narrow.g_a_gdn, model.g_a_sft, narrow.g_a_sft)
    return narrow


def train_fast_encoder(cfg: dict, max_steps: int | None = None) -> Path:
    """Train (or resume) the fast encoder a config describes; exports `<out_dir>/fast-encoder/<base>.pt`."""
    from .loop import build_sampler, learning_rate

    tcfg, mcfg = cfg["train"], cfg["model"]
    base_id, out_dir = mcfg["base"], Path(cfg["out_dir"])
    shared_base, digest = frozen_base(cfg, "fast encoder")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    # a private copy in training mode (float hyper-synthesis, noisy likelihoods), nothing of it learns
    base = copy.deepcopy(shared_base).to(device).train().requires_grad_(False)
    analysis = narrowed_analysis(shared_base, tuple(mcfg["widths"])).to(device).train()
    optimizers = {"lr": torch.optim.Adam(analysis.parameters(), lr=learning_rate(tcfg["lr"], 0))}
    sampler = build_sampler(cfg, tcfg["seed"])
    objective = QualityMapObjective(tcfg)  # the model's own, with the fast analysis in its place
    coder = partial(base, analysis=analysis)

    def step_fn(rng: np.random.Generator) -> dict[str, float]:
        sampler.rng = rng  # the loop's generator, saved in its checkpoints: a resumed run draws new crops
        x, s, q = (t.to(device) for t in sampler.batch(tcfg["batch"]))
        terms = objective(coder, x, s, q)
        optimizers["lr"].zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(analysis.parameters(), tcfg.get("clip", 1.0))
        optimizers["lr"].step()
        return {k: v.item() for k, v in terms.items()}

    monitor_q0 = float(tcfg.get("monitor_q0", 0.5))

    def reconstruct_with(encoder: torch.nn.Module | None):
        def reconstruct(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device)
            q0 = torch.full((x.shape[0],), monitor_q0, device=device)
            return base(x, torch.full_like(x[:, :1], monitor_q0), q0, analysis=encoder).x_hat.cpu()
        return reconstruct

    monitor = monitor_for(cfg)
    monitor.write_reference(out_dir, reconstruct_with(None))
    reconstruct = reconstruct_with(analysis)
    step = run_monitored_training(cfg, {"analysis": analysis}, optimizers, step_fn, lambda: monitor(reconstruct),
                                  max_steps)
    if step >= tcfg["steps"]:
        export_encoder(analysis.cpu().eval(), "fast", base_id, digest, out_dir / "fast-encoder" / f"{base_id}.pt",
                       {"step": step, "config": cfg.get("name")})
    return out_dir / "last.pt"
