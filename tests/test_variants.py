"""Every bls2017 variant config trains a few steps through the λ ladder and its models code images."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from salcodec.cli import main
from salcodec.codec import codec
from salcodec.models.registry import MODEL_PATH_ENV, build_model
from salcodec.train.loop import _widen_input_channels
from tests.conftest import DATA, REPO

CONFIGS = sorted((REPO / "configs" / "bls2017").glob("*.yaml"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    for src in sorted((DATA / "train" / "bsds500" / "val").glob("*.jpg"))[:3]:
        shutil.copy(src, folder / src.name)
    return folder


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_variant_trains_and_codes(config, photos, tmp_path, monkeypatch, kodak_crop):
    cfg = yaml.safe_load(config.read_text())
    cfg["out_dir"] = str(tmp_path / "run")
    cfg["data"] = {"photos": [str(photos)], "max_side": 256}
    cfg["model"] |= {"N": 16, "M": 24}
    cfg["train"].pop("init", None)  # the shared warm start is an N=64 model
    cfg["train"] |= {"lambdas": cfg["train"]["lambdas"][:2], "steps": 3, "finetune_steps": 2, "batch": 2,
                     "log_every": 1, "checkpoint_every": 2, "snapshot_every": 1000}
    path = tmp_path / config.name
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path)]) == 0
    models = tmp_path / "run" / "models"
    rungs = range(len(cfg["train"]["lambdas"]))  # two, or one for the warm start
    assert sorted(p.name for p in models.iterdir()) == [f"{cfg['name']}-l{i}.pt" for i in rungs]
    monkeypatch.setenv(MODEL_PATH_ENV, str(models))
    saliency = np.zeros(kodak_crop.shape[:2], np.float32)
    saliency[40:120, 60:200] = 1
    enc = codec.encode(kodak_crop, 50, saliency, 0.5, f"{cfg['name']}-l{rungs[-1]}")
    assert codec.decode(enc.data).shape == kodak_crop.shape


def test_warm_start_widens_to_the_saliency_input(tmp_path):
    """A 3-channel warm start loads into the 4-channel salenc encoder, which then computes what the
    warm start did whatever the map says: the new channel starts at zero weight."""
    torch.manual_seed(0)
    plain = build_model("bls2017", N=16, M=24).eval()
    salenc = build_model("bls2017", N=16, M=24, saliency_input=True).eval()
    widened = _widen_input_channels(plain.state_dict(), salenc.state_dict())
    assert widened["g_a.0.weight"].shape[1] == 4
    salenc.load_state_dict(widened)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected = plain.g_a(x)
        for saliency in (torch.zeros(1, 1, 64, 64), torch.rand(1, 1, 64, 64)):
            assert torch.allclose(salenc.g_a(torch.cat([x, saliency], 1)), expected, atol=1e-6)
