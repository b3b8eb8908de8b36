"""`--refine`: latents searched per image for its own rate–distortion cost, written to ordinary files."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from salcodec import api
from salcodec.cli import main
from salcodec.codec import bitstream, codec
from salcodec.codec.quality import lambda_map
from salcodec.errors import SalcodecError
from salcodec.models import refinement
from salcodec.models.hyperprior import analyze, hyper_analyze
from salcodec.models.layers import to_unit
from salcodec.models.registry import load_model


def real_cost(image: np.ndarray, data: bytes, quality: float) -> float:
    """What the search minimises, measured on the file: real bpp + λ(q0) · MSE (8-bit units)."""
    error = api.decompress(data, engine="torch").astype(np.float64) - image
    return 8 * len(data) / image[..., 0].size + float(lambda_map(np.float64(quality / 100))) * float(np.mean(error ** 2))


def test_soft_rounding_mixes_the_two_nearest_integers():
    generator = torch.Generator().manual_seed(0)
    residuals = torch.linspace(-3, 3, 601).requires_grad_()
    soft = refinement.soft_round(residuals, 0.5, generator)
    assert torch.all(soft >= torch.floor(residuals)) and torch.all(soft <= torch.ceil(residuals))
    soft.sum().backward()
    assert residuals.grad.abs().sum() > 0  # unlike rounding, it has a gradient
    integers = torch.arange(-3.0, 4.0)
    assert torch.allclose(refinement.soft_round(integers, 0.5, generator), integers, atol=1e-3)
    cold = refinement.soft_round(residuals.detach(), 0.02, generator)  # nearly hard at a low temperature
    away_from_half = (residuals.detach() - torch.round(residuals.detach())).abs() < 0.4
    assert torch.allclose(cold[away_from_half], torch.round(residuals.detach())[away_from_half], atol=1e-2)


def test_refined_files_cost_less_and_are_ordinary_files(kodak_crop):
    quality = 50
    plain = codec.encode(kodak_crop, quality).data
    refined = codec.encode(kodak_crop, quality, refine_steps=40).data
    assert refined != plain
    assert real_cost(kodak_crop, refined, quality) < 0.99 * real_cost(kodak_crop, plain, quality)
    assert refined == codec.encode(kodak_crop, quality, refine_steps=40).data  # deterministic
    onnx, torch_pixels = (api.decompress(refined, engine=e).astype(int) for e in ("onnx", "torch"))
    assert np.abs(onnx - torch_pixels).max() <= 1  # every decoder reads it, as any file


def test_the_search_keeps_the_start_where_it_did_not_help(kodak_crop, monkeypatch):
    model, _ = load_model()
    x = to_unit(torch.from_numpy(kodak_crop).permute(2, 0, 1)[None])
    quality_map, q0 = torch.full((1, 1, *kodak_crop.shape[:2]), 0.5), torch.tensor([0.5])
    with torch.no_grad():
        y, cond = analyze(model, x, quality_map, q0)
        z = hyper_analyze(model, y, cond)
    refined_y, _, refined = refinement.refine_latents(model, x, quality_map, q0, y, z, steps=5)
    assert refined and not torch.equal(refined_y, y)
    # the search froze the shared model's weights only while it ran: training and coding find them as they were
    assert all(p.requires_grad and p.is_contiguous() for p in model.parameters())
    monkeypatch.setattr(refinement, "LEARNING_RATE", 30.0)  # steps that wreck the latents
    same_y, same_z, refined = refinement.refine_latents(model, x, quality_map, q0, y, z, steps=5)
    assert not refined and torch.equal(same_y, y) and torch.equal(same_z, z)
    # and such a file is exactly the unrefined one, RD rounding included
    assert codec.encode(kodak_crop, 50, refine_steps=5).data == codec.encode(kodak_crop, 50).data


def test_the_refined_file_is_kept_only_where_the_files_say_it_costs_less(kodak_crop, monkeypatch):
    """The search judges its latents with nearest rounding in float arithmetic; the plain file has
    RD rounding. So codec.encode compares the two files: a short search's file can cost more."""
    plain = codec.encode(kodak_crop, 50).data
    compared = []
    measure = codec.file_cost

    def recording(encoded, *args):
        cost = measure(encoded, *args)
        compared.append((encoded.data, cost))
        return cost
    monkeypatch.setattr(codec, "file_cost", recording)
    kept = {steps: codec.encode(kodak_crop, 50, refine_steps=steps).data for steps in (6, 15)}
    assert len(compared) == 4 and compared[0][0] == compared[2][0] == plain  # plain, refined; twice
    short_search, longer_search = compared[1], compared[3]
    assert short_search[1] > compared[0][1] and kept[6] == plain  # the search's file cost more
    assert longer_search[1] < compared[2][1] and kept[15] == longer_search[0] != plain
    assert real_cost(kodak_crop, kept[15], 50) < real_cost(kodak_crop, plain, 50)  # by the test's own measure too


