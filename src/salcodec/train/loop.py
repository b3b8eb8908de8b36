"""`salcodec train --config FILE`: the training loop that produced the shipped codec weights.

Under torchrun (`torchrun --nproc_per_node=N -m salcodec train --config FILE`) the same loop
trains with DistributedDataParallel: gloo on CPU, nccl on GPU; each rank draws its own crops.

Resumable: the full state (weights, optimizers, step, random generators) is saved to
`<out_dir>/last.pt` every `checkpoint_every` steps and picked up on the next start.
`--init WEIGHTS` (or `train.init` in the config) warm-starts from a weights-only file with
fresh optimizers.

For a lent GPU (minutes, not hours): `train.loader_workers` cuts crops in worker processes,
and `train.minutes` fits the run to a wall-clock budget: after `SPEED_PROBE_STEPS` steps the
step count, and the learning-rate milestones with it, are scaled to the measured speed, so the
schedule still ends with its low-rate phase. The log records the steps actually run. Workers
draw from streams seeded by the step a run starts at, so a resumed run does not replay crops.
"""
from __future__ import annotations

import copy
import csv
import json
import os
import signal
import threading
import time
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from ..errors import SalcodecError
from ..models.layers import load_state_resizing_buffers
from ..models.registry import build_model, export_weights, stored_weights, weights_digest
from .data import BatchStream, CropSampler, load_photo_folder, load_saliency_set
from .objectives import make_objective


def load_config(path: Path) -> dict:
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SalcodecError(f"cannot read config {path}: {exc}") from None


SPEED_PROBE_STEPS = 60  # steps timed (after the first 10) before a time budget sets the step count


def learning_rate(schedule: list[list[float]], step: int) -> float:
    """Piecewise-constant schedule: [[from_step, lr], ...]."""
    lr = schedule[0][1]
    for start, value in schedule:
        if step >= start:
            lr = value
    return lr


def build_sampler(cfg: dict, seed: int) -> CropSampler:
    data = cfg["data"]
    max_side = data.get("max_side", 1024)
    samples = []
    for folder in data.get("photos", []):
        samples += load_photo_folder(Path(folder), max_side)
    for folder in data.get("saliency_sets", []):
        samples += load_saliency_set(Path(folder), "train", Path(data["splits"]), max_side)
    return CropSampler(samples, cfg["train"]["crop"], seed, data.get("max_zoom", 1.6))


class Distributed:
    """Rank, world size and device; torchrun's environment turns on DDP (gloo on CPU, nccl on GPU)."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        if self.world > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def same_weights_everywhere(self, model: torch.nn.Module) -> bool:
        """True when every rank holds bit-identical weights (a DDP sanity check at the end of a run)."""
        digest = weights_digest({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if self.world == 1:
            return True
        gathered: list[bytes | None] = [None] * self.world
        dist.all_gather_object(gathered, digest)
        return all(d == gathered[0] for d in gathered)

    def close(self) -> None:
        if self.world > 1:
            dist.destroy_process_group()


def train(config_path: Path, init: Path | None = None, max_steps: int | None = None) -> Path:
    """Train (or resume) the model a config describes; returns the path of the last checkpoint.

    A config of family `gan-decoder` trains a generative decoder for a shipped model, one of
    family `gan-extreme` an extreme-rate GAN codec (both in gan.py), one of family `fast-decoder`
    a narrower decoder for a shipped model's files (fast_decoder.py), one of family `fast-encoder`
    a narrower encoder writing them (fast_encoder.py), one of family `hyper-synthesis` a shipped
    model with its h_s retrained for rate alone (hyper_synthesis.py).
    A config with `train.lambdas` describes a ladder of fixed-rate models: rung 0 trains from
    scratch for `steps`, every other rung is fine-tuned from rung 0 for `finetune_steps`; each
    rung is exported to `<out_dir>/models/<name>-l<i>.pt` (usable with SALCODEC_MODEL_PATH).
    """
    cfg = load_config(config_path)
    if init is None and "init" in cfg["train"]:
        init = Path(cfg["train"]["init"])
    if init is not None and not init.is_file():
        raise SalcodecError(f"warm-start weights {init} not found (a config's train.init names the run that makes them)")
    if cfg["model"]["family"] == "gan-decoder":
        from .gan import train_gan_decoder
        return train_gan_decoder(cfg, max_steps)
    if cfg["model"]["family"] == "fast-decoder":
        from .fast_decoder import train_fast_decoder
        return train_fast_decoder(cfg, max_steps)
    if cfg["model"]["family"] == "fast-encoder":
        from .fast_encoder import train_fast_encoder
        return train_fast_encoder(cfg, max_steps)
    if cfg["model"]["family"] == "hyper-synthesis":
        from .hyper_synthesis import train_hyper_synthesis
        return train_hyper_synthesis(cfg, max_steps)
    if cfg["model"]["family"] == "gan-extreme":
        from .gan import train_gan_extreme
        return train_gan_extreme(cfg, max_steps, init)
    if "lambdas" in cfg["train"]:
        return _train_ladder(cfg, init, max_steps)
    return _train(cfg, init, max_steps)


def _train_ladder(cfg: dict, init: Path | None, max_steps: int | None) -> Path:
    out_dir = Path(cfg["out_dir"])
    models = out_dir / "models"
    hparams = {k: v for k, v in cfg["model"].items() if k != "family"}
    last = out_dir
    for rung, lmbda in enumerate(cfg["train"]["lambdas"]):
        exported = models / f"{cfg['name']}-l{rung}.pt"
        if exported.is_file():
            continue
        tcfg = {k: v for k, v in cfg["train"].items() if k != "lambdas"} | {"lambda": lmbda}
        if rung:
            tcfg["steps"] = cfg["train"]["finetune_steps"]
        rung_cfg = cfg | {"name": f"{cfg['name']}-l{rung}", "out_dir": str(out_dir / f"rung{rung}"), "train": tcfg}
        last = _train(rung_cfg, models / f"{cfg['name']}-l0.pt" if rung else init, max_steps)
        state = torch.load(last, map_location="cpu", weights_only=False)
        if state["step"] < tcfg["steps"]:
            return last  # stopped early (--max-steps): resume later
        model = build_model(cfg["model"]["family"], **hparams)
        load_state_resizing_buffers(model, state["model"])
        export_weights(model.eval(), cfg["model"]["family"], hparams, exported, {"lambda": lmbda, "step": state["step"]})
    return last


def _stop_cleanly_on_signals() -> dict:
    """SIGTERM (schedulers, `kill`) and SIGINT stop training through KeyboardInterrupt, so the
    `finally` below saves the state; a shell starts background jobs with SIGINT ignored.
    Returns the previous handlers, which `_train` puts back when it ends."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return previous


