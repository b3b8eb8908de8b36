"""The extreme-rate GAN codec (gan-extreme): quantizer, rate bound, training steps, real files."""
from __future__ import annotations

import csv
import math
import os

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from salcodec.codec import bitstream, codec
from salcodec.errors import SalcodecError
from salcodec.models.extreme import CentreQuantizer, ExtremeGAN, MultiScaleDiscriminator, rate_bound_bits
from salcodec.models.registry import MODEL_PATH_ENV, export_weights
from salcodec.train.gan import adversarial_step, train_gan_extreme
from tests.conftest import DATA, KODAK

TINY_EXTREME = {"channels": 4, "levels": 5, "width": 16, "noise_channels": 2, "blocks": 1}


def test_quantizer_outputs_only_centres_and_passes_gradients():
    quantizer = CentreQuantizer(levels=5)
    w = (torch.randn(2, 4, 6, 6) * 3).requires_grad_()
    w_hat, symbols = quantizer(w)
    assert torch.isin(w_hat.detach(), quantizer.centres.detach()).all()
    assert torch.equal(w_hat.detach(), quantizer.centres.detach()[symbols])
    assert symbols.min() >= 0 and symbols.max() < 5
    (w_hat * torch.randn_like(w_hat)).sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0  # soft assignments carry the gradient
    assert quantizer.centres.grad is not None and quantizer.centres.grad.abs().sum() > 0


def test_rate_bound():
    assert rate_bound_bits(8, 48, 32, 5) == pytest.approx(8 * 48 * 32 * math.log2(5))
    assert rate_bound_bits(8, 48, 32, 5) / (768 * 512) == pytest.approx(8 * math.log2(5) / 256)  # 0.0726 bpp


def test_generator_and_discriminator_steps_change_both():
    torch.manual_seed(0)
    model, disc = ExtremeGAN(**TINY_EXTREME).train(), MultiScaleDiscriminator(width=8)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    d_before = {k: v.clone() for k, v in disc.state_dict().items()}
    opt_g, opt_d = torch.optim.Adam(model.parameters(), 1e-3), torch.optim.Adam(disc.parameters(), 1e-3)
    weights = {"distortion_weight": 0.01, "adversarial_weight": 1.0, "feature_matching_weight": 1.0,
               "saliency_weighting": "normalised", "saliency_floor": 0.1}
    x = torch.rand(2, 3, 64, 64)
    for _ in range(2):
        w_hat, symbols = model.quantizer(model.encoder(x))
        bpp = model.symbol_bits(symbols).sum() / (2 * 64 * 64)
        terms = adversarial_step(disc, opt_g, opt_d, x, model.generate(w_hat), torch.rand(2, 1, 64, 64), weights,
                                 extra={"bpp": bpp})
    assert all(np.isfinite(v) for v in terms.values()) and "bpp" in terms
    for prefix in ("encoder.", "generator.", "prior_logits"):
        assert any(not torch.equal(before[k], model.state_dict()[k]) for k in before if k.startswith(prefix)), prefix
    assert any(not torch.equal(d_before[k], v) for k, v in disc.state_dict().items())


@pytest.fixture
def extreme_installed(tmp_path, monkeypatch, kodak_crop):
    torch.manual_seed(1)
    model = ExtremeGAN(**TINY_EXTREME)
    with torch.no_grad():  # the prior a trained model would learn: the symbols' frequencies
        x = torch.from_numpy(kodak_crop).permute(2, 0, 1)[None].float() / 255
        symbols = model.quantizer.symbols(model.encoder(x))
        counts = torch.stack([torch.bincount(symbols[0, c].flatten(), minlength=5) for c in range(4)])
        model.prior_logits.copy_(torch.log(counts.float() + 0.5))
    export_weights(model.eval(), "gan-extreme", TINY_EXTREME, tmp_path / "extreme-tiny.pt")
    monkeypatch.setenv(MODEL_PATH_ENV, f"{tmp_path}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    return model


def test_extreme_files_round_trip_below_the_bound(extreme_installed, kodak_crop, monkeypatch):
    enc = codec.encode(kodak_crop, 50, model_name="extreme-tiny")
    decoded = codec.decode(enc.data)
    assert decoded.shape == kodak_crop.shape and np.array_equal(decoded, codec.decode(enc.data))
    stream = bitstream.unpack(enc.data).streams[0]
    h, w = kodak_crop.shape[0] // 16, kodak_crop.shape[1] // 16
    assert 8 * len(stream) < rate_bound_bits(4, h, w, 5)  # the prior beats the bound
    assert abs(8 * len(stream) - enc.estimated_bits) <= 0.02 * enc.estimated_bits + 64
    # tiled coding decodes the same way (the noise is drawn for the whole image, then tiled)
    image = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))
    whole = codec.decode(codec.encode(image, 50, model_name="extreme-tiny").data)
    monkeypatch.setattr(codec, "TILE_ABOVE_PIXELS", 256 * 256)
    monkeypatch.setattr(codec, "TILE_SIDE", 256)
    tiled = codec.encode(image, 50, model_name="extreme-tiny")
    assert bitstream.unpack(tiled.data).header.tile == 256
    assert np.abs(codec.decode(tiled.data).astype(int) - whole.astype(int)).max() <= 1


