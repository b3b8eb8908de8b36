"""The GAN decoder: training steps move the right networks, the same file decodes two ways,
and a decoder is never paired with weights it was not trained for."""
from __future__ import annotations

import copy
import csv
import os

import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageFilter

from salcodec.codec import codec
from salcodec.codec.rounding import rd_multiplier
from salcodec.errors import SalcodecError
from salcodec.eval.metrics import high_frequency_detail, high_frequency_ratio, region_high_frequency_ratio
from salcodec.models.hyperprior import to_pixels
from salcodec.models.registry import MODEL_PATH_ENV, build_model, export_weights, load_model
from salcodec.models.transforms import export_decoder, synthesis_state
from salcodec.train.gan import coded_latents, gan_step, generator_and_discriminator, latent_function, quantized_latents
from salcodec.train.losses import generation_weight, high_frequency_energy, periodic_error_power, texture_energy_mismatch
from tests.conftest import DATA, KODAK, TINY


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("generation_floor, texture_weight", [(None, 0.0), (0.1, 1.0)])
def test_gan_steps_train_the_decoder_and_discriminator_only(rng, generation_floor, texture_weight):
    base, _ = load_model(TINY)
    base_before = snapshot(base)
    generator, discriminator = generator_and_discriminator(base, width=8)
    g_before, d_before = snapshot(generator), snapshot(discriminator)
    opt_g = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=1e-3)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    x = torch.from_numpy(rng.random((2, 3, 64, 64), dtype=np.float32))
    q0 = torch.tensor([0.2, 0.6])
    y_hat = quantized_latents(base, x, q0.view(-1, 1, 1, 1).expand(-1, 1, 64, 64), q0)
    weights = {"distortion_weight": 0.01, "adversarial_weight": 1.0, "feature_matching_weight": 1.0,
               "saliency_weighting": "normalised", "saliency_floor": 0.1, "periodic_weight": 0.5,
               "generation_saliency_floor": generation_floor, "texture_weight": texture_weight,
               "texture_saliency_floor": 0.1}
    for _ in range(2):
        terms = gan_step(generator, discriminator, opt_g, opt_d, x, torch.rand(2, 1, 64, 64), y_hat, q0, weights)
    assert all(np.isfinite(v) for v in terms.values())
    assert (terms["texture"] > 0) == (texture_weight > 0)
    moved = changed(g_before, snapshot(generator))
    assert moved and moved <= set(synthesis_state(generator))  # encoder and entropy model stay frozen
    assert changed(d_before, snapshot(discriminator))
    assert not changed(base_before, snapshot(base))  # the shipped model itself is untouched


def test_coded_latents_are_what_a_file_holds(kodak_crop):
    """A decoder trained on `coded_by` latents learns from ŷ as files hold it: RD-rounded, unlike
    the rounding of `quantized_latents`, and decoding to the codec's own pixels."""
    base = copy.deepcopy(load_model(TINY)[0])
    with torch.no_grad():
        base.g_a[3].weight.mul_(40)  # louder latents than the tiny model's, so that there are symbols to move
    x = torch.from_numpy(np.ascontiguousarray(kodak_crop[:64, :128])).permute(2, 0, 1)[None].float().div(255)
    x = torch.cat([x, x.flip(-1)])
    q0 = torch.tensor([0.2, 0.7])
    q = q0.view(-1, 1, 1, 1).expand(-1, 1, 64, 128).contiguous()
    y_hat = coded_latents(base, x, q, q0)
    for i in range(2):
        streams, _ = base.compress(x[i:i + 1], q[i:i + 1], q0[i:i + 1])
        with torch.no_grad():
            mine = to_pixels(base.synthesis(y_hat[i:i + 1], q0[i:i + 1]))
        assert torch.equal(mine, base.decompress(streams, (64, 128), q0[i:i + 1]))
    with rd_multiplier(0):
        nearest = coded_latents(base, x, q, q0)
    same = (nearest - quantized_latents(base, x, q, q0)).abs() < 0.01  # up to the exact h_s's means
    assert same.float().mean() > 0.99
    assert (y_hat != nearest).any()  # RD rounding moved some symbols toward their means


def test_coded_by_must_share_the_decoders_transforms():
    cfg = {"model": {"base": "default-v4"}, "train": {"coded_by": TINY}}
    with pytest.raises(SalcodecError, match="does not share"):
        latent_function(cfg, load_model(TINY)[0])