def _restore_signal_handlers(previous: dict) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _widen_input_channels(weights: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fit a warm start to a model with extra input channels (the saliency input of
    `bls2017-salenc`): the old channels keep their weights, the new ones start at zero, so the
    widened model first computes exactly what the warm start did."""
    widened = dict(weights)
    for name, value in weights.items():
        want = target.get(name)
        if (want is not None and value.dim() == 4 and want.dim() == 4 and value.shape[0] == want.shape[0]
                and value.shape[2:] == want.shape[2:] and value.shape[1] < want.shape[1]):
            padded = torch.zeros_like(want)
            padded[:, :value.shape[1]] = value
            widened[name] = padded
    return widened


def _train(cfg: dict, init: Path | None = None, max_steps: int | None = None) -> Path:
    tcfg, mcfg = cfg["train"], cfg["model"]
    previous_handlers = _stop_cleanly_on_signals()
    ctx = Distributed()
    out_dir = Path(cfg["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(tcfg["seed"])  # the same initial weights on every rank

    hparams = {k: v for k, v in mcfg.items() if k != "family"}
    model = build_model(mcfg["family"], **hparams)
    step = 0
    last = out_dir / "last.pt"
    state = torch.load(last, map_location="cpu", weights_only=False) if last.is_file() else None
    if state is not None:
        load_state_resizing_buffers(model, state["model"])
        step = state["step"]
    elif init is not None:
        _, weights = stored_weights(init)  # a file stored as differences from a base comes whole
        # a warm start may come from an earlier version of the architecture: new parameters keep their init
        missing = set(model.state_dict()) - set(weights)
        weights = _widen_input_channels(weights, model.state_dict())
        load_state_resizing_buffers(model, weights, strict=False)
        if missing and ctx.main:
            print(f"warm start from {init}: {len(missing)} new tensors initialised fresh: {sorted(missing)[:6]}")
    model.to(ctx.device)
    main_params = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux_params = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    optimizer = torch.optim.Adam(main_params, lr=learning_rate(tcfg["lr"], 0))
    aux_optimizer = torch.optim.Adam(aux_params, lr=tcfg.get("aux_lr", 1e-3))
    # every rank draws its own crops: a different seed per rank shards the random data stream
    sampler = build_sampler(cfg, tcfg["seed"] + 1000 * ctx.rank + (step if ctx.rank else 0))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        aux_optimizer.load_state_dict(state["aux_optimizer"])
        if ctx.main:
            sampler.rng.bit_generator.state = state["sampler_rng"]
            torch.set_rng_state(state["torch_rng"])
    net = DDP(model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None) if ctx.world > 1 else model

    def save() -> None:
        if not ctx.main:
            return
        if not all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point()):
            print(f"warning: weights are not finite at step {step}; {last} keeps the last good state")
            return
        tmp = last.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "aux_optimizer": aux_optimizer.state_dict(), "sampler_rng": sampler.rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "step": step, "config": cfg, "world_size": ctx.world}, tmp)
        tmp.replace(last)

    log_file, log = None, None
    if ctx.main:
        log_path = out_dir / "log.csv"
        new_log = not log_path.exists()
        log_file = log_path.open("a", newline="")
        log = csv.writer(log_file)
        if new_log:
            log.writerow(["step", "wall_s", "lr", "loss", "bpp", "mse", "psnr", "aux", "skipped"])

    total = tcfg["steps"] if max_steps is None else min(tcfg["steps"], step + max_steps)
    schedule_scale = 1.0  # a time budget stretches or shrinks the configured schedule
    budget_s = 60.0 * tcfg["minutes"] if "minutes" in tcfg else None
    batches = None
    if tcfg.get("loader_workers", 0) > 0:
        stream = BatchStream(sampler, tcfg["batch"], tcfg["seed"] + 1000 * ctx.rank + step)
        batches = iter(torch.utils.data.DataLoader(
            stream, batch_size=None, num_workers=tcfg["loader_workers"], prefetch_factor=4,
            pin_memory=ctx.device.type == "cuda", persistent_workers=True))
    if ctx.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick its fastest kernels
    objective = make_objective(mcfg["family"], tcfg)
    log_every = tcfg.get("log_every", 50)
    running: dict[str, float] = {}
    skipped, max_skipped = 0, tcfg.get("max_skipped_steps", 100)
    model.train()
    start = time.time()
    probe_step, probe_time = step + 10, None
    bar = tqdm(total=total, initial=step, desc=cfg.get("name", "train"), dynamic_ncols=True, disable=not ctx.main)
    try:
        while step < total and (budget_s is None or time.time() - start < budget_s):
            lr = learning_rate(tcfg["lr"], step / schedule_scale)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = next(batches) if batches is not None else sampler.batch(tcfg["batch"])
            x, s, q = (t.to(ctx.device, non_blocking=True) for t in batch)
            terms = objective(net, x, s, q)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(main_params, tcfg.get("clip", 1.0))
            # a rare batch with a non-finite gradient would poison Adam's moments for good: skip it
            # (every rank sees the same all-reduced gradient, so all ranks skip together)
            if not torch.isfinite(grad_norm):
                skipped += 1
                if ctx.main:
                    tqdm.write(f"step {step}: skipped a batch (loss {terms['loss'].item():.4g}, "
                               f"bpp {terms['bpp'].item():.4g}, gradient norm {grad_norm.item()})")
                if skipped > max_skipped:
                    raise SalcodecError(f"training diverged: {skipped} steps with non-finite loss or gradients "
                                        f"(last at step {step}); lower the learning rate or resume from a snapshot")
                continue
            optimizer.step()
            aux = model.aux_loss()  # a function of the (identical) weights alone: no sync needed
            aux_optimizer.zero_grad(set_to_none=True)
            if torch.isfinite(aux):
                aux.backward()
                aux_optimizer.step()
            step += 1
            bar.update(1)
            if budget_s is not None and step == probe_step:
                probe_time = time.time()
            elif budget_s is not None and step == probe_step + SPEED_PROBE_STEPS:
                rate = SPEED_PROBE_STEPS / (time.time() - probe_time)
                fitted = [step + int(rate * (budget_s - (time.time() - start)))]
                if ctx.world > 1:
                    dist.broadcast_object_list(fitted, src=0)  # every rank stops at the same step
                total = fitted[0] if max_steps is None else min(fitted[0], total)  # --max-steps still caps it
                schedule_scale = total / tcfg["steps"]
                bar.total = total
                if ctx.main:
                    tqdm.write(f"{rate:.2f} steps/s: {total} steps fit the {tcfg['minutes']} min budget; "
                               f"learning-rate milestones scaled by {schedule_scale:.3f}")

            for key, value in terms.items():
                running[key] = running.get(key, 0.0) + value.item()
            running["aux"] = running.get("aux", 0.0) + aux.item()
            running["n"] = running.get("n", 0.0) + 1  # after a resume the first window is shorter
            if step % log_every == 0:
                avg = {k: v / running["n"] for k, v in running.items()}
                if log is not None:
                    log.writerow([step, round(time.time() - start, 1), lr]
                                 + [round(avg[k], 5) for k in ("loss", "bpp", "mse", "psnr", "aux")] + [skipped])
                    log_file.flush()
                bar.set_postfix(bpp=f"{avg['bpp']:.3f}", psnr=f"{avg['psnr']:.2f}", loss=f"{avg['loss']:.3f}")
                running = {}
            if step % tcfg.get("checkpoint_every", 500) == 0:
                save()
            if step % tcfg.get("snapshot_every", 5000) == 0 and ctx.main:
                export_weights(copy.deepcopy(model).cpu().eval(), mcfg["family"], hparams,
                               out_dir / "snapshots" / f"step{step:07d}.pt", {"step": step})
        if ctx.world > 1:
            consistent = ctx.same_weights_everywhere(model)
            dist.barrier()  # no rank tears its process group down while another still talks to it
            if ctx.main:
                (out_dir / "ddp_check.json").write_text(json.dumps({"step": step, "world_size": ctx.world,
                                                                    "identical_weights": consistent}))
    finally:
        save()
        if log_file is not None:
            log_file.close()
        bar.close()
        ctx.close()
        _restore_signal_handlers(previous_handlers)
    return last
