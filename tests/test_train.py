"""The training command: a few steps lower the loss, checkpoints resume where they stopped."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import torch
import yaml

from salcodec.cli import main
from salcodec.models.registry import load_weights_file
from tests.conftest import DATA


def tiny_config(tmp_path, steps: int) -> str:
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    for src in sorted((DATA / "train" / "bsds500" / "val").glob("*.jpg"))[:4]:
        shutil.copy(src, photos / src.name)
    cfg = {
        "name": "tiny-test", "out_dir": str(tmp_path / "run"),
        "model": {"family": "quality-map-hyperprior", "N": 16, "M": 24},
        "data": {"photos": [str(photos)], "max_side": 256},
        "train": {"steps": steps, "batch": 4, "crop": 64, "lr": [[0, 2e-3]], "lambda_min": 0.0018,
                  "lambda_max": 0.12, "seed": 0, "log_every": 5, "checkpoint_every": 10, "snapshot_every": 20},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def read_log(tmp_path) -> list[dict]:
    with (tmp_path / "run" / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_training_lowers_the_loss_and_resumes(tmp_path):
    torch.manual_seed(0)
    config = tiny_config(tmp_path, steps=60)
    assert main(["train", "--config", config, "--max-steps", "40"]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["step"] == 40
    rows = read_log(tmp_path)
    first, last = float(rows[0]["loss"]), float(rows[-1]["loss"])
    assert last < 0.7 * first, (first, last)

    assert main(["train", "--config", config]) == 0  # resumes at 40 and stops at the config's 60
    rows = read_log(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(5, 61, 5))
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 60

    snapshot = tmp_path / "run" / "snapshots" / "step0000040.pt"
    model, digest = load_weights_file(snapshot)  # a snapshot is a loadable weights-only model
    assert len(digest) == 8 and model.entropy_bottleneck._quantized_cdf.numel() > 0


def test_ddp_two_cpu_processes_end_with_identical_weights(tmp_path):
    import json
    import os
    import subprocess
    import sys
    config = tiny_config(tmp_path, steps=6)
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "salcodec", "train", "--config", config], capture_output=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    check = json.loads((tmp_path / "run" / "ddp_check.json").read_text())
    assert check == {"step": 6, "world_size": 2, "identical_weights": True}
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["world_size"] == 2


def test_a_non_finite_batch_is_skipped_and_never_saved(tmp_path, monkeypatch):
    from salcodec.train import objectives
    original = objectives.QualityMapObjective.__call__
    calls = {"n": 0}

    def poisoned(self, net, x, s, q):
        calls["n"] += 1
        if calls["n"] == 3:  # one batch whose loss (hence gradient) is NaN
            x = x * float("nan")
        return original(self, net, x, s, q)

    monkeypatch.setattr(objectives.QualityMapObjective, "__call__", poisoned)
    assert main(["train", "--config", tiny_config(tmp_path, steps=10)]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert read_log(tmp_path)[-1]["skipped"] == "1"


def test_sigterm_stops_training_and_saves_the_state(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    config = tiny_config(tmp_path, steps=100_000)
    cfg = yaml.safe_load(open(config))
    cfg["train"] |= {"checkpoint_every": 10**9, "snapshot_every": 10**9}  # only a save on exit can write last.pt
    Path(config).write_text(yaml.safe_dump(cfg))
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "salcodec", "train", "--config", config], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "run" / "log.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and len(log.read_text().splitlines()) >= 3):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["step"] >= 10  # the state was saved where the signal stopped it


def test_exported_weights_keep_constant_buffers_exact(tmp_path):
    """fp16 export applies to learned parameters only: a likelihood bound of 1e-9 flushed to zero
    gave infinite rates (and NaN gradients when training resumed from such a file)."""
    from salcodec.models.registry import build_model, export_weights
    model = build_model("quality-map-hyperprior", N=16, M=24).eval()
    export_weights(model, "quality-map-hyperprior", {"N": 16, "M": 24}, tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)["state_dict"]
    for name in ("entropy_bottleneck.likelihood_lower_bound.bound", "gaussian_conditional.likelihood_lower_bound.bound",
                 "g_a_gdn.0.beta_reparam.pedestal"):
        assert state[name].dtype == torch.float32 and state[name].item() > 0, name
    assert state["g_a.0.weight"].dtype == torch.float16


def test_a_time_budget_fits_steps_and_schedule_and_workers_feed_the_loop(tmp_path, monkeypatch):
    """`train.minutes` ends the run near its budget with the lr milestones scaled to the steps
    that fit; `train.loader_workers` cuts the crops in worker processes."""
    from salcodec.train import loop

    monkeypatch.setattr(loop, "SPEED_PROBE_STEPS", 5)  # the fit happens at step 15
    config = tiny_config(tmp_path, steps=100_000)
    cfg = yaml.safe_load(Path(config).read_text())
    cfg["train"] |= {"minutes": 0.4, "loader_workers": 2, "lr": [[0, 2e-3], [50_000, 1e-3]], "snapshot_every": 10**9}
    Path(config).write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", config]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert 15 < state["step"] < 100_000
    rows = read_log(tmp_path)
    assert float(rows[-1]["wall_s"]) < 0.4 * 60 + 5
    assert float(rows[0]["lr"]) == 2e-3
    assert state["optimizer"]["param_groups"][0]["lr"] == 1e-3  # the 50,000 milestone moved below the end


def test_batch_stream_workers_draw_different_crops(tmp_path):
    from salcodec.train.data import BatchStream, CropSampler, load_photo_folder

    samples = load_photo_folder(DATA / "train" / "bsds500" / "val", 256)[:3]
    stream = BatchStream(CropSampler(samples, 32, seed=0), batch=2, seed=0)
    loader = iter(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2))
    first, second = next(loader), next(loader)  # one batch from each worker
    assert first[0].shape == (2, 3, 32, 32)
    assert not torch.equal(first[0], second[0])
