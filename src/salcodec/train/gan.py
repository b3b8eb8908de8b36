"""`salcodec train` for the two GAN models, made to be affordable on CPUs.

`gan-decoder`: the shipped model's encoder and entropy model are frozen, so the latents a file
would hold for a training crop never change: they are computed once (the latent cache), and
training touches only the synthesis transform, warm-started from the MSE decoder, and a small
conditional patch discriminator. `gan-extreme` (models/extreme.py) trains a whole extreme-rate
codec against a multi-scale discriminator, its categorical prior learning the symbol frequencies.

Steps alternate: the discriminator on real vs generated crops, then the generator on

    distortion_weight · 255²·mean(w · (x − x̂)²) + adversarial_weight · (−log D(x̂))
    + feature_matching_weight · Σ|D_l(x̂) − D_l(x)| + periodic_weight · 255²·P(x̂ − x)
    + texture_weight · T(x̂, x)

where w is the saliency-selective weight (salient pixels held to the original, the rest left to
the generator; `saliency_weighting: none` weighs every pixel alike) and P the power of the error's
16-px periodic pattern (losses.periodic_error_power, against the grid artefacts GAN decoders make).
With `generation_saliency_floor` set, the two GAN terms are weighted per patch toward the
non-salient part of the crop too (losses.generation_weight): generated where people do not look.
T asks each 16-px patch, background first, for the original's fine-detail energy
(losses.texture_energy_mismatch), and `distortion_lambda_exponent` makes the distortion weight
grow with the crop's coded quality (gan_step).
The discriminator's loss may carry an R1 penalty (`r1_weight`), meant to keep it from taking over
in long runs. Both GAN weights at zero make a distortion-only (warm-up) stage without the
discriminator. Every `monitor_every` steps the model is scored on training images and on
held-out images (PSNR and high-frequency ratio, `monitor.csv`), so overfitting — the seed's
failure with this kind of model — shows as a gap between the two columns.
"""
from __future__ import annotations

import copy
import csv
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from ..codec.image_io import IMAGE_SUFFIXES
from ..codec.quality import LAMBDA_MIN, lambda_map
from ..errors import SalcodecError
from ..eval.metrics import high_frequency_ratio, psnr
from ..models import SHARES_TRANSFORMS_OF
from ..models.generative import ConditionalPatchDiscriminator
from ..models.registry import load_model
from ..models.transforms import export_decoder, synthesis_state
from .losses import generation_weight, periodic_error_power, saliency_weight, texture_energy_mismatch


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