def test_distortion_weight_grows_with_the_coded_quality(rng):
    base, _ = load_model(TINY)
    x = torch.from_numpy(rng.random((2, 3, 64, 64), dtype=np.float32))
    q0 = torch.tensor([0.5, 0.5])
    y_hat = quantized_latents(base, x, q0.view(-1, 1, 1, 1).expand(-1, 1, 64, 64), q0)
    distortion = {}
    for exponent in (0.0, 0.5):
        generator, discriminator = generator_and_discriminator(base, width=8)  # the same start each time
        opt_g = torch.optim.Adam([p for p in generator.parameters() if p.requires_grad], lr=1e-3)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
        weights = {"distortion_weight": 0.01, "adversarial_weight": 0.0, "feature_matching_weight": 0.0,
                   "saliency_weighting": "none", "saliency_floor": 0.1, "distortion_lambda_exponent": exponent}
        distortion[exponent] = gan_step(generator, discriminator, opt_g, opt_d, x, torch.rand(2, 1, 64, 64), y_hat, q0,
                                        weights)["distortion"]
    # λ(0.5)/λ(0) = (0.36/0.0009)^0.5 = 20, to the power 0.5
    assert distortion[0.5] == pytest.approx(distortion[0.0] * 20**0.5, rel=1e-4)


def test_generation_weight_leaves_the_salient_patches_to_the_distortion_term():
    saliency = torch.zeros(2, 1, 64, 64)
    saliency[0, :, :, :32] = 1.0  # image 0: left half salient; image 1: nothing salient
    logits = torch.zeros(2, 1, 8, 8)
    w = generation_weight(saliency, logits, floor=0.1)
    assert w.shape == (2, 1, 8, 8)
    assert torch.allclose(w.flatten(1).mean(1), torch.ones(2))  # the GAN term's total is unchanged
    assert torch.allclose(w[0, :, :, :4], torch.full((1, 8, 4), 0.1 / 0.55))  # floor, over the mean 0.55
    assert torch.allclose(w[0, :, :, 4:], torch.full((1, 8, 4), 1 / 0.55))
    assert torch.allclose(w[1], torch.ones(1, 8, 8))


def test_periodic_error_power_sees_a_grid_pattern_and_not_noise(rng):
    x = torch.from_numpy(rng.random((2, 3, 128, 128), dtype=np.float32))
    noise = 0.05 * torch.from_numpy(rng.standard_normal((2, 3, 128, 128), dtype=np.float32))
    dots = torch.zeros(2, 3, 128, 128)
    dots[..., ::16, ::16] = 0.8  # one dot per 16×16 block: the checkerboard-like pattern a decoder can imprint
    grid = periodic_error_power(x, x + dots)
    assert torch.allclose(grid, torch.full((2,), 255**2 * (0.8**2 / 256 - (0.8 / 256) ** 2)), rtol=1e-4)  # its variance
    assert (periodic_error_power(x, x + noise) < grid / 20).all()  # noise averages away over 64 blocks
    assert (periodic_error_power(x, x + 0.1) < 1e-6).all()  # an offset is no pattern (up to float rounding)
    fake = (x + dots).requires_grad_()
    periodic_error_power(x, fake).sum().backward()
    assert fake.grad.abs().sum() > 0


def test_texture_energy_mismatch_asks_the_background_for_the_originals_detail(rng):
    x = torch.from_numpy(rng.random((1, 3, 64, 64), dtype=np.float32))
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    energy = high_frequency_energy(x)
    assert energy.shape == (1, 1, 4, 4)
    assert (high_frequency_energy(blurred) < energy / 4).all()  # a 3×3 mean removes most of the upper band
    assert (high_frequency_energy(torch.full_like(x, 0.5)) < 1e-10).all()  # a flat image has none

    nothing_salient = torch.zeros(1, 1, 64, 64)
    assert texture_energy_mismatch(x, x, nothing_salient, 0.1).item() < 1e-8
    too_little = texture_energy_mismatch(x, blurred, nothing_salient, 0.1)
    too_much = texture_energy_mismatch(blurred, x, nothing_salient, 0.1)
    assert too_little.item() > 1 and torch.allclose(too_little, too_much)  # a log-ratio: less and more alike

    half_blurred = x.clone()
    half_blurred[..., :, :32] = blurred[..., :, :32]
    left_salient = torch.zeros(1, 1, 64, 64)
    left_salient[..., :, :32] = 1
    # the same missing detail costs ten times less where people look (floor 0.1)
    assert texture_energy_mismatch(x, half_blurred, left_salient, 0.1) < texture_energy_mismatch(x, half_blurred, 1 - left_salient, 0.1) / 5

    fake = blurred.clone().requires_grad_()
    texture_energy_mismatch(x, fake, nothing_salient, 0.1).sum().backward()
    assert fake.grad.abs().sum() > 0


