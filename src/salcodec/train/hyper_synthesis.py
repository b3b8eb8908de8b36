"""`salcodec train` for a model's entropy parameters alone: its hyper-synthesis (refit at full width,
or narrower for speed) and/or a channel context added to it.

h_s turns the hyper-latents ẑ into the Gaussian means and scales by which y is range-coded: it
sets the rate, not the picture. Coding runs it in exact float64 integer arithmetic (models/exact.py),
which made it a fixed ~70 ms of every Kodak compress and decompress. With g_a, h_a, the entropy
bottleneck and g_s frozen, the latents y and ẑ of a training crop never change, so they are
computed once (the hyper cache) and training minimises only the rate of y under the new h_s —
small convolutions on 1/64-size tensors, hundreds of steps per minute on a CPU, with batches far
larger than the whole model's training could afford.

A channel context (`context_slices`, models/hyperprior.py) and a checkerboard context
(`spatial_width`) are trained the same way: with y fixed, each slice's scales and means are
corrected from the slices and anchors decoded before it, rounded as a file holds them.
`train.parts` names what trains (`h_s`, `channel_context`, `spatial_context`); `model.init` names a
model of the same base whose entropy networks it starts from.

The result is a new model: its files carry other means and scales, so the base model's decoder
cannot read them, but y means what it meant, so every decoder of the base model (mse, gan, fast)
reconstructs the new model's latents as well as the base model's. The cache may mix latents of
several encoders of the base model (`encoders: [default, fast]`), so one h_s serves them all.
The monitor reports the rate of y on cached held-out crops (BSDS500 `test/`, never trained on),
coded as files code it (rounding around the means, the 64-level scale table); the base model's h_s
on the same crops is the mark (`monitor_base.json`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..models.hyperprior import QualityMapHyperprior
from ..models.layers import load_state_resizing_buffers
from ..models.registry import export_weights, load_model
from ..models.transforms import load_encoder
from .data import CropSampler, load_photo_folder
from .gan import frozen_base, run_monitored_training
from .narrowing import outgoing_norms


@dataclass
class HyperCache:
    """What h_s sees and what it must predict, for a set of crops."""
    z_hat: torch.Tensor  # K×N×c/64×c/64: quantized hyper-latents (the decoder's input)
    y: torch.Tensor  # K×M×c/16×c/16: latents before quantization (gain applied)


@torch.no_grad()
def build_hyper_cache(base: QualityMapHyperprior, encoders: list[torch.nn.Module], sampler: CropSampler,
                      count: int, seed: int, batch: int = 16) -> HyperCache:
    """`count` crops at random q0 with random quality maps (maximum q0), each coded by one of
    `encoders` in turn: the (y, ẑ) pairs a file of the base model would hold."""
    gen = torch.Generator().manual_seed(seed)
    medians = base.entropy_bottleneck._get_medians()
    zs, ys = [], []
    for n, start in enumerate(tqdm(range(0, count, batch), desc="hyper cache", leave=False)):
        x, _, q = sampler.batch(min(batch, count - start))
        q0 = torch.round(torch.rand(x.shape[0], generator=gen) * 255) / 255
        q = (q - q.flatten(1).amax(1).view(-1, 1, 1, 1) + q0.view(-1, 1, 1, 1)).clamp(0, 1)
        y, z = encoders[n % len(encoders)](x, q, q0)
        zs.append(torch.round(z - medians) + medians)
        ys.append(y)
    return HyperCache(torch.cat(zs), torch.cat(ys))


def hyper_cache(path: Path, base: QualityMapHyperprior, encoders: list[torch.nn.Module], sampler: CropSampler,
                count: int, seed: int) -> HyperCache:
    """The cache at `path`, built on first use; a config asking for more crops than it holds
    adds new ones (drawn with another seed) to those already there, one asking for fewer uses
    them all."""
    cached = HyperCache(**torch.load(path, weights_only=True)) if path.is_file() else None
    have = 0 if cached is None else len(cached.y)
    if have >= count:
        return cached
    if cached is not None:
        sampler.rng = np.random.default_rng([seed, have])  # crops other than those cached
    cache = build_hyper_cache(base, encoders, sampler, count - have, seed + have)
    if cached is not None:
        cache = HyperCache(torch.cat([cached.z_hat, cache.z_hat]), torch.cat([cached.y, cache.y]))
    torch.save(vars(cache), path)
    return cache


@torch.no_grad()
def narrowed_hyper_synthesis(base: QualityMapHyperprior, model: QualityMapHyperprior) -> None:
    """Start `model`'s h_s from the base's: each hidden layer keeps the base's most-read channels
    (narrowing.py); a smaller last kernel keeps the centre taps of the base's."""
    wide = [m for m in base.h_s if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    narrow = [m for m in model.h_s if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    kept_in = torch.arange(wide[0].in_channels)
    for i, (w, n) in enumerate(zip(wide, narrow)):
        last = i == len(wide) - 1
        kept = torch.arange(w.out_channels) if last else \
            outgoing_norms(wide[i + 1]).topk(n.out_channels).indices.sort().values
        weight = w.weight[kept_in][:, kept] if isinstance(w, torch.nn.ConvTranspose2d) else w.weight[kept][:, kept_in]
        trim = (weight.shape[-1] - n.weight.shape[-1]) // 2
        n.weight.copy_(weight[..., trim:weight.shape[-2] - trim, trim:weight.shape[-1] - trim])
        n.bias.copy_(w.bias[kept])
        kept_in = kept


def rate_bits(model: QualityMapHyperprior, z_hat: torch.Tensor, y: torch.Tensor, as_coded: bool) -> torch.Tensor:
    """Bits of y under `model`'s h_s and channel context: with additive noise (training), or as a
    file codes it — rounded around the means, each scale replaced by its coding table's (the
    estimate the range coder's output matches to a fraction of a per cent)."""
    scales, means = model.latent_parameters(*model.h_s(z_hat).chunk(2, dim=1), y)
    gc = model.gaussian_conditional
    if as_coded:
        scales = gc.scale_table[model.scale_indexes(scales.contiguous()).long()]
    _, likelihoods = gc(y, scales, means=means, training=not as_coded)
    return -torch.log2(likelihoods).sum()


def train_hyper_synthesis(cfg: dict, max_steps: int | None = None) -> Path:
    """Train (or resume) the entropy parameters a config describes; exports `<out_dir>/<name>.pt`,
    a model that stores only what differs from its base (the new h_s, the channel context)."""
    from .loop import build_sampler, learning_rate

    tcfg, mcfg, data = cfg["train"], cfg["model"], cfg["data"]
    out_dir = Path(cfg["out_dir"])
    base, _ = frozen_base(cfg, "hyper-synthesis")
    base_widths = [base.h_s[0].out_channels, base.h_s[2].out_channels]
    hparams = {"N": base.N, "M": base.M, "cond": base.quality_pyramid.downs[0][0].out_channels,
               "hyper_widths": list(mcfg.get("hyper_widths", base_widths)),
               "hyper_kernel": int(mcfg.get("hyper_kernel", base.h_s[4].kernel_size[0]))}
    if mcfg.get("context_slices"):
        hparams.update(context_slices=int(mcfg["context_slices"]), context_width=int(mcfg.get("context_width", 128)))
    if mcfg.get("spatial_width"):
        hparams.update(spatial_width=int(mcfg["spatial_width"]))
    model = QualityMapHyperprior(**hparams)
    load_state_resizing_buffers(model, {k: v for k, v in base.state_dict().items() if not k.startswith("h_s.")},
                                strict=False)
    narrowed_hyper_synthesis(base, model)
    if mcfg.get("init"):  # a model of the same base whose entropy networks this one starts from
        own = model.state_dict().keys()
        load_state_resizing_buffers(model, {k: v for k, v in load_model(mcfg["init"])[0].state_dict().items()
                                            if k in own}, strict=False)
    model.requires_grad_(False).eval()
    parts = {name: getattr(model, name) for name in tcfg.get("parts", ["h_s"])}
    for part in parts.values():
        part.requires_grad_(True).train()
    encoders = [base.analysis if kind == "default" else load_encoder(mcfg["base"], kind)
                for kind in tcfg.get("encoders", ["default"])]
    train_cache = hyper_cache(out_dir / "hyper_cache.pt", base, encoders, build_sampler(cfg, tcfg["seed"]),
                              tcfg["cache_crops"], tcfg["seed"])
    heldout_sampler = CropSampler(load_photo_folder(Path(data["heldout"]), data.get("max_side", 1024)),
                                  tcfg["monitor_crop"], tcfg["seed"] + 1, max_zoom=1.0)
    heldout = hyper_cache(out_dir / "heldout_cache.pt", base, encoders, heldout_sampler, tcfg["monitor_crops"],
                          tcfg["seed"] + 1)
    pixels_per_crop = heldout.y.shape[-2] * heldout.y.shape[-1] * 256

    @torch.no_grad()
    def heldout_bpp(net: QualityMapHyperprior) -> float:
        bits = sum(float(rate_bits(net, z, y, as_coded=True)) for z, y in zip(heldout.z_hat.split(64), heldout.y.split(64)))
        return bits / (pixels_per_crop * len(heldout.y))

    (out_dir / "monitor_base.json").write_text(json.dumps({"heldout_bpp_y": heldout_bpp(base)}, indent=1))

    optimizers = {"lr": torch.optim.Adam([p for part in parts.values() for p in part.parameters()],
                                         lr=learning_rate(tcfg["lr"], 0))}
    crop_pixels = train_cache.y.shape[-2] * train_cache.y.shape[-1] * 256

    def step_fn(rng: np.random.Generator) -> dict[str, float]:
        idx = torch.from_numpy(rng.integers(len(train_cache.y), size=tcfg["batch"]))
        bpp = rate_bits(model, train_cache.z_hat[idx], train_cache.y[idx], as_coded=False) / (crop_pixels * len(idx))
        optimizers["lr"].zero_grad(set_to_none=True)
        bpp.backward()
        optimizers["lr"].step()
        return {"bpp": bpp.item()}

    step = run_monitored_training(cfg, parts, optimizers, step_fn,
                                  lambda: {"heldout_bpp_y": heldout_bpp(model)}, max_steps)
    if step >= tcfg["steps"]:
        model.eval()
        export_weights(model, "quality-map-hyperprior", hparams, out_dir / f"{cfg['name']}.pt",
                       {"step": step, "config": cfg.get("name")}, base=mcfg["base"])
    return out_dir / "last.pt"