@torch.no_grad()
def coded_latents(model: torch.nn.Module, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
    """ŷ exactly as a file of `model` holds it: coded (its contexts, RD rounding) and entropy-decoded,
    crop by crop. A model with contexts, or an encoder that rounds for rate, writes other latents
    than `quantized_latents` gives, and its second decoders should learn from those."""
    latents = [model.decode_latents(model.compress(x[i:i + 1], quality_map[i:i + 1], q0[i:i + 1])[0], tuple(x.shape[-2:]))
               for i in range(x.shape[0])]
    return torch.cat(latents).clone()  # a normal tensor (the coder's are inference tensors)


def latent_function(cfg: dict, base: torch.nn.Module) -> Callable[..., torch.Tensor]:
    """How a run turns crops into the latents its decoder learns from: as `train.coded_by` (a model
    sharing the base's transforms, e.g. default-v4-cb) codes them, or else the base's rounded latents."""
    coded_by = cfg["train"].get("coded_by")
    if coded_by is None:
        return partial(quantized_latents, base)
    if SHARES_TRANSFORMS_OF.get(coded_by, coded_by) != cfg["model"]["base"]:
        raise SalcodecError(f"train.coded_by '{coded_by}' does not share the transforms of '{cfg['model']['base']}'")
    return partial(coded_latents, load_model(coded_by)[0])


def build_cache(latents_of: Callable[..., torch.Tensor], sampler, count: int, q0_range: tuple[float, float], seed: int,
                batch: int = 16) -> LatentCache:
    """`count` random crops, each coded at a random q0 in `q0_range` with a random quality map
    shifted so that its maximum is q0 (files made with saliency are decoded too); `latents_of(x, q, q0)`
    gives what the decoder sees."""
    gen = torch.Generator().manual_seed(seed)
    parts: list[tuple[torch.Tensor, ...]] = []
    for start in tqdm(range(0, count, batch), desc="latent cache", leave=False):
        x, s, q = sampler.batch(min(batch, count - start))
        q0 = q0_range[0] + (q0_range[1] - q0_range[0]) * torch.rand(x.shape[0], generator=gen)
        q0 = torch.round(q0 * 255) / 255  # what a file header can carry
        q = (q - q.flatten(1).amax(1).view(-1, 1, 1, 1) + q0.view(-1, 1, 1, 1)).clamp(0, 1)
        y_hat = latents_of(x, q, q0)
        parts.append((torch.round(x * 255).to(torch.uint8), torch.round(s * 255).to(torch.uint8), y_hat, q0))
    images, saliency, latents, q0s = (torch.cat(p) for p in zip(*parts))
    return LatentCache(images, saliency, latents, q0s)


def latent_cache(cfg: dict, base: torch.nn.Module) -> LatentCache:
    """The run's latent cache: `<out_dir>/latent_cache.pt`, built on first use."""
    from .loop import build_sampler

    tcfg = cfg["train"]
    path = Path(cfg["out_dir"]) / "latent_cache.pt"
    if path.is_file():
        return LatentCache(**torch.load(path, weights_only=True))
    cache = build_cache(latent_function(cfg, base), build_sampler(cfg, tcfg["seed"]), tcfg["cache_crops"],
                        tuple(tcfg["q0_range"]), tcfg["seed"])
    torch.save(vars(cache), path)
    return cache


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
    """PSNR and high-frequency ratio of a reconstruction function on fixed training and held-out images."""

    def __init__(self, sets: dict[str, list[np.ndarray]]):
        self.sets = sets

    @torch.no_grad()
    def __call__(self, reconstruct: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, float]:
        scores = {}
        for name, images in self.sets.items():
            ps, hf = [], []
            for img in images:
                x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
                rec = reconstruct(x).clamp(0, 1).mul(255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
                ps.append(psnr(img, rec))
                hf.append(high_frequency_ratio(img, rec))
            scores[f"{name}_psnr"] = float(np.mean(ps))
            scores[f"{name}_hf_ratio"] = float(np.mean(hf))
        return dict(sorted(scores.items(), key=lambda kv: kv[0].endswith("hf_ratio")))  # PSNRs first, as monitor.csv

    def write_reference(self, out_dir: Path, reconstruct: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Scores of the transform a narrower one replaces, on the same crops, written once to
        `<out_dir>/monitor_base.json`: the mark the trained one is measured against."""
        path = out_dir / "monitor_base.json"
        if not path.is_file():
            path.write_text(json.dumps(self(reconstruct), indent=1))


def generator_and_discriminator(base: torch.nn.Module, width: int) -> tuple[torch.nn.Module, ConditionalPatchDiscriminator]:
    """A copy of the base model whose synthesis alone can learn, and a fresh discriminator."""
    generator = copy.deepcopy(base).train()
    trainable = set(synthesis_state(generator))
    for name, p in generator.named_parameters():
        p.requires_grad_(name in trainable)
    return generator, ConditionalPatchDiscriminator(base.M, width)


def discriminator_step(discriminator: torch.nn.Module, opt_d: torch.optim.Optimizer, x: torch.Tensor,
                       fake: torch.Tensor, condition: torch.Tensor | None,
                       r1_weight: float) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """One step of the discriminator on real `x` against generated `fake`; returns its loss, the R1
    penalty and its features of `x` before the step (the targets of feature matching)."""
    real = x.detach().requires_grad_(r1_weight > 0)
    real_logits, real_features = discriminator(real, condition)
    fake_logits, _ = discriminator(fake.detach(), condition)
    d_loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
    r1 = torch.zeros(())
    if r1_weight > 0:
        # R1 (Mescheder et al. 2018): a penalty on the discriminator's gradient at real images, against
        # the unbounded sharpening by which it took over the generator in long runs. The gradient is
        # that of each image's mean patch logit, as the loss averages patches: on the sum of 256
        # patch logits the penalty's gradient was about 2,000× the loss's and held D at chance
        (grad,) = torch.autograd.grad(real_logits.flatten(1).mean(1).sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
    opt_d.zero_grad(set_to_none=True)
    (d_loss + 0.5 * r1_weight * r1).backward()
    opt_d.step()
    return d_loss.detach(), r1.detach(), [f.detach() for f in real_features]


def adversarial_step(discriminator: torch.nn.Module, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                     x: torch.Tensor, fake: torch.Tensor, saliency: torch.Tensor, weights: dict,
                     condition: torch.Tensor | None = None, extra: dict[str, torch.Tensor] | None = None,
                     distortion_scale: torch.Tensor | None = None) -> dict[str, float]:
    """One discriminator step, then one generator step, on the same generated batch `fake`
    (computed by the caller with gradients); `extra` loss terms are added to the generator's, and
    `distortion_scale` (one factor per sample) scales each sample's distortion term.
    With the adversarial and feature-matching weights both zero the discriminator is left out:
    a distortion-only step, as in a warm-up stage."""
    w = saliency_weight(saliency, weights["saliency_weighting"], weights["saliency_floor"])
    squared = (fake - x) ** 2
    weighted = squared if w is None else w * squared
    if distortion_scale is not None:
        weighted = distortion_scale.view(-1, 1, 1, 1) * weighted
    dist = weighted.mean() * 255**2
    d_loss = r1 = adversarial = feature_matching = torch.zeros(())
    if weights["adversarial_weight"] or weights["feature_matching_weight"]:  # else a distortion-only (warm-up) step
        d_loss, r1, real_features = discriminator_step(discriminator, opt_d, x, fake, condition,
                                                       weights.get("r1_weight", 0.0))
        fake_logits, fake_features = discriminator(fake, condition)
        gate_floor = weights.get("generation_saliency_floor")
        if gate_floor is None:  # the GAN terms weigh every patch alike
            adversarial = F.softplus(-fake_logits).mean()  # non-saturating
            feature_matching = sum(F.l1_loss(f, r) for f, r in zip(fake_features, real_features)) / len(fake_features)
        else:
            if fake_logits.dim() != 4:
                raise SalcodecError("generation_saliency_floor needs a patch discriminator (gan-decoder)")
            adversarial = (generation_weight(saliency, fake_logits, gate_floor) * F.softplus(-fake_logits)).mean()
            feature_matching = sum((generation_weight(saliency, f, gate_floor) * (f - r).abs()).mean()
                                   for f, r in zip(fake_features, real_features)) / len(fake_features)
    periodic = periodic_error_power(x, fake).mean()
    texture = torch.zeros(())
    if weights.get("texture_weight"):
        texture = texture_energy_mismatch(x, fake, saliency, weights["texture_saliency_floor"]).mean()
    g_loss = (weights["distortion_weight"] * dist + weights["adversarial_weight"] * adversarial
              + weights["feature_matching_weight"] * feature_matching + weights.get("periodic_weight", 0.0) * periodic
              + weights.get("texture_weight", 0.0) * texture + sum((extra or {}).values()))
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    mse = squared.detach().flatten(1).mean(1)
    return {"d_loss": d_loss.item(), "r1": r1.item(), "g_adversarial": adversarial.item(), "distortion": dist.item(),
            "feature_matching": feature_matching.item(), "periodic": periodic.item(), "texture": texture.item(),
            "psnr": (10 * torch.log10(1 / mse.clamp_min(1e-10))).mean().item()} | \
        {k: v.item() for k, v in (extra or {}).items()}


def gan_step(generator: torch.nn.Module, discriminator: ConditionalPatchDiscriminator, opt_g: torch.optim.Optimizer,
             opt_d: torch.optim.Optimizer, x: torch.Tensor, saliency: torch.Tensor, y_hat: torch.Tensor,
             q0: torch.Tensor, weights: dict) -> dict[str, float]:
    """A GAN decoder step: the generator is the synthesis, the discriminator sees the latents too.

    With `distortion_lambda_exponent` β > 0 a crop coded at global quality q0 weighs its distortion
    (λ(q0)/λ(0))^β times more: at high rates the latents already hold the detail, and a constant
    weight let the adversarial term over-sharpen them (more fine detail than the original)."""
    scale = None
    if weights.get("distortion_lambda_exponent"):
        scale = (lambda_map(q0) / LAMBDA_MIN) ** weights["distortion_lambda_exponent"]
    return adversarial_step(discriminator, opt_g, opt_d, x, generator.synthesis(y_hat, q0), saliency, weights, y_hat,
                            distortion_scale=scale)


def loss_weights(tcfg: dict) -> dict:
    return {"distortion_weight": tcfg["distortion_weight"], "adversarial_weight": tcfg["adversarial_weight"],
            "feature_matching_weight": tcfg.get("feature_matching_weight", 0.0),
            "saliency_weighting": tcfg.get("saliency_weighting", "normalised"),
            "saliency_floor": tcfg.get("saliency_floor", 0.1), "r1_weight": tcfg.get("r1_weight", 0.0),
            "periodic_weight": tcfg.get("periodic_weight", 0.0),
            "generation_saliency_floor": tcfg.get("generation_saliency_floor"),
            "texture_weight": tcfg.get("texture_weight", 0.0),
            "texture_saliency_floor": tcfg.get("texture_saliency_floor", 0.1),
            "distortion_lambda_exponent": tcfg.get("distortion_lambda_exponent", 0.0)}


def monitor_for(cfg: dict) -> Monitor:
    data, tcfg = cfg["data"], cfg["train"]
    count, side = tcfg.get("monitor_images", 8), tcfg.get("monitor_side", 256)
    return Monitor({"train": load_monitor_images(Path(data["photos"][0]), count, side),
                    "heldout": load_monitor_images(Path(data["heldout"]), count, side)})


def run_monitored_training(cfg: dict, modules: dict[str, torch.nn.Module], optimizers: dict[str, torch.optim.Optimizer],
                           step_fn: Callable[[np.random.Generator], dict[str, float]],
                           measure: Callable[[], dict[str, float]],
                           max_steps: int | None, state_of: Callable[[str, torch.nn.Module], dict] | None = None) -> int:
    """The loop the GAN, fast-transform and hyper-synthesis trainings share: resume, learning
    rates, CSV logs, the train/held-out monitor (`measure`, with the modules in eval mode; its
    scores are the columns of monitor.csv), checkpoints that survive SIGTERM. Returns the step
    reached. Each optimizer is keyed by the config key of its learning-rate schedule (`lr_g`,
    `lr_d`, `lr`)."""
    from .loop import _restore_signal_handlers, _stop_cleanly_on_signals, learning_rate

    tcfg = cfg["train"]
    out_dir = Path(cfg["out_dir"])
    last = out_dir / "last.pt"
    state_of = state_of or (lambda name, module: module.state_dict())
    previous_handlers = _stop_cleanly_on_signals()
    step = 0
    rng = np.random.default_rng(tcfg["seed"])
    if last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        for name, module in modules.items():
            module.load_state_dict(state[name], strict=False)
        for name, opt in optimizers.items():
            opt.load_state_dict(state[name])
        rng.bit_generator.state = state["rng"]
        step = state["step"]

    def save() -> None:
        tmp = last.with_suffix(".tmp")
        torch.save({name: state_of(name, m) for name, m in modules.items()}
                   | {name: opt.state_dict() for name, opt in optimizers.items()}
                   | {"rng": rng.bit_generator.state, "step": step, "config": cfg}, tmp)
        tmp.replace(last)

    log_path, monitor_path = out_dir / "log.csv", out_dir / "monitor.csv"
    new_log, new_monitor = not log_path.exists(), not monitor_path.exists()
    log_file, monitor_file = log_path.open("a", newline=""), monitor_path.open("a", newline="")
    log, monitor_log = csv.writer(log_file), csv.writer(monitor_file)

    def record_monitor() -> None:
        nonlocal new_monitor
        for module in modules.values():
            module.eval()
        scores = measure()
        for module in modules.values():
            module.train()
        if new_monitor:
            monitor_log.writerow(["step"] + list(scores))
            new_monitor = False
        monitor_log.writerow([step] + [round(v, 5) for v in scores.values()])
        monitor_file.flush()
        tqdm.write(f"step {step}: " + ", ".join(f"{c} {v:.4f}" for c, v in scores.items()))

    total = tcfg["steps"] if max_steps is None else min(tcfg["steps"], step + max_steps)
    log_every, monitor_every = tcfg.get("log_every", 50), tcfg.get("monitor_every", 250)
    columns: list[str] | None = None
    running: dict[str, float] = {}
    start = time.time()
    bar = tqdm(total=total, initial=step, desc=cfg.get("name", "gan"), dynamic_ncols=True)
    try:
        if step == 0:
            record_monitor()  # where training starts
        while step < total:
            for name, opt in optimizers.items():
                for group in opt.param_groups:
                    group["lr"] = learning_rate(tcfg[name], step)
            terms = step_fn(rng)
            if not all(np.isfinite(v) for v in terms.values()):
                raise SalcodecError(f"training diverged at step {step} ({terms}); lower the learning rates")
            step += 1
            bar.update(1)
            for k, v in terms.items():
                running[k] = running.get(k, 0.0) + v
            running["n"] = running.get("n", 0.0) + 1
            if step % log_every == 0:
                if columns is None:
                    columns = list(terms)
                    if new_log:
                        log.writerow(["step", "wall_s"] + columns)
                avg = {k: v / running["n"] for k, v in running.items()}
                log.writerow([step, round(time.time() - start, 1)] + [round(avg[c], 5) for c in columns])
                log_file.flush()
                bar.set_postfix({k: f"{avg[k]:.4f}" for k in ("d_loss", "g_adversarial", "psnr", "bpp") if k in avg})
                running = {}
            if step % monitor_every == 0:
                record_monitor()
            if step % tcfg.get("checkpoint_every", 250) == 0:
                save()
            if tcfg.get("snapshot_every") and step % tcfg["snapshot_every"] == 0:
                save()  # a copy per snapshot step: any of them can ship (scripts/export_gan_snapshot.py)
                shutil.copyfile(last, out_dir / f"snap-{step}.pt")
    finally:
        save()
        log_file.close()
        monitor_file.close()
        bar.close()
        _restore_signal_handlers(previous_handlers)
    return step


def frozen_base(cfg: dict, what: str) -> tuple[torch.nn.Module, bytes]:
    """The shipped model a second decoder is trained for (`model.base`) and its weights digest;
    also makes the run's folder and seeds torch."""
    base_id = cfg["model"]["base"]
    Path(cfg["out_dir"]).mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg["train"]["seed"])
    base, digest = load_model(base_id)
    if not getattr(base, "variable_rate", False):
        raise SalcodecError(f"a {what} needs the default model family; '{base_id}' is not one")
    return base, digest


def train_gan_decoder(cfg: dict, max_steps: int | None = None) -> Path:
    """Train (or resume) the GAN decoder a config describes; exports `<out_dir>/gan/<base>.pt`."""
    from .loop import learning_rate

    tcfg, mcfg = cfg["train"], cfg["model"]
    base_id, out_dir = mcfg["base"], Path(cfg["out_dir"])
    base, digest = frozen_base(cfg, "GAN decoder")
    generator, discriminator = generator_and_discriminator(base, mcfg.get("discriminator_width", 64))
    # the frozen base model codes the crops once, on the CPU; the two trained networks go to a GPU if there is one
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator.to(device)
    discriminator.to(device)
    optimizers = {
        "lr_g": torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=learning_rate(tcfg["lr_g"], 0),
                                 betas=(0.5, 0.999)),
        "lr_d": torch.optim.Adam(discriminator.parameters(), lr=learning_rate(tcfg["lr_d"], 0), betas=(0.5, 0.999)),
    }
    cache = latent_cache(cfg, base)
    weights = loss_weights(tcfg)

    def step_fn(rng: np.random.Generator) -> dict[str, float]:
        idx = torch.from_numpy(rng.integers(len(cache.q0), size=tcfg["batch"]))
        x, s, y_hat, q0 = (t.to(device) for t in (cache.images[idx], cache.saliency[idx], cache.latents[idx], cache.q0[idx]))
        return gan_step(generator, discriminator, optimizers["lr_g"], optimizers["lr_d"], x.float() / 255,
                        s.float() / 255, y_hat, q0, weights)

    monitor_q0 = torch.tensor([float(tcfg.get("monitor_q0", 0.0))])

    latents = latent_function(cfg, base)

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        y_hat = latents(x, torch.full_like(x[:, :1], float(monitor_q0)), monitor_q0.expand(x.shape[0]))
        return generator.synthesis(y_hat.to(device), monitor_q0.to(device)).cpu()

    monitor = monitor_for(cfg)
    step = run_monitored_training(cfg, {"generator": generator, "discriminator": discriminator}, optimizers, step_fn,
                                  lambda: monitor(reconstruct), max_steps,
                                  lambda name, m: synthesis_state(m) if name == "generator" else m.state_dict())
    if step >= tcfg["steps"]:
        export_decoder(generator.cpu().eval(), "gan", base_id, digest, out_dir / "gan" / f"{base_id}.pt",
                       {"step": step, "config": cfg.get("name")})
    return out_dir / "last.pt"


def train_gan_extreme(cfg: dict, max_steps: int | None = None, init: Path | None = None) -> Path:
    """Train (or resume) an extreme-rate GAN codec (models/extreme.py) end to end: encoder,
    quantizer centres, categorical prior and generator, against a multi-scale discriminator.
    `init` warm-starts the codec (not the discriminator) from a weights file, e.g. the export of a
    distortion-only stage. Exports `<out_dir>/<name>.pt` (usable with SALCODEC_MODEL_PATH) when done."""
    from ..models.extreme import MultiScaleDiscriminator
    from ..models.layers import load_state_resizing_buffers
    from ..models.registry import build_model, export_weights, load_weights_file
    from .loop import build_sampler, learning_rate

    tcfg, mcfg = cfg["train"], cfg["model"]
    out_dir = Path(cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg["seed"])
    hparams = {k: v for k, v in mcfg.items() if k not in ("family", "discriminator_width")}
    model = build_model("gan-extreme", **hparams).train()
    if init is not None:
        warm, _ = load_weights_file(init)
        load_state_resizing_buffers(model, warm.state_dict())  # the coding tables are rebuilt at export
    discriminator = MultiScaleDiscriminator(mcfg.get("discriminator_width", 32))
    betas = tuple(tcfg.get("adam_betas", (0.5, 0.999)))  # (0.9, 0.999) for a distortion-only stage
    optimizers = {"lr_g": torch.optim.Adam(model.parameters(), lr=learning_rate(tcfg["lr_g"], 0), betas=betas),
                  "lr_d": torch.optim.Adam(discriminator.parameters(), lr=learning_rate(tcfg["lr_d"], 0), betas=betas)}
    sampler = build_sampler(cfg, tcfg["seed"])
    weights = loss_weights(tcfg)

    def step_fn(rng: np.random.Generator) -> dict[str, float]:
        x, s, _ = sampler.batch(tcfg["batch"])
        w_hat, symbols = model.quantizer(model.encoder(x))
        # the prior learns the symbols' frequencies (its own cross-entropy: the coded bits per pixel)
        bpp = model.symbol_bits(symbols).sum() / (x.shape[0] * x.shape[2] * x.shape[3])
        return adversarial_step(discriminator, optimizers["lr_g"], optimizers["lr_d"], x, model.generate(w_hat), s,
                                weights, extra={"bpp": bpp})

    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        return model.generate(model.quantizer(model.encoder(x))[0])

    monitor = monitor_for(cfg)
    step = run_monitored_training(cfg, {"model": model, "discriminator": discriminator}, optimizers, step_fn,
                                  lambda: monitor(reconstruct), max_steps)
    if step >= tcfg["steps"]:
        export_weights(model.eval(), "gan-extreme", hparams, out_dir / f"{cfg['name']}.pt", {"step": step})
    return out_dir / "last.pt"
