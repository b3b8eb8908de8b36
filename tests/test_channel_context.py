"""The contexts: y coded in slices whose scales and means are corrected from the slices decoded
before them (channel) and, within a slice, from the checkerboard's anchors (spatial), exactly on
both sides; and models stored as differences from a base."""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest
import torch

from salcodec.codec import codec
from salcodec.codec.rounding import rd_multiplier
from salcodec.errors import SalcodecError
from salcodec.models.exact import ExactNetwork
from salcodec.models.hyperprior import QualityMapHyperprior, analyze, anchor_mask, hyper_analyze
from salcodec.models.layers import load_state_resizing_buffers, to_unit
from salcodec.models.registry import MODEL_PATH_ENV, export_weights, load_model, load_weights_file, stored_weights
from tests.conftest import TINY


def context_model(slices: int = 4, seed: int = 0, spatial_width: int = 0) -> QualityMapHyperprior:
    """The tiny model with louder latents and contexts whose corrections are not zero."""
    base, _ = load_model(TINY)
    model = QualityMapHyperprior(N=base.N, M=base.M, context_slices=slices, context_width=8, spatial_width=spatial_width)
    load_state_resizing_buffers(model, base.state_dict(), strict=False)
    torch.manual_seed(seed)
    with torch.no_grad():
        model.g_a[3].weight.mul_(40)
        for net in [*model.channel_context, *(model.spatial_context or [])]:
            net[-1].weight.normal_(0, 0.05)
            net[-1].bias.normal_(0, 0.05)
    return model.eval()


def test_a_new_context_starts_as_the_plain_hyperprior():
    model = QualityMapHyperprior(N=16, M=24, context_slices=3, context_width=8)
    scales, means, y = torch.rand(1, 24, 4, 4) + 0.5, torch.randn(1, 24, 4, 4), torch.randn(1, 24, 4, 4) * 3
    s, m = model.latent_parameters(scales, means, y)
    assert torch.equal(s, scales) and torch.equal(m, means)
    with pytest.raises(ValueError, match="divide"):
        QualityMapHyperprior(N=16, M=24, context_slices=5)


def test_context_corrections_use_only_slices_decoded_before():
    model = context_model()
    scales, means, y = torch.rand(1, 24, 4, 4) + 0.5, torch.randn(1, 24, 4, 4), torch.randn(1, 24, 4, 4) * 3
    with torch.no_grad():
        s, m = model.latent_parameters(scales, means, y)
        changed = y.clone()
        changed[:, 12:] += 5  # slices 3 and 4 of 4
        s2, m2 = model.latent_parameters(scales, means, changed)
    assert not torch.equal(s, scales)
    assert torch.equal(s[:, :18], s2[:, :18]) and torch.equal(m[:, :18], m2[:, :18])  # slices 1–3 cannot see it
    assert not torch.equal(m[:, 18:], m2[:, 18:])  # slice 4 sees slice 3


def test_a_new_checkerboard_context_starts_as_the_channel_context_alone():
    model = context_model()
    with_spatial = QualityMapHyperprior(N=16, M=24, context_slices=4, context_width=8, spatial_width=8)
    load_state_resizing_buffers(with_spatial, model.state_dict(), strict=False)
    scales, means, y = torch.rand(1, 24, 6, 6) + 0.5, torch.randn(1, 24, 6, 6), torch.randn(1, 24, 6, 6) * 3
    with torch.no_grad():
        expected, got = model.latent_parameters(scales, means, y), with_spatial.latent_parameters(scales, means, y)
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])


