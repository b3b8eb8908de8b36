"""The exact hyper-synthesis: close to the float network, and bit-identical whatever the summation order."""
from __future__ import annotations

import numpy as np
import torch

from salcodec.models.exact import ExactNetwork
from salcodec.models.hyperprior import QualityMapHyperprior


def model_and_input(seed: int = 0):
    torch.manual_seed(seed)
    model = QualityMapHyperprior(N=16, M=24).eval()
    z_hat = torch.round(torch.randn(1, 16, 5, 7) * 4) + 0.37  # symbols plus a non-integer median
    return model, z_hat


def test_exact_is_close_to_float():
    model, z_hat = model_and_input()
    with torch.inference_mode():
        ref = model.h_s(z_hat)
    out = ExactNetwork(model.h_s)(z_hat)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    assert (out - ref).abs().max() < 1e-2 * ref.abs().max()


def test_exact_is_identical_across_thread_counts():
    model, z_hat = model_and_input(1)
    exact = ExactNetwork(model.h_s)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = exact(z_hat)
        torch.set_num_threads(2)
        two = exact(z_hat)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


def test_exact_is_identical_when_the_summation_order_changes():
    """Permuting the input channels (and the first layer's weights with them) reorders every sum
    of the first convolution; integer arithmetic must give bit-identical outputs."""
    model, z_hat = model_and_input(2)
    exact = ExactNetwork(model.h_s)
    perm = torch.randperm(z_hat.shape[1])
    permuted = QualityMapHyperprior(N=16, M=24).eval()
    permuted.load_state_dict(model.state_dict(), strict=False)
    with torch.no_grad():
        permuted.h_s[0].weight.copy_(model.h_s[0].weight[perm])
    out = exact(z_hat)
    out_perm = ExactNetwork(permuted.h_s)(z_hat[:, perm])
    assert torch.equal(out, out_perm)
    # the float network is not order-independent in general, which is why this exists
    assert np.isfinite(out.numpy()).all()


def test_big_inputs_run_in_tiles_with_identical_results():
    """Hyper-latents larger than a tile are computed tile by tile (bounded memory); exact
    arithmetic makes the stitched result equal to the whole-image one bit for bit."""
    from salcodec.models import exact as exact_module
    torch.manual_seed(3)
    model = QualityMapHyperprior(N=16, M=24).eval()
    z_hat = torch.round(torch.randn(1, 16, 2 * exact_module.TILE_Z + 3, 3 * exact_module.TILE_Z + 5) * 4) + 0.37
    exact = ExactNetwork(model.h_s)
    whole = exact._run(z_hat)
    tiled = exact(z_hat)
    assert tiled.shape == whole.shape and torch.equal(tiled, whole)
