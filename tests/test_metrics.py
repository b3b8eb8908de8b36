"""Metrics against values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from salcodec.eval import metrics


def test_psnr_hand_value():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0] = 16  # one error of 16 over 48 samples: MSE = 256 / 48
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 * 48 / 256))
    assert metrics.psnr(a, a) == float("inf")


def test_roi_and_non_roi_psnr_on_constructed_example():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:2, :, :] = 10  # error only in the top two rows: 20 pixels = 20 % of the image
    sal = np.zeros((10, 10))
    sal[:2, :] = 1.0
    mask = metrics.roi_mask(sal)
    assert mask.sum() == 20 and mask[:2].all()
    assert metrics.region_psnr(a, b, mask) == pytest.approx(10 * math.log10(255**2 / 100))
    assert metrics.region_psnr(a, b, ~mask) == float("inf")
    # weighted: w = s / mean(s) = 5 on the ROI, 0 elsewhere; weighted MSE = 5 · 100 · 0.2 = 100
    assert metrics.weighted_psnr(a, b, sal) == pytest.approx(10 * math.log10(255**2 / 100))


def test_bd_rate_of_a_curve_needing_ten_percent_fewer_bits():
    quality = [28.0, 31.0, 34.0, 37.0, 40.0]
    rate = [0.2, 0.4, 0.8, 1.4, 2.4]
    assert metrics.bd_rate(rate, quality, [0.9 * r for r in rate], quality) == pytest.approx(-10.0, abs=1e-9)
    assert metrics.bd_rate(rate, quality, rate, quality) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_of_a_curve_one_step_better_in_quality():
    # B reaches A's quality one rate step earlier on a log-linear curve: rate halves
    rate = [0.125, 0.25, 0.5, 1.0, 2.0, 4.0]
    quality_a = [30.0, 31.0, 32.0, 33.0, 34.0, 35.0]
    quality_b = [q + 1.0 for q in quality_a]
    assert metrics.bd_rate(rate, quality_a, rate, quality_b) == pytest.approx(-50.0, abs=1e-6)


def test_quality_at_rate_interpolates_in_log_bpp_and_refuses_outside():
    rates, quality = [0.25, 1.0], [30.0, 34.0]
    assert metrics.quality_at_rate(rates, quality, 0.5) == pytest.approx(32.0)
    assert metrics.quality_at_rate(rates, quality, 2.0) is None
    assert metrics.mean_quality_at_rate([(rates, quality), ([0.1, 0.4], [28, 30])], 0.2) is None
    assert metrics.mean_quality_at_rate([(rates, quality), ([0.1, 0.4], [28, 30])], 0.3) is not None


def test_grid_artefact_ratio_sees_a_periodic_error_and_not_noise():
    rng = np.random.default_rng(0)
    original = rng.integers(20, 236, (128, 192, 3)).astype(np.uint8)
    noisy = (original + rng.normal(0, 3, original.shape)).round().astype(np.uint8)
    yy, xx = np.mgrid[:128, :192]
    checkerboard = 2.0 * ((yy + xx) % 2) + 2.0 * ((yy % 16 == 0) | (xx % 16 == 0))  # stride-2 and block edges
    artefacts = (original + rng.normal(0, 3, original.shape) + checkerboard[..., None]).round().astype(np.uint8)
    assert 0.7 < metrics.grid_artefact_ratio(original, noisy) < 1.4
    assert metrics.grid_artefact_ratio(original, artefacts) > 20
