"""Saliency: metric values by hand, map storage, predictors, and the learned model's training."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from salcodec import saliency
from salcodec.saliency import metrics as M
from salcodec.saliency.io import encode_map_png, load_saliency_map
from tests.conftest import DATA


def test_cc_and_sim_by_hand():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert M.cc(a, a) == pytest.approx(1.0)
    assert M.cc(a, -a) == pytest.approx(-1.0)
    assert M.sim(a, a) == pytest.approx(1.0)
    # distributions [0.5, 0.5, 0, 0] and [0, 0.5, 0.5, 0]: overlap 0.5
    assert M.sim(np.array([[1.0, 1.0], [0, 0]]), np.array([[0, 1.0], [1.0, 0]])) == pytest.approx(0.5)


def test_nss_by_hand():
    pred = np.array([[0.0, 0.0], [0.0, 4.0]])  # mean 1, std sqrt(3)
    fix = np.array([[0, 0], [0, 1]], bool)
    assert M.nss(pred, fix) == pytest.approx(3 / math.sqrt(3))


def test_kld_by_hand():
    g = np.array([[1.0, 1.0]])
    p = np.array([[3.0, 1.0]])  # distributions [0.5, 0.5] vs [0.75, 0.25]
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert M.kld(p, g) == pytest.approx(expected, abs=1e-9)
    assert M.kld(g, g) == pytest.approx(0.0, abs=1e-12)


def test_auc_judd_by_hand():
    pred = np.array([[0.9, 0.8, 0.1, 0.2]])
    assert M.auc_judd(pred, np.array([[1, 1, 0, 0]], bool)) == pytest.approx(1.0)
    # fixations on the two lowest values: thresholds 0.2 -> (fp 1, tp .5), 0.1 -> (1, 1); area 0.25
    assert M.auc_judd(pred, np.array([[0, 0, 1, 1]], bool)) == pytest.approx(0.25)
    # fixations at 0.9 and 0.2: thresholds 0.9 -> (fp 0, tp .5), 0.2 -> (fp .5, tp 1); area 0.875
    assert M.auc_judd(pred, np.array([[1, 0, 0, 1]], bool)) == pytest.approx(0.875)


def test_alpha_and_gray_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    sal = rng.random((30, 40)).astype(np.float32)
    for fmt in ("gray", "alpha"):
        path = tmp_path / f"{fmt}.png"
        path.write_bytes(encode_map_png(sal, image, fmt))
        back = load_saliency_map(path, (30, 40))
        np.testing.assert_allclose(back, np.round(sal * 255) / 255, atol=1e-6)
        if fmt == "alpha":
            assert np.array_equal(np.asarray(Image.open(path))[:, :, :3], image)


@pytest.mark.parametrize("method", list(saliency.METHODS))
def test_predictors_shape_range_determinism(method):
    image = np.asarray(Image.open(DATA / "kodak" / "kodim04.png").convert("RGB"))
    a, b = saliency.predict(image, method), saliency.predict(image, method)
    assert a.shape == image.shape[:2] and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1 and a.max() > 0
    assert np.array_equal(a, b)


def test_saliency_cli_writes_both_formats(tmp_path):
    from salcodec.cli import main
    src = DATA / "kodak" / "kodim04.png"
    for fmt in ("gray", "alpha"):
        out = tmp_path / fmt
        out.mkdir()
        assert main(["saliency", str(src), "--out-dir", str(out), "--format", fmt, "--method", "sr-centre"]) == 0
        img = Image.open(out / "kodim04.png")
        assert img.mode == ("L" if fmt == "gray" else "RGBA") and img.size == (512, 768)


def test_learned_model_training_lowers_the_loss(tmp_path):
    from salcodec.saliency.train import train_saliency
    src = DATA / "saliency" / "nus_scene"
    root = tmp_path / "nus_scene"
    ids = json.loads((DATA / "saliency" / "splits.json").read_text())["nus_scene"]
    train_ids, val_ids = ids["train"][:6], ids["val"][:2]
    for sub in ("images", "maps", "fixations"):
        (root / sub).mkdir(parents=True)
    for image_id in train_ids + val_ids:
        shutil.copy(next((src / "images").glob(f"{image_id}.*")), root / "images")
        shutil.copy(src / "maps" / f"{image_id}.png", root / "maps")
        shutil.copy(src / "fixations" / f"{image_id}.png", root / "fixations")
    (tmp_path / "splits.json").write_text(json.dumps({"nus_scene": {"train": train_ids, "val": val_ids}}))
    cfg = {"out_dir": str(tmp_path / "run"), "model": {"width": 8, "hidden": 8, "steps": 2, "priors": 4},
           "data": {"sets": [str(root)], "splits": str(tmp_path / "splits.json")},
           "train": {"steps": 40, "batch": 4, "lr": 3e-3, "seed": 0, "val_every": 20}}
    config = tmp_path / "sal.yaml"
    config.write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    train_saliency(config)
    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    first, last = (dict(zip(header, r.split(","))) for r in (rows[1], rows[-1]))
    assert float(last["loss"]) < float(first["loss"])
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 40
