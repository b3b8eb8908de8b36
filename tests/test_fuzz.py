"""A short fuzz run: mutated .sgc files and broken images give SalcodecError or a valid result, nothing else.
The long run (>= 100,000 inputs) is fuzz/run.py."""
from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fuzz.mutations import mutate
from salcodec import runtime
from salcodec.codec import codec
from salcodec.codec.image_io import load_image
from salcodec.errors import SalcodecError
from tests.conftest import TINY

MAX_PIXELS = 1 << 20  # a fuzzed header may claim any size; keep what a mutant can allocate small


@pytest.fixture(scope="module")
def seeds() -> list[bytes]:
    rng = np.random.default_rng(7)
    files = []
    for shape, quality in (((40, 56), 30), ((64, 64), 90), ((17, 130), 60)):
        image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
        files.append(codec.encode(image, quality, model_name=TINY).data)
    return files


def check_decode(data: bytes, engine: str = "torch") -> None:
    try:
        out = runtime.decode(data, "mse", engine, MAX_PIXELS)
    except SalcodecError as exc:
        assert "\n" not in str(exc)
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_decoder_survives_mutants(seeds, seed, engine):
    """`onnx` runs as `auto` does: the onnx engine where it vouches for a file, torch elsewhere."""
    rng = random.Random(seed)
    check_decode(mutate(rng.choice(seeds), rng.choice(seeds), rng), "auto" if engine == "onnx" else engine)


@pytest.fixture(scope="module")
def image_files() -> list[bytes]:
    img = Image.fromarray(np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    files = []
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF"):
        buf = io.BytesIO()
        img.save(buf, format=fmt)
        files.append(buf.getvalue())
    return files


@settings(max_examples=100, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_image_loader_survives_broken_images(image_files, seed, tmp_path_factory):
    rng = random.Random(seed)
    data = mutate(rng.choice(image_files), rng.choice(image_files), rng)
    path = tmp_path_factory.mktemp("img") / "broken"
    path.write_bytes(data)
    try:
        arr = load_image(path, max_pixels=MAX_PIXELS)
    except SalcodecError:
        return
    assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