def test_training_and_evaluation_measure_the_same_band():
    """The texture term (torch, per patch) and the region ratio (numpy) see the same fine detail."""
    image = np.asarray(Image.open(KODAK / "kodim01.png").convert("RGB"))[:128, :128]
    per_patch = high_frequency_energy(torch.from_numpy(image.copy()).permute(2, 0, 1)[None].double() / 255)
    assert per_patch.mean().item() * 255**2 == pytest.approx(high_frequency_detail(image).mean(), rel=1e-6)


@pytest.fixture
def gan_installed(tmp_path, monkeypatch):
    """A model 'gan-base' with a GAN decoder (its synthesis perturbed) in a models folder of its own."""
    folder = tmp_path / "models"
    torch.manual_seed(5)
    model = build_model("quality-map-hyperprior", N=16, M=24)
    export_weights(model.eval(), "quality-map-hyperprior", {"N": 16, "M": 24}, folder / "gan-base.pt")
    monkeypatch.setenv(MODEL_PATH_ENV, f"{folder}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    base, digest = load_model("gan-base")
    generator, _ = generator_and_discriminator(base, width=8)
    with torch.no_grad():
        for name, p in generator.named_parameters():
            if name.startswith("g_s."):
                p.mul_(1.3)
    export_decoder(generator, "gan", "gan-base", digest, folder / "gan" / "gan-base.pt")
    return folder


def test_the_same_file_decodes_two_ways(gan_installed, kodak_crop, tmp_path):
    data = codec.encode(kodak_crop, 30, model_name="gan-base").data
    mse = codec.decode(data)
    gan = codec.decode(data, decoder="gan")
    assert mse.shape == gan.shape == kodak_crop.shape and gan.dtype == np.uint8
    assert not np.array_equal(mse, gan)
    assert np.array_equal(gan, codec.decode(data, decoder="gan"))  # deterministic too

    from salcodec.cli import main
    src = tmp_path / "a.sgc"
    src.write_bytes(data)
    assert main(["decompress", str(src), "-o", str(tmp_path / "gan.png"), "--decoder", "gan"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "gan.png")), gan)


def test_gan_decoder_refuses_other_weights_and_missing_decoders(gan_installed, kodak_crop):
    tiny_file = codec.encode(kodak_crop, 30, model_name=TINY).data
    with pytest.raises(SalcodecError, match="no gan decoder is installed for model 'tiny'"):
        codec.decode(tiny_file, decoder="gan")
    with pytest.raises(SalcodecError, match="unknown decoder"):
        codec.decode(tiny_file, decoder="pretty")
    # a decoder trained for other weights of the same id is refused, not silently used
    blob = torch.load(gan_installed / "gan" / "gan-base.pt", weights_only=True)
    blob["base_digest"] = "00" * 8
    torch.save(blob, gan_installed / "gan" / "gan-base.pt")
    data = codec.encode(kodak_crop, 30, model_name="gan-base").data
    with pytest.raises(SalcodecError, match="trained for other weights"):
        codec.decode(data, decoder="gan")


def test_high_frequency_ratio_sees_blur():
    image = Image.open(KODAK / "kodim01.png").convert("RGB")
    original = np.asarray(image)
    assert high_frequency_ratio(original, original) == pytest.approx(1.0)
    blurred = np.asarray(image.filter(ImageFilter.GaussianBlur(1)))
    assert high_frequency_ratio(original, blurred) < 0.2


def test_region_high_frequency_ratio_says_where_the_detail_went():
    image = Image.open(KODAK / "kodim01.png").convert("RGB")
    original = np.asarray(image)
    half = original.copy()
    half[:, 384:] = np.asarray(image.filter(ImageFilter.GaussianBlur(1)))[:, 384:]  # the right half blurred
    left = np.zeros(original.shape[:2], bool)
    left[:, :300] = True  # clear of the seam, where both halves' detail meets
    assert region_high_frequency_ratio(original, original, left) == pytest.approx(1.0)
    assert region_high_frequency_ratio(original, half, left) == pytest.approx(1.0, abs=0.05)
    assert region_high_frequency_ratio(original, half, ~left) < 0.4
    assert np.isnan(region_high_frequency_ratio(original, half, np.zeros_like(left)))


