"""Shared fixtures: a tiny random model registered under the id 'tiny' for fast logic tests."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
KODAK = DATA / "kodak"
TINY = "tiny"


@pytest.fixture(scope="session", autouse=True)
def tiny_model_dir(tmp_path_factory) -> Path:
    from salcodec.models.registry import MODEL_PATH_ENV, build_model, export_weights
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    model = build_model("quality-map-hyperprior", N=16, M=24)
    export_weights(model.eval(), "quality-map-hyperprior", {"N": 16, "M": 24}, folder / f"{TINY}.pt")
    os.environ[MODEL_PATH_ENV] = str(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def engine_cache(tmp_path_factory) -> Path:
    """The onnx engine's cache of exported graphs, fresh for each test session (subprocesses inherit it)."""
    from salcodec.runtime.bundle import CACHE_ENV
    folder = tmp_path_factory.mktemp("engine-cache")
    os.environ[CACHE_ENV] = str(folder)
    return folder


@pytest.fixture(scope="session")
def kodak_crop() -> np.ndarray:
    """A 192×256 crop of kodim23: real photo content, small enough for quick end-to-end tests."""
    return np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))[160:352, 256:512].copy()


@pytest.fixture
def training_photos(tmp_path) -> Path:
    """A folder of three BSDS500 val photos: enough for a training command to run a few steps."""
    import shutil
    folder = tmp_path / "photos"
    folder.mkdir()
    for src in sorted((DATA / "train" / "bsds500" / "val").glob("*.jpg"))[:3]:
        shutil.copy(src, folder / src.name)
    return folder


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
