"""Image <-> bytes with the tiny model: entropy-coding round trip, odd sizes, refusals, rate honesty."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from salcodec.codec import bitstream, codec
from salcodec.codec.quality import q0_byte, quality_map
from salcodec.errors import SalcodecError
from salcodec.models.registry import load_model
from tests.conftest import TINY


def test_entropy_decoded_latents_equal_encoder_latents(rng):
    model, _ = load_model(TINY)
    x = torch.from_numpy(rng.random((1, 3, 128, 192), dtype=np.float32))
    q = torch.full((1, 1, 128, 192), 0.7)
    q0 = torch.tensor([0.7])
    streams, _ = model.compress(x, q, q0)
    with torch.inference_mode():
        y, z = model.analysis(x, q, q0)
        z_hat = model.entropy_bottleneck.quantize(z, "dequantize", model.entropy_bottleneck._get_medians())
        _, means = model.hyper_synthesis(z_hat)
        expected = torch.round(y - means) + means
    decoded = model.decode_latents(streams, (128, 192))
    assert torch.equal(decoded, expected)


@pytest.mark.parametrize("shape", [(1, 1), (17, 33), (2000, 3), (64, 64)])
def test_odd_sizes_round_trip(shape, rng):
    image = rng.integers(0, 256, shape + (3,), dtype=np.uint8)
    enc = codec.encode(image, 50, model_name=TINY)
    out = codec.decode(enc.data)
    assert out.shape == image.shape and out.dtype == np.uint8
    head = bitstream.unpack(enc.data).header
    assert (head.height, head.width) == shape


def test_decoding_is_deterministic(kodak_crop):
    data = codec.encode(kodak_crop, 40, model_name=TINY).data
    assert np.array_equal(codec.decode(data), codec.decode(data))


def test_saliency_changes_the_stream_but_never_the_header_size(kodak_crop):
    sal = np.zeros(kodak_crop.shape[:2], np.float32)
    sal[50:120, 80:200] = 1
    plain = codec.encode(kodak_crop, 50, model_name=TINY)
    salient = codec.encode(kodak_crop, 50, sal, 0.5, model_name=TINY)
    assert bitstream.unpack(salient.data).header.flags == bitstream.FLAG_SPATIAL_QUALITY
    assert bitstream.unpack(plain.data).header.flags == 0
    assert codec.decode(salient.data).shape == kodak_crop.shape


def test_unknown_model_and_digest_mismatch_are_refused(kodak_crop):
    data = codec.encode(kodak_crop, 50, model_name=TINY).data
    container = bitstream.unpack(data)
    container.header.model_id = "no-such-model"
    with pytest.raises(SalcodecError, match="made by model 'no-such-model', which is not installed"):
        codec.decode(bitstream.pack(container))
    container.header.model_id = TINY
    container.header.digest = b"\x00" * 8
    with pytest.raises(SalcodecError, match="different weights"):
        codec.decode(bitstream.pack(container))


def test_wrong_stream_count_is_refused(kodak_crop):
    container = bitstream.unpack(codec.encode(kodak_crop, 50, model_name=TINY).data)
    container.streams = container.streams[:1]
    with pytest.raises(SalcodecError, match="expected 2 streams"):
        codec.decode(bitstream.pack(container))


def test_estimated_rate_matches_stream_size(kodak_crop):
    enc = codec.encode(kodak_crop, 80, model_name=TINY)
    stream_bits = 8 * sum(len(s) for s in bitstream.unpack(enc.data).streams)
    # each rANS stream ends with a flushed 32-bit state and byte padding: allow 16 bytes a stream
    assert abs(stream_bits - enc.estimated_bits) <= 0.02 * enc.estimated_bits + 2 * 16 * 8


def test_saliency_ranks_match_a_sort_up_to_sixteen_bits(rng):
    from salcodec.codec.quality import normalise_saliency

    def by_sorting(s: np.ndarray) -> np.ndarray:  # the definition: share of pixels less salient
        return np.searchsorted(np.sort(s.ravel()), s, side="left") / np.sum(s < s.max())
    eight_bit = rng.integers(0, 256, (40, 50)).astype(np.float32) / 255
    np.testing.assert_array_equal(normalise_saliency(eight_bit), by_sorting(eight_bit).astype(np.float32))
    smooth = rng.random((40, 50)).astype(np.float32) ** 3  # peaky, like a density map
    assert np.abs(normalise_saliency(smooth) - by_sorting(smooth)).max() < 0.05  # ties near 0 only
    assert normalise_saliency(smooth).max() == 1.0 and normalise_saliency(smooth).min() == 0.0


def test_quality_map_formula():
    s = np.array([[0.0, 1.0], [0.5, 0.5]], np.float32)
    q = quality_map((2, 2), 0.5, s, strength=0.4)
    ranks = np.array([[0.0, 1.0], [1 / 3, 1 / 3]])  # share of pixels less salient, over the top pixel's
    np.testing.assert_allclose(q, 0.5 - 0.4 * (1 - ranks), atol=1e-6)  # the most salient pixel keeps q0
    assert q0_byte(q) == round(255 * 0.5)
    # a rank ignores how peaky the map is: any increasing transform of s gives the same map
    np.testing.assert_array_equal(quality_map((2, 2), 0.5, s**4, strength=0.4), q)
    assert np.all(quality_map((2, 2), 0.5, np.full((2, 2), 0.7), strength=0.4) == np.float32(0.5))  # flat: uniform
    assert np.all(quality_map((2, 2), 0.3) == np.float32(0.3))
    assert quality_map((2, 2), 0.2, s, strength=1.0).min() == 0.0


def test_scale_indexes_pick_the_nearest_table_scale_in_log_domain(rng):
    model, _ = load_model(TINY)
    table = model.gaussian_conditional.scale_table
    scales = torch.from_numpy(rng.random((1, 24, 8, 8), dtype=np.float32) * 300)
    scales[0, 0, 0, :4] = torch.tensor([0.0, 0.11, 256.0, 1e6])
    idx = model.scale_indexes(scales).long()
    bounded = scales.clamp_min(float(table[0]))
    expected = (bounded.log()[..., None] - table.log()).abs().argmin(-1)
    assert torch.equal(idx, expected)


def test_tiled_transforms_equal_untiled(rng):
    from salcodec.models.tiling import tiled
    model, _ = load_model(TINY)
    x = torch.from_numpy(rng.random((1, 3, 384, 640), dtype=np.float32))
    q = torch.from_numpy(rng.random((1, 1, 384, 640), dtype=np.float32))
    with torch.inference_mode():
        y, cond = model.analysis_transform(x, q, torch.tensor([0.5]))
        y_t, cond_t = tiled(lambda t, m: model.analysis_transform(t, m, torch.tensor([0.5])), (x, q), 256,
                            model.ANALYSIS_HALO, 1 / 16)
        z = model.hyper_analysis(y, cond)
        (z_t,) = tiled(lambda t, c: (model.hyper_analysis(t, c),), (y, cond), 16, 16, 1 / 4)
        x_hat = model.synthesis(torch.round(y), torch.tensor([0.5]))
        (x_hat_t,) = tiled(lambda t: (model.synthesis(t, torch.tensor([0.5])),), (torch.round(y),), 16,
                           model.SYNTHESIS_HALO // 16, 16)
    assert torch.allclose(y, y_t, atol=1e-5) and torch.allclose(cond, cond_t, atol=1e-5)
    assert torch.allclose(z, z_t, atol=1e-5)
    assert torch.allclose(x_hat, x_hat_t, atol=1e-5)


def test_big_images_are_tiled_and_round_trip(monkeypatch, rng):
    monkeypatch.setattr(codec, "TILE_ABOVE_PIXELS", 256 * 256)
    monkeypatch.setattr(codec, "TILE_SIDE", 256)
    image = rng.integers(0, 256, (300, 520, 3), dtype=np.uint8)
    data = codec.encode(image, 50, model_name=TINY).data
    assert bitstream.unpack(data).header.tile == 256
    assert codec.decode(data).shape == image.shape


@pytest.mark.parametrize("in_ch,out_ch,kernel,stride", [(8, 6, 5, 2), (4, 3, 3, 2), (6, 4, 5, 3), (3, 8, 7, 2)])
def test_subpixel_decoding_equals_the_transposed_convolution(in_ch, out_ch, kernel, stride):
    """Coding runs the synthesis' transposed convolutions as convolution + pixel shuffle: the same
    function as training's transposed convolution, up to float rounding, and it follows new weights."""
    from salcodec.models.layers import deconv
    torch.manual_seed(0)
    layer = deconv(in_ch, out_ch, kernel, stride).eval()
    x = torch.randn(2, in_ch, 7, 9)
    for _ in range(2):
        reference = layer(x)  # autograd on: the transposed convolution itself
        with torch.no_grad():
            fast = layer(x)
        assert layer._shuffle_applies()
        assert fast.shape == reference.shape == (2, out_ch, 7 * stride, 9 * stride)
        assert torch.allclose(fast, reference, atol=1e-5)
        with torch.no_grad():
            layer.weight.mul_(-0.5)  # in place, as load_state_dict does: the phase kernels are rebuilt