def test_garbage_extreme_stream_decodes_or_is_refused_in_one_line(extreme_installed, kodak_crop):
    data = bytearray(codec.encode(kodak_crop, 50, model_name="extreme-tiny").data)
    container = bitstream.unpack(bytes(data))
    garbage = bytes(np.random.default_rng(0).integers(0, 256, len(container.streams[0]), dtype=np.uint8))
    forged = bitstream.pack(bitstream.Container(container.header, [garbage]))
    try:
        out = codec.decode(forged)  # garbage may still decode to valid symbols: then it is an image
        assert out.shape == (192, 256, 3)
    except SalcodecError as exc:
        assert "\n" not in str(exc)


def tiny_extreme_config(tmp_path, training_photos, run: str, **train) -> dict:
    return {
        "name": "extreme-test", "out_dir": str(tmp_path / run),
        "model": {"family": "gan-extreme", **TINY_EXTREME, "discriminator_width": 8},
        "data": {"photos": [str(training_photos)], "heldout": str(DATA / "train" / "bsds500" / "test"), "max_side": 256},
        "train": {"steps": 4, "batch": 2, "crop": 64, "lr_g": [[0, 1e-4]], "lr_d": [[0, 1e-4]],
                  "distortion_weight": 0.01, "adversarial_weight": 0.5, "seed": 0, "log_every": 2,
                  "monitor_every": 2, "monitor_images": 1, "monitor_side": 64, "checkpoint_every": 2} | train,
    }


def test_gan_extreme_training_command(tmp_path, training_photos):
    cfg = tiny_extreme_config(tmp_path, training_photos, "run")
    config = tmp_path / "extreme.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from salcodec.cli import main
    assert main(["train", "--config", str(config)]) == 0
    with (tmp_path / "run" / "monitor.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [0, 2, 4]
    with (tmp_path / "run" / "log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert "bpp" in rows[0] and float(rows[-1]["bpp"]) <= 4 * math.log2(5) / 256 + 1e-6
    assert (tmp_path / "run" / "extreme-test.pt").is_file()


def test_a_distortion_only_stage_leaves_the_discriminator_out_and_warm_starts_the_gan_stage(tmp_path, training_photos):
    warm_up = tiny_extreme_config(tmp_path, training_photos, "warm-up", steps=2, adversarial_weight=0.0,
                                  feature_matching_weight=0.0)
    train_gan_extreme(warm_up)
    with (tmp_path / "warm-up" / "log.csv").open() as fh:
        row = list(csv.DictReader(fh))[-1]
    assert float(row["d_loss"]) == 0 and float(row["g_adversarial"]) == 0 and float(row["distortion"]) > 0
    discriminator = torch.load(tmp_path / "warm-up" / "last.pt", weights_only=False)["discriminator"]
    torch.manual_seed(0)  # the trainer's seed, then its codec: the discriminator it built before any step
    ExtremeGAN(**TINY_EXTREME)
    untouched = MultiScaleDiscriminator(width=8)
    assert all(torch.equal(v, untouched.state_dict()[k]) for k, v in discriminator.items())

    exported = tmp_path / "warm-up" / "extreme-test.pt"
    train_gan_extreme(tiny_extreme_config(tmp_path, training_photos, "gan"), max_steps=0, init=exported)
    start = torch.load(tmp_path / "gan" / "last.pt", weights_only=False)["model"]
    warm = torch.load(exported, weights_only=True)["state_dict"]
    assert all(torch.equal(start[k], v.float()) for k, v in warm.items() if v.is_floating_point())
