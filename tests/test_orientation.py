"""`--try-flips`: a file may hold the image flipped; every decoder flips it back, and the encoder
keeps the orientation with the lowest bpp + λ·MSE."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from salcodec import api, runtime
from salcodec.cli import main
from salcodec.codec import bitstream, codec
from salcodec.codec.orientation import ORIENTATIONS, flagged, flip, mean_squared_error
from salcodec.codec.quality import lambda_map
from salcodec.errors import SalcodecError
from salcodec.eval.metrics import psnr
from tests.conftest import TINY


def test_each_flip_is_its_own_inverse(rng):
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert [flip(image, f)[0, 0].tolist() for f in ORIENTATIONS] == [
        image[0, 0].tolist(), image[0, -1].tolist(), image[-1, 0].tolist(), image[-1, -1].tolist()]
    for flags in ORIENTATIONS:
        assert np.array_equal(flip(flip(image, flags), flags), image)
    other = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    exact = np.mean((image.astype(np.float64) - other) ** 2)
    assert mean_squared_error(image, other, rows=2) == pytest.approx(exact)  # in bands of 2 rows, no uint8 wrap-around


@pytest.mark.parametrize("engine", ["torch", "onnx"])
def test_decoders_flip_back_what_the_file_says(kodak_crop, engine):
    for flags in ORIENTATIONS[1:]:
        coded = codec.encode(flip(kodak_crop, flags), 40)
        plain = runtime.decode(coded.data, engine=engine)  # the flipped image, as coded
        back = runtime.decode(flagged(coded, flags).data, engine=engine)
        assert np.array_equal(back, flip(plain, flags))
        assert psnr(kodak_crop, back) > 28


def test_try_flips_keeps_the_cheapest_file(kodak_crop):
    quality, lam = 30, float(lambda_map(np.float64(0.3)))

    def cost(data: bytes) -> float:
        error = api.decompress(data, engine="onnx").astype(np.float64) - kodak_crop
        return 8 * len(data) / kodak_crop[..., 0].size + lam * float(np.mean(error ** 2))
    candidates = [flagged(codec.encode(flip(kodak_crop, f), quality), f).data for f in ORIENTATIONS]
    best = api.compress(kodak_crop, quality, saliency="none", engine="onnx", try_flips=True)
    assert cost(best) == pytest.approx(min(cost(c) for c in candidates), rel=1e-3)
    assert cost(best) <= cost(api.compress(kodak_crop, quality, saliency="none", engine="onnx")) + 1e-9
    assert bitstream.unpack(best).header.flags  # on this crop a flip is the cheapest: the search ran


def test_other_flag_bits_are_still_refused(kodak_crop):
    container = bitstream.unpack(codec.encode(kodak_crop, 40, model_name=TINY).data)
    container.header.flags = 8
    with pytest.raises(SalcodecError, match="unknown flags"):
        api.decompress(bitstream.pack(container))


def test_cli_try_flips_round_trip(tmp_path, kodak_crop):
    photo = tmp_path / "photo.png"
    Image.fromarray(kodak_crop).save(photo)
    assert main(["compress", str(photo), "--saliency", "none", "--try-flips"]) == 0
    data = photo.with_suffix(".sgc").read_bytes()
    assert data == api.compress(kodak_crop, 50, saliency="none", try_flips=True)  # the flag reaches the API
    assert bitstream.unpack(data).header.flags  # here a flipped orientation is the cheapest: the search ran
    assert main(["decompress", str(photo.with_suffix(".sgc"))]) == 0
    decoded = np.asarray(Image.open(str(photo.with_suffix(".sgc")) + ".png"))
    assert np.array_equal(decoded, api.decompress(data))
