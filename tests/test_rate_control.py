"""Rate control (`--bpp`): the quality search, and the search for refined files, on stand-in
encoders whose size follows a known curve, so that the number of encodes can be counted."""
import math

import pytest

from salcodec.codec.encoded import Encoded, search_bpp, search_bpp_refined
from salcodec.errors import SalcodecError

SIDE = 100  # a stand-in image of 100 × 100 pixels: a byte is 0.0008 bpp


def plain_bpp(quality: float) -> float:
    return 0.1 * math.exp(quality / 40)  # 0.1 to 1.22 bpp, growing with the quality like the model's


class StandIn:
    """An encoder whose file at a quality has a set size (and says whether it was refined)."""

    def __init__(self, size_ratio=None):
        self.size_ratio, self.calls = size_ratio, []

    def __call__(self, quality: float) -> Encoded:
        self.calls.append(quality)
        bpp = plain_bpp(quality) * (self.size_ratio(quality) if self.size_ratio else 1)
        tag = b"r" if self.size_ratio else b"p"
        return Encoded(tag * round(bpp * SIDE * SIDE / 8), SIDE, SIDE, 0.0)


def refined_larger(quality: float) -> float:
    return 1.15 - 0.0012 * quality  # like --refine on Kodak: +15 % at quality 0, +3 % at 100


@pytest.mark.parametrize("target", [0.2, 0.5, 1.0])
def test_search_bpp_lands_within_tolerance(target):
    found = search_bpp(StandIn(), target)
    assert abs(found.bpp - target) <= 0.015 * target


def test_refined_search_refines_only_the_qualities_found_and_lands_within_tolerance():
    for target in (0.2, 0.5, 1.0):
        plain, refined = StandIn(), StandIn(refined_larger)
        found = search_bpp_refined(plain, refined, target)
        assert found.data[:1] == b"r"
        assert abs(found.bpp - target) <= 0.015 * target
        assert len(refined.calls) <= 2  # a search on refined files refines 7 to 9 times here
        # the first refined quality is the plain file's answer, and it overshoots: the file grows
        assert plain_bpp(refined.calls[0]) == pytest.approx(target, rel=0.015)


def test_refined_search_stops_at_the_end_of_the_range():
    """At a target just above the lowest plain rate, every refined file is too large: the search
    refines the lowest quality once and returns it, rather than refining it again and again."""
    plain, refined = StandIn(), StandIn(refined_larger)
    found = search_bpp_refined(plain, refined, 0.101)
    assert refined.calls == [0.0]
    assert found.bpp == pytest.approx(0.1 * 1.15, rel=0.01)


def test_refined_search_refuses_a_target_outside_the_model_range():
    with pytest.raises(SalcodecError, match="below this model's lowest rate"):
        search_bpp_refined(StandIn(), StandIn(refined_larger), 0.05)