def test_with_flips_only_the_cheapest_orientation_is_refined(kodak_crop, monkeypatch):
    searches = []
    search = refinement.refine_latents

    def counted(*args, **kwargs):
        searches.append(args)
        return search(*args, **kwargs)
    monkeypatch.setattr(refinement, "refine_latents", counted)
    data = api.compress(kodak_crop, 50, saliency="none", try_flips=True, engine="torch", refine=15)
    assert len(searches) == 1  # four plain encodes choose the orientation, one search refines it
    plain = api.compress(kodak_crop, 50, saliency="none", try_flips=True, engine="torch")
    assert bitstream.unpack(data).header.flags == bitstream.unpack(plain).header.flags
    assert real_cost(kodak_crop, data, 50) <= real_cost(kodak_crop, plain, 50)


def test_a_bpp_target_with_flips_refines_in_the_orientation_its_plain_search_chose(kodak_crop, monkeypatch):
    from salcodec import runtime
    chosen = []  # (λ of the quality, flags) for each orientation choice
    choose = runtime.cheapest_orientation

    def recorded(encode, decode, image, saliency, lam):
        best, flags = choose(encode, decode, image, saliency, lam)
        chosen.append((lam, flags))
        return best, flags
    monkeypatch.setattr(runtime, "cheapest_orientation", recorded)
    image = kodak_crop[:96, :128].copy()
    data = api.compress(image, saliency="none", bpp=0.8, try_flips=True, engine="torch", refine=5)
    lams = [lam for lam, _ in chosen]
    assert len(lams) == len(set(lams))  # each quality's four encodes once: none again for the refined file
    # refined in the orientation chosen at its own quality (the λ nearest the header's q0 byte)
    q0_lam = float(lambda_map(np.float64(bitstream.unpack(data).header.q0 / 255)))
    assert bitstream.unpack(data).header.flags == min(chosen, key=lambda entry: abs(entry[0] - q0_lam))[1]
    assert abs(8 * len(data) / image[..., 0].size - 0.8) < 0.1  # near the target


def test_refinement_refuses_what_it_cannot_do(kodak_crop):
    with pytest.raises(SalcodecError, match="onnx engine cannot refine"):
        api.compress(kodak_crop, 50, saliency="none", engine="onnx", refine=5)
    with pytest.raises(SalcodecError, match="up to 786,432 pixels"):
        codec.encode(np.zeros((800, 1024, 3), np.uint8), 50, refine_steps=5)
    with pytest.raises(SalcodecError, match="must be >= 0"):
        codec.encode(kodak_crop, 50, refine_steps=-1)


def test_cli_refine_round_trip(tmp_path, kodak_crop):
    photo = tmp_path / "photo.png"
    Image.fromarray(kodak_crop).save(photo)
    assert main(["compress", str(photo), "--saliency", "none", "--refine", "15"]) == 0
    data = photo.with_suffix(".sgc").read_bytes()
    assert data == api.compress(kodak_crop, 50, saliency="none", refine=15)  # the count reaches the API
    assert data != api.compress(kodak_crop, 50, saliency="none", engine="torch")
    assert main(["compress", str(photo), "--saliency", "none", "--refine", "3", "--engine", "onnx", "--force"]) == 2  # a user error
