"""RD rounding of the latents (codec/rounding.py): an encoder-side choice that decoders never see."""
import numpy as np
import pytest

from salcodec.codec import rounding
from salcodec.codec.rounding import code_lengths, rd_multiplier, rd_round


def one_table(bits_by_symbol: dict[int, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A single coding table for symbols -2..2 with the given code lengths, in CompressAI's layout."""
    symbols = range(-2, 3)
    bits = np.array([[bits_by_symbol[s] for s in symbols] + [20.0, 0.0]])  # escape, end
    return np.array([-2]), np.array([len(symbols) + 2]), bits


def test_code_lengths_are_the_tables_own():
    cdf = np.array([[0, 32768, 49152, 65536, 65536]])  # p = 1/2, 1/4, 1/4, then padding
    np.testing.assert_allclose(code_lengths(cdf)[0], [1, 2, 2, 0])


def test_a_step_toward_zero_is_taken_exactly_when_it_costs_less():
    offsets, lengths, bits = one_table({-2: 9.0, -1: 6.0, 0: 1.0, 1: 6.0, 2: 9.0})
    residuals = np.array([0.55, 0.6, -0.55, 1.55, 1.6, 0.3])
    indexes = np.zeros(len(residuals), np.int64)
    # at multiplier 40: 0.55 → 0 saves 5 bits for 0.1 more squared error (4): taken; 0.6 → 0 costs
    # 0.2 (8): not; 1.55 → 1 saves 3 bits for 0.1 (4): not. At 20 the error costs half as much
    got = rd_round(residuals, indexes, offsets, lengths, bits, multiplier=40)
    np.testing.assert_array_equal(got, [0, 1, 0, 2, 2, 0])
    np.testing.assert_array_equal(rd_round(residuals, indexes, offsets, lengths, bits, multiplier=20),
                                  [0, 0, 0, 1, 2, 0])


def test_multiplier_zero_is_nearest_rounding_and_choices_move_one_step_toward_zero_at_most(rng):
    offsets, lengths, bits = one_table({-2: 4.0, -1: 2.5, 0: 1.0, 1: 2.5, 2: 4.0})
    residuals = rng.normal(0, 1.5, 10_000).astype(np.float32)
    indexes = np.zeros(residuals.shape, np.int64)
    nearest = np.round(residuals)
    np.testing.assert_array_equal(rd_round(residuals, indexes, offsets, lengths, bits, multiplier=0), nearest)
    chosen = rd_round(residuals, indexes, offsets, lengths, bits, multiplier=10)
    moved = chosen != nearest
    assert 0 < moved.mean() < 0.5
    np.testing.assert_array_equal(chosen[moved], (nearest - np.sign(nearest))[moved])
    assert np.all(np.abs(nearest[moved]) <= 2), "escape-coded symbols (beyond ±2) are never moved"


def test_the_multiplier_can_be_set_for_a_block_only():
    assert rounding.current_multiplier() == rounding.RD_MULTIPLIER
    with rd_multiplier(0):
        assert rounding.current_multiplier() == 0
    assert rounding.current_multiplier() == rounding.RD_MULTIPLIER
    with pytest.raises(ValueError):
        with rd_multiplier(-1):
            pass