def test_checkerboard_corrections_use_only_the_anchors_of_their_slice():
    model = context_model(spatial_width=8)
    anchors = anchor_mask((6, 6))
    scales, means, y = torch.rand(1, 24, 6, 6) + 0.5, torch.randn(1, 24, 6, 6), torch.randn(1, 24, 6, 6) * 3
    with torch.no_grad():
        s, m = model.latent_parameters(scales, means, y)
        others = y.clone()
        others[:, 6:12, ~anchors] += 5  # slice 2's second pass: nothing in slice 2 may depend on it
        s2, m2 = model.latent_parameters(scales, means, others)
        anchored = y.clone()
        anchored[:, 6:12, anchors] += 5  # slice 2's anchors: its other positions see them
        s3, m3 = model.latent_parameters(scales, means, anchored)
    assert torch.equal(s[:, :12], s2[:, :12]) and torch.equal(m[:, :12], m2[:, :12])
    assert torch.equal(m[:, 6:12, anchors], m3[:, 6:12, anchors])
    assert not torch.equal(m[:, 6:12, ~anchors], m3[:, 6:12, ~anchors])


@pytest.mark.parametrize("spatial_width", [0, 8])
def test_context_files_round_trip(kodak_crop, spatial_width):
    model = context_model(spatial_width=spatial_width)
    x = torch.from_numpy(np.ascontiguousarray(kodak_crop)).permute(2, 0, 1)[None]
    q = torch.full((1, 1, *x.shape[-2:]), 0.6)
    with torch.no_grad():
        y, cond = analyze(model, to_unit(x), q, torch.tensor([0.6]))
    with rd_multiplier(0):
        streams, _ = model.compress(x, q, torch.tensor([0.6]))
    y_hat = model.decode_latents(streams, tuple(x.shape[-2:]))
    assert (y_hat - y).abs().max() <= 0.5 + 1e-4  # each latent rounded around its corrected mean
    streams, _ = model.compress(x, q, torch.tensor([0.6]))  # RD rounding: a step toward the mean at most
    assert (model.decode_latents(streams, tuple(x.shape[-2:])) - y).abs().max() < 1
    plain = copy.deepcopy(model)
    plain.channel_context, plain.spatial_context, plain.slices = None, None, 1
    plain_streams, _ = plain.compress(x, q, torch.tensor([0.6]))
    assert streams[1] == plain_streams[1] and streams[0] != plain_streams[0]  # same z, y coded otherwise


def test_the_plain_hyperprior_writes_the_same_y_stream_as_compressais_coder(kodak_crop):
    """Coding y slice by slice with one slice changes no byte of the files earlier versions wrote."""
    model, _ = load_model(TINY)
    x = torch.from_numpy(np.ascontiguousarray(kodak_crop)).permute(2, 0, 1)[None]
    q = torch.full((1, 1, *x.shape[-2:]), 0.6)
    streams, _ = model.compress(x, q, torch.tensor([0.6]))
    with torch.no_grad():
        y, cond = analyze(model, to_unit(x), q, torch.tensor([0.6]))
        z = hyper_analyze(model, y, cond)
        z_hat = model.entropy_bottleneck.decompress(model.entropy_bottleneck.compress(z), z.shape[-2:])
        scales, means = model.hyper_synthesis(z_hat)
    reference = model.gaussian_conditional.compress(y, model.scale_indexes(scales), means=means)[0]
    assert streams[0] == reference


@pytest.mark.parametrize("kind", ["channel_context", "spatial_context"])
def test_exact_context_networks_give_the_same_bits_in_tiles(kind):
    model = context_model(slices=2, spatial_width=8)
    net = getattr(model, kind)[1]
    inputs = torch.randn(1, net[0].in_channels, 70, 9) * 4
    whole = ExactNetwork(net, tile=200, halo=2, scale=1)(inputs)
    tiles = ExactNetwork(net, tile=16, halo=2, scale=1)(inputs)
    assert torch.equal(whole, tiles)
    with torch.no_grad():
        assert (whole - net(inputs)).abs().max() < 1e-2 * net(inputs).abs().max() + 1e-3


