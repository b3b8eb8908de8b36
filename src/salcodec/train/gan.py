"""`salcodec train` for a GAN decoder (config family `gan-decoder`), made to be affordable on CPUs.

The shipped model's encoder and entropy model are frozen: the latents a file would hold for a
training crop never change, so they are computed once (the latent cache) and training touches
only the synthesis transform, warm-started from the MSE decoder, and a small conditional patch
discriminator. Steps alternate: the discriminator on real vs generated crops, then the generator
on

    distortion_weight · 255²·mean(w · (x − x̂)²) + adversarial_weight · (−log D(x̂ | ŷ))
    + feature_matching_weight · Σ|D_l(x̂) − D_l(x)|

where w is the saliency-selective weight (salient pixels held to the original, the rest left to
the generator; `saliency_weighting: none` weighs every pixel alike). Every `monitor_every` steps
the same decoder is scored on training images and on held-out images (PSNR and high-frequency
ratio, `monitor.csv`), so overfitting — the seed's failure with this kind of model — shows as a
gap between the two columns.
"""
from __future__ import annotations

import copy
import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ..codec.image_io import IMAGE_SUFFIXES
from ..errors import SalcodecError
from ..eval.metrics import high_frequency_ratio, psnr
from ..models.generative import ConditionalPatchDiscriminator, export_gan_decoder, synthesis_state
from ..models.registry import load_model
from .losses import saliency_weight


@dataclass
class LatentCache:
    """Training crops with the latents the frozen encoder gives them."""
    images: torch.Tensor  # K×3×C×C uint8
    saliency: torch.Tensor  # K×1×C×C uint8
    latents: torch.Tensor  # K×M×C/16×C/16 float32: ŷ as the decoder sees it
    q0: torch.Tensor  # K: the global quality each crop was coded at