def test_gan_training_command_logs_both_sets_and_exports(tmp_path, training_photos):
    cfg = {
        "name": "gan-test", "out_dir": str(tmp_path / "run"),
        "model": {"family": "gan-decoder", "base": TINY, "discriminator_width": 8},
        "data": {"photos": [str(training_photos)], "heldout": str(DATA / "train" / "bsds500" / "test"), "max_side": 256},
        "train": {"steps": 4, "batch": 2, "crop": 64, "cache_crops": 6, "q0_range": [0.0, 0.5],
                  "lr_g": [[0, 1e-4]], "lr_d": [[0, 1e-4]], "distortion_weight": 0.01, "adversarial_weight": 0.5,
                  "feature_matching_weight": 1.0, "seed": 0, "log_every": 2, "monitor_every": 2,
                  "monitor_images": 1, "monitor_side": 64, "checkpoint_every": 2, "snapshot_every": 3},
    }
    config = tmp_path / "gan.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from salcodec.cli import main
    assert main(["train", "--config", str(config), "--max-steps", "2"]) == 0
    assert main(["train", "--config", str(config)]) == 0  # resumes from step 2, reusing the latent cache
    with (tmp_path / "run" / "monitor.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [0, 2, 4]
    assert all(np.isfinite(float(r[c])) and float(r[c]) > 0 for r in rows for c in r if c != "step")
    with (tmp_path / "run" / "log.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [2, 4]
    assert torch.load(tmp_path / "run" / "snap-3.pt", weights_only=False)["step"] == 3  # a checkpoint kept per snapshot step
    assert not (tmp_path / "run" / "snap-2.pt").exists()
    exported = tmp_path / "run" / "gan" / f"{TINY}.pt"
    blob = torch.load(exported, weights_only=True)
    assert blob["base_model"] == TINY and set(blob["state_dict"]) == set(synthesis_state(load_model(TINY)[0]))


def test_eval_reads_model_specs_with_a_decoder():
    from salcodec.eval.run import parse_entries
    mse, gan, ladder = parse_entries(["default-v3", "default-v3@gan:auto", "fixed=a+b"], [], "none")
    assert (mse.label, mse.decoder, mse.saliency) == ("default-v3:none", "mse", "none")
    assert (gan.label, gan.decoder, gan.saliency, gan.models) == ("default-v3@gan:auto", "gan", "auto", ("default-v3",))
    assert ladder.models == ("a", "b") and ladder.decoder == "mse"
    with pytest.raises(SalcodecError, match="unknown decoder"):
        parse_entries(["default-v3@pretty"], [], "none")


def test_r1_penalty_enters_the_discriminator_step_only_when_asked(rng):
    """Same start, same batch: the R1 term is measured and changes the discriminator's update only
    with r1_weight > 0, and the generator's first update does not depend on it."""
    base, _ = load_model(TINY)
    x = torch.from_numpy(rng.random((2, 3, 64, 64), dtype=np.float32))
    q0 = torch.tensor([0.2, 0.6])
    y_hat = quantized_latents(base, x, q0.view(-1, 1, 1, 1).expand(-1, 1, 64, 64), q0)
    saliency = torch.rand(2, 1, 64, 64)
    results = {}
    for r1_weight in (0.0, 10.0):
        torch.manual_seed(0)
        generator, discriminator = generator_and_discriminator(base, width=8)
        opt_g = torch.optim.SGD([p for p in generator.parameters() if p.requires_grad], lr=1e-3)
        opt_d = torch.optim.SGD(discriminator.parameters(), lr=1e-3)
        weights = {"distortion_weight": 0.01, "adversarial_weight": 1.0, "feature_matching_weight": 0.0,
                   "saliency_weighting": "normalised", "saliency_floor": 0.1, "r1_weight": r1_weight}
        if r1_weight:  # R1 is the squared input gradient of each image's mean patch logit, averaged over images
            real = x.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(discriminator(real, y_hat)[0].flatten(1).mean(1).sum(), real)
            expected_r1 = grad.pow(2).flatten(1).sum(1).mean().item()
        terms = gan_step(generator, discriminator, opt_g, opt_d, x, saliency, y_hat, q0, weights)
        results[r1_weight] = terms, snapshot(discriminator)
    assert results[0.0][0]["r1"] == 0 and results[10.0][0]["r1"] == pytest.approx(expected_r1, rel=1e-4)
    assert expected_r1 > 0 and changed(results[0.0][1], results[10.0][1])
