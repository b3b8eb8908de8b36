"""Safe writes, interruption and determinism across processes and thread counts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from salcodec.codec import image_io
from salcodec.errors import SalcodecError
from tests.conftest import KODAK, TINY


def test_failure_mid_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "out.sgc"
    real_fdopen = os.fdopen

    class Failing:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            self.fh.flush()
            raise OSError("disk full (injected)")

    monkeypatch.setattr(image_io.os, "fdopen", lambda fd, mode: Failing(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="injected"):
        image_io.atomic_write(target, b"x" * 1000)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_mid_write_leaves_no_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    real_fdopen = os.fdopen

    def interrupted(fd, mode):
        fh = real_fdopen(fd, mode)
        fh.write(b"partial")
        fh.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(image_io.os, "fdopen", interrupted)
    with pytest.raises(KeyboardInterrupt):
        image_io.atomic_write(target, b"data")
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_force(tmp_path):
    target = tmp_path / "keep.sgc"
    target.write_bytes(b"old")
    with pytest.raises(SalcodecError, match="exists"):
        image_io.atomic_write(target, b"new")
    image_io.atomic_write(target, b"new", force=True)
    assert target.read_bytes() == b"new"


def _salcodec(*args: str) -> subprocess.Popen:
    """salcodec in a child process that takes Ctrl-C as a terminal gives it, even where the test
    suite runs in the background (`cmd &` ignores SIGINT, children inherit that, and Python then
    never raises KeyboardInterrupt: the compression would finish and the test would skip)."""
    return subprocess.Popen([sys.executable, "-m", "salcodec", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_ctrl_c_leaves_no_output(tmp_path):
    big = tmp_path / "big.png"
    Image.open(KODAK / "kodim23.png").resize((4608, 3072)).save(big)  # long enough to interrupt mid-way
    out = tmp_path / "big.sgc"
    # the shipped model: 14 megapixels take it half a minute, so the interrupt lands mid-way on any
    # machine (the tiny model, with oneDNN, could finish first and leave nothing to test)
    proc = _salcodec("compress", str(big), "-o", str(out), "--saliency", "none")
    time.sleep(5.0)  # imports done, coding under way
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("compression finished before the interrupt arrived")
    assert proc.returncode == 130, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]


def test_decoding_is_identical_across_processes_and_thread_counts(tmp_path):
    crop = tmp_path / "crop.png"
    Image.open(KODAK / "kodim05.png").crop((100, 100, 420, 356)).save(crop)
    outputs = []
    for enc_threads, dec_threads in (("2", "1"), ("1", "2")):
        sgc = tmp_path / f"e{enc_threads}.sgc"
        png = tmp_path / f"e{enc_threads}_d{dec_threads}.png"
        for args in (("--threads", enc_threads, "compress", str(crop), "-o", str(sgc), "--model", TINY),
                     ("--threads", dec_threads, "decompress", str(sgc), "-o", str(png))):
            proc = _salcodec(*args)
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        outputs.append((sgc.read_bytes(), np.asarray(Image.open(png))))
    assert outputs[0][0] == outputs[1][0]  # same file whatever the encoder's thread count
    assert np.array_equal(outputs[0][1], outputs[1][1])


def test_shipped_transforms_give_the_same_floats_whatever_the_thread_count():
    """oneDNN stays on while coding; its 1×1 convolutions (GDN, SFT) would round differently
    with another thread count, so those run natively (models/layers.native_kernels_when_coding).
    Floats, not files: a tiny difference changes a file only when it flips a rounding."""
    import torch

    from salcodec.models.hyperprior import analyze, synthesize
    from salcodec.models.registry import load_model

    assert torch.backends.mkldnn.enabled
    model, _ = load_model("default-v4")
    pixels = np.asarray(Image.open(KODAK / "kodim05.png").convert("RGB"))[:256, :320]
    x = torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 255
    q, q0 = torch.full((1, 1, 256, 320), 0.6), torch.tensor([0.6])
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            with torch.inference_mode():
                y, _ = analyze(model, x, q, q0)
                results.append((y, synthesize(model, torch.round(y), q0)))
    finally:
        torch.set_num_threads(threads)
    for y, x_hat in results[1:]:
        assert torch.equal(y, results[0][0]) and torch.equal(x_hat, results[0][1])