@pytest.fixture
def model_folder(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv(MODEL_PATH_ENV, f"{folder}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    return folder


def test_a_model_stored_as_differences_from_its_base_loads_as_the_whole(model_folder, kodak_crop):
    model = context_model()
    base = copy.deepcopy(model)
    base.channel_context, base.slices = None, 1
    export_weights(base, "quality-map-hyperprior", {"N": 16, "M": 24}, model_folder / "loud.pt")
    hparams = {"N": 16, "M": 24, "context_slices": 4, "context_width": 8}
    export_weights(copy.deepcopy(model), "quality-map-hyperprior", hparams, model_folder / "whole.pt")
    export_weights(copy.deepcopy(model), "quality-map-hyperprior", hparams, model_folder / "cc.pt", base="loud")
    assert (model_folder / "cc.pt").stat().st_size < (model_folder / "whole.pt").stat().st_size / 2
    stored = torch.load(model_folder / "cc.pt", weights_only=True)["state_dict"]
    assert all(k.startswith("channel_context.") for k in stored)
    whole, whole_digest = load_weights_file(model_folder / "whole.pt")
    delta, delta_digest = load_weights_file(model_folder / "cc.pt")
    assert delta_digest == whole_digest
    _, state = stored_weights(model_folder / "cc.pt")  # what a warm start reads: the whole model
    assert set(state) == set(whole.state_dict()) and torch.equal(state["g_s.0.bias"], whole.state_dict()["g_s.0.bias"])
    data = codec.encode(kodak_crop, 60, model_name="cc").data
    assert np.array_equal(codec.decode(data), codec.decode(codec.encode(kodak_crop, 60, model_name="whole").data))

    # the base must be the one the differences were taken from
    changed = torch.load(model_folder / "loud.pt", weights_only=True)
    changed["state_dict"]["g_s.0.bias"] = changed["state_dict"]["g_s.0.bias"] + 1
    torch.save(changed, model_folder / "loud.pt")
    with pytest.raises(SalcodecError, match="builds on other weights of model 'loud'"):
        load_weights_file(model_folder / "cc.pt")
    (model_folder / "loud.pt").unlink()
    with pytest.raises(SalcodecError, match="builds on model 'loud', which is not installed"):
        load_weights_file(model_folder / "cc.pt")


@pytest.mark.parametrize("spatial_width", [0, 8])
def test_both_engines_read_each_others_context_files(model_folder, kodak_crop, spatial_width):
    from salcodec import runtime
    hparams = {"N": 16, "M": 24, "context_slices": 4, "context_width": 8, "spatial_width": spatial_width}
    export_weights(context_model(spatial_width=spatial_width), "quality-map-hyperprior", hparams, model_folder / "ctx.pt")
    for engine in ("onnx", "torch"):
        data = runtime.encode(kodak_crop, 60, None, 0.0, "ctx", "default", engine=engine).data
        by_onnx, by_torch = runtime.decode(data, engine="onnx"), runtime.decode(data, engine="torch")
        assert by_onnx.shape == kodak_crop.shape
        assert np.abs(by_onnx.astype(int) - by_torch).max() <= 1


def test_a_whole_model_with_a_context_trains_end_to_end():
    """The training forward pass runs the context too: its rate gradient reaches the context and
    the encoder alike (a GPU run can train transforms and context together)."""
    torch.manual_seed(1)
    model = QualityMapHyperprior(N=16, M=24, context_slices=4, context_width=8, spatial_width=8).train()
    x, q0 = torch.rand(2, 3, 64, 64), torch.tensor([0.3, 0.8])
    out = model(x, q0.view(-1, 1, 1, 1).expand(2, 1, 64, 64), q0)
    bits = sum(-torch.log2(lk).sum() for lk in out.likelihoods)
    (bits / x[:, 0].numel() + 255**2 * ((out.x_hat - x) ** 2).mean()).backward()
    assert model.channel_context[2][-1].weight.grad.abs().sum() > 0
    assert model.spatial_context[2][-1].weight.grad.abs().sum() > 0
    assert model.g_a[0].weight.grad.abs().sum() > 0