@torch.no_grad()  # not inference_mode: the cached latents feed training steps
def quantized_latents(model: torch.nn.Module, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
    """ŷ for a batch, as entropy decoding would return it (up to the float hyper-synthesis)."""
    y, z = model.analysis(x, quality_map, q0)
    medians = model.entropy_bottleneck._get_medians()
    z_hat = torch.round(z - medians) + medians
    _, means = model.h_s(z_hat).chunk(2, dim=1)
    return torch.round(y - means) + means


def build_cache(model: torch.nn.Module, sampler, count: int, q0_range: tuple[float, float], seed: int,
                batch: int = 16) -> LatentCache:
    """`count` random crops, each coded at a random q0 in `q0_range` with a random quality map
    shifted so that its maximum is q0 (files made with saliency are decoded too)."""
    gen = torch.Generator().manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in tqdm(range(0, count, batch), desc="latent cache", leave=False):
        x, s, q = sampler.batch(min(batch, count - start))
        q0 = q0_range[0] + (q0_range[1] - q0_range[0]) * torch.rand(x.shape[0], generator=gen)
        q0 = torch.round(q0 * 255) / 255  # what a file header can carry
        q = (q - q.flatten(1).amax(1).view(-1, 1, 1, 1) + q0.view(-1, 1, 1, 1)).clamp(0, 1)
        y_hat = quantized_latents(model, x, q, q0)
        parts.append((torch.round(x * 255).to(torch.uint8), torch.round(s * 255).to(torch.uint8), y_hat, q0))
    images, saliency, latents, q0s = (torch.cat(p) for p in zip(*parts))
    return LatentCache(images, saliency, latents, q0s)


def load_monitor_images(folder: Path, count: int, side: int) -> list[np.ndarray]:
    """The first `count` images of a folder (sorted), centre-cropped to side×side."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
    if not paths:
        raise SalcodecError(f"no monitor images in {folder}")
    crops = []
    for path in paths:
        img = np.asarray(Image.open(path).convert("RGB"))
        h, w = img.shape[:2]
        s = min(side, h, w) // 16 * 16
        y0, x0 = (h - s) // 2, (w - s) // 2
        crops.append(np.ascontiguousarray(img[y0:y0 + s, x0:x0 + s]))
    return crops


class Monitor:
    """PSNR and high-frequency ratio of a decoder on fixed training and held-out images."""

    def __init__(self, model: torch.nn.Module, sets: dict[str, list[np.ndarray]], q0: float):
        self.q0 = torch.tensor([q0])
        self.sets = {}
        for name, images in sets.items():
            coded = []
            for img in images:
                x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
                coded.append((img, quantized_latents(model, x, torch.full_like(x[:, :1], q0), self.q0)))
            self.sets[name] = coded

    @torch.inference_mode()
    def __call__(self, generator: torch.nn.Module) -> dict[str, float]:
        scores = {}
        for name, coded in self.sets.items():
            ps, hf = [], []
            for img, y_hat in coded:
                out = generator.synthesis(y_hat, self.q0).clamp(0, 1).mul(255).round().to(torch.uint8)
                rec = out[0].permute(1, 2, 0).numpy()
                ps.append(psnr(img, rec))
                hf.append(high_frequency_ratio(img, rec))
            scores[f"{name}_psnr"] = float(np.mean(ps))
            scores[f"{name}_hf_ratio"] = float(np.mean(hf))
        return scores


def generator_and_discriminator(base: torch.nn.Module, width: int) -> tuple[torch.nn.Module, ConditionalPatchDiscriminator]:
    """A copy of the base model whose synthesis alone can learn, and a fresh discriminator."""
    generator = copy.deepcopy(base).train()
    trainable = set(synthesis_state(generator))
    for name, p in generator.named_parameters():
        p.requires_grad_(name in trainable)
    return generator, ConditionalPatchDiscriminator(base.M, width)


def gan_step(generator: torch.nn.Module, discriminator: ConditionalPatchDiscriminator, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, x: torch.Tensor, saliency: torch.Tensor, y_hat: torch.Tensor,
             q0: torch.Tensor, weights: dict) -> dict[str, float]:
    """One discriminator step, then one generator step, on the same generated batch."""
    fake = generator.synthesis(y_hat, q0)

    real_logits, real_features = discriminator(x, y_hat)
    fake_logits, _ = discriminator(fake.detach(), y_hat)
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()

    fake_logits, fake_features = discriminator(fake, y_hat)
    adversarial = F.softplus(-fake_logits).mean()  # non-saturating
    w = saliency_weight(saliency, weights["saliency_weighting"], weights["saliency_floor"])
    squared = (fake - x) ** 2
    dist = (squared if w is None else w * squared).mean() * 255**2
    feature_matching = sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_features, real_features)) / len(fake_features)
    g_loss = (weights["distortion_weight"] * dist + weights["adversarial_weight"] * adversarial
              + weights["feature_matching_weight"] * feature_matching)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    mse = squared.detach().flatten(1).mean(1)
    return {"d_loss": d_loss.item(), "g_adversarial": adversarial.item(), "distortion": dist.item(),
            "feature_matching": feature_matching.item(),
            "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()}


def train_gan_decoder(cfg: dict, max_steps: int | None = None) -> Path:
    """Train (or resume) the GAN decoder a config describes; exports `<out_dir>/gan/<base>.pt`."""
    from .loop import _restore_signal_handlers, _stop_cleanly_on_signals, build_sampler, learning_rate

    tcfg, mcfg = cfg["train"], cfg["model"]
    previous_handlers = _stop_cleanly_on_signals()
    out_dir = Path(cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg["seed"])
    base_id = mcfg["base"]
    base, digest = load_model(base_id)
    if not getattr(base, "variable_rate", False):
        raise SalcodecError(f"a GAN decoder needs the default model family; '{base_id}' is not one")
    generator, discriminator = generator_and_discriminator(base, mcfg.get("discriminator_width", 64))
    opt_g = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=learning_rate(tcfg["lr_g"], 0),
                             betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=learning_rate(tcfg["lr_d"], 0), betas=(0.5, 0.999))

    cache_path, last = out_dir / "latent_cache.pt", out_dir / "last.pt"
    if cache_path.is_file():
        cache = LatentCache(**torch.load(cache_path, weights_only=True))
    else:
        sampler = build_sampler(cfg, tcfg["seed"])
        cache = build_cache(base, sampler, tcfg["cache_crops"], tuple(tcfg["q0_range"]), tcfg["seed"])
        torch.save(vars(cache), cache_path)
    data = cfg["data"]
    monitor = Monitor(base, {
        "train": load_monitor_images(Path(data["photos"][0]), tcfg.get("monitor_images", 8), tcfg.get("monitor_side", 256)),
        "heldout": load_monitor_images(Path(data["heldout"]), tcfg.get("monitor_images", 8), tcfg.get("monitor_side", 256)),
    }, tcfg.get("monitor_q0", 0.0))

    step = 0
    rng = np.random.default_rng(tcfg["seed"])
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        generator.load_state_dict(state["generator"], strict=False)
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        rng.bit_generator.state = state["rng"]
        step = state["step"]

    def save() -> None:
        tmp = last.with_suffix(".tmp")
        torch.save({"generator": synthesis_state(generator), "discriminator": discriminator.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng.bit_generator.state,
                    "step": step, "config": cfg}, tmp)
        tmp.replace(last)

    weights = {"distortion_weight": tcfg["distortion_weight"], "adversarial_weight": tcfg["adversarial_weight"],
               "feature_matching_weight": tcfg.get("feature_matching_weight", 0.0),
               "saliency_weighting": tcfg.get("saliency_weighting", "normalised"),
               "saliency_floor": tcfg.get("saliency_floor", 0.1)}
    log_path, monitor_path = out_dir / "log.csv", out_dir / "monitor.csv"
    columns = ["d_loss", "g_adversarial", "distortion", "feature_matching", "psnr"]
    monitor_columns = ["train_psnr", "heldout_psnr", "train_hf_ratio", "heldout_hf_ratio"]
    new_log, new_monitor = not log_path.exists(), not monitor_path.exists()
    log_file, monitor_file = log_path.open("a", newline=""), monitor_path.open("a", newline="")
    log, monitor_log = csv.writer(log_file), csv.writer(monitor_file)
    if new_log:
        log.writerow(["step", "wall_s"] + columns)
    if new_monitor:
        monitor_log.writerow(["step"] + monitor_columns)

    def record_monitor() -> None:
        scores = monitor(generator)
        monitor_log.writerow([step] + [round(scores[c], 4) for c in monitor_columns])
        monitor_file.flush()
        tqdm.write(f"step {step}: " + ", ".join(f"{c} {scores[c]:.3f}" for c in monitor_columns))

    total = tcfg["steps"] if max_steps is None else min(tcfg["steps"], step + max_steps)
    log_every, monitor_every = tcfg.get("log_every", 50), tcfg.get("monitor_every", 250)
    running: dict[str, float] = {}
    start = time.time()
    bar = tqdm(total=total, initial=step, desc=cfg.get("name", "gan"), dynamic_ncols=True)
    try:
        if step == 0:
            record_monitor()  # the MSE decoder, where the GAN decoder starts
        while step < total:
            for opt, key in ((opt_g, "lr_g"), (opt_d, "lr_d")):
                for group in opt.param_groups:
                    group["lr"] = learning_rate(tcfg[key], step)
            idx = torch.from_numpy(rng.integers(len(cache.q0), size=tcfg["batch"]))
            x = cache.images[idx].float() / 255
            terms = gan_step(generator, discriminator, opt_g, opt_d, x, cache.saliency[idx].float() / 255,
                             cache.latents[idx], cache.q0[idx], weights)
            if not all(np.isfinite(v) for v in terms.values()):
                raise SalcodecError(f"GAN training diverged at step {step} ({terms}); lower the learning rates")
            step += 1
            bar.update(1)
            for k, v in terms.items():
                running[k] = running.get(k, 0.0) + v
            running["n"] = running.get("n", 0.0) + 1
            if step % log_every == 0:
                avg = {k: v / running["n"] for k, v in running.items()}
                log.writerow([step, round(time.time() - start, 1)] + [round(avg[c], 5) for c in columns])
                log_file.flush()
                bar.set_postfix(d=f"{avg['d_loss']:.3f}", adv=f"{avg['g_adversarial']:.3f}", psnr=f"{avg['psnr']:.2f}")
                running = {}
            if step % monitor_every == 0:
                record_monitor()
            if step % tcfg.get("checkpoint_every", 250) == 0:
                save()
    finally:
        save()
        log_file.close()
        monitor_file.close()
        bar.close()
        _restore_signal_handlers(previous_handlers)
    if step >= tcfg["steps"]:
        export_gan_decoder(generator.eval(), base_id, digest, out_dir / "gan" / f"{base_id}.pt",
                           {"step": step, "config": cfg.get("name")})
    return last
