"""End-to-end checks with the shipped default model (the tiny model covers the logic elsewhere)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import salcodec
from salcodec.cli import main
from salcodec.codec import bitstream, codec
from salcodec.codec.rounding import RD_MULTIPLIER, rd_multiplier
from salcodec.eval.metrics import bd_rate, psnr
from salcodec.models.registry import DEFAULT_MODEL
from tests.conftest import KODAK


@pytest.fixture(scope="module")
def kodim23() -> np.ndarray:
    return np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))


def test_readme_round_trip_and_info(tmp_path, capsys):
    sgc, png = tmp_path / "k.sgc", tmp_path / "k.png"
    assert main(["compress", str(KODAK / "kodim23.png"), "-o", str(sgc), "--quality", "50"]) == 0
    assert main(["decompress", str(sgc), "-o", str(png)]) == 0
    capsys.readouterr()
    assert main(["info", str(sgc), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == DEFAULT_MODEL and (info["width"], info["height"]) == (768, 512)
    assert info["bpp"] == pytest.approx(8 * sgc.stat().st_size / (768 * 512))
    original = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))
    assert psnr(original, np.asarray(Image.open(png))) > 27.0


def test_rate_grows_with_quality_and_estimate_matches_file(kodim23):
    results = [codec.encode(kodim23, q, None, 0.0) for q in (10, 50, 90)]
    rates = [r.bpp for r in results]
    assert rates[0] < rates[1] < rates[2]
    for r in results:
        streams = sum(len(s) for s in bitstream.unpack(r.data).streams)
        assert abs(8 * streams - r.estimated_bits) <= 0.01 * r.estimated_bits + 2 * 16 * 8


def test_shipped_fast_decoder_reads_default_files_within_half_a_db(kodak_crop):
    """The fast decoder trades a little fidelity for speed: on Kodak 0.2 dB at 0.5 bpp, 0.5 dB at
    1 bpp (README). A decoder that had drifted or was paired wrongly would lose far more."""
    data = codec.encode(kodak_crop, 50, None, 0.0).data
    mse, fast = codec.decode(data), codec.decode(data, decoder="fast")
    assert psnr(kodak_crop, mse) - 0.5 < psnr(kodak_crop, fast) < psnr(kodak_crop, mse)


def test_shipped_fast_encoder_writes_files_within_a_db_of_the_default_encoder(kodak_crop):
    """The fast encoder costs 0.35 dB at 0.5 bpp on Kodak (README). Compared at equal real bpp:
    an encoder paired with the wrong entropy model or decoder would lose several dB."""
    fast = codec.encode(kodak_crop, 50, None, 0.0, encoder="fast")
    default = codec.encode_to_bpp(kodak_crop, fast.bpp, None, 0.0, tolerance=0.01)
    fast_psnr = psnr(kodak_crop, codec.decode(fast.data))
    assert psnr(kodak_crop, codec.decode(default.data)) - 1.0 < fast_psnr
    assert psnr(kodak_crop, codec.decode(fast.data, decoder="fast")) > fast_psnr - 1.0


def test_shipped_lite_model_codes_like_default_v4_and_uses_its_second_transforms(kodak_crop):
    """default-v4-lite is default-v4 with a lighter h_s retrained for rate: the same latents, so
    the same pixels up to rounding around other means, in about as many bits (+0.5 % BD-rate on
    Kodak); default-v4's fast encoder and decoders serve it. A wrong h_s would cost far more."""
    v4, lite = (codec.encode(kodak_crop, 50, None, 0.0, model_name=m) for m in ("default-v4", "default-v4-lite"))
    assert bitstream.unpack(lite.data).header.model_id == "default-v4-lite"
    assert abs(lite.bpp / v4.bpp - 1) < 0.03
    assert abs(psnr(kodak_crop, codec.decode(lite.data)) - psnr(kodak_crop, codec.decode(v4.data))) < 0.1
    fast = codec.encode(kodak_crop, 50, None, 0.0, model_name="default-v4-lite", encoder="fast")
    assert psnr(kodak_crop, codec.decode(fast.data, decoder="fast")) > psnr(kodak_crop, codec.decode(lite.data)) - 1.0


@pytest.mark.parametrize("model_id, before, saving", [("default-v4-cc", "default-v4", 0.02),
                                                    ("default-v4-cb", "default-v4-cc", 0.005)])
def test_shipped_context_models_code_default_v4s_latents_in_fewer_bits(kodak_crop, model_id, before, saving):
    """default-v4-cc is default-v4 with a channel context added to its entropy model, default-v4-cb
    default-v4-cc with a checkerboard context as well: the same latents, so the same pixels up to
    rounding around other means, in fewer bits (y on held-out BSDS500 crops: 4.9 % fewer, then
    0.9 % fewer; on this crop, RD-rounded at quality 50, 12.2 % and 1.4 %; MODEL_CARD); default-v4's second decoders read their
    files. A context that did not match between encoder and decoder would decode garbage."""
    old, new = (codec.encode(kodak_crop, 50, None, 0.0, model_name=m) for m in (before, model_id))
    assert bitstream.unpack(new.data).header.model_id == model_id
    assert new.bpp < (1 - saving) * old.bpp
    assert abs(psnr(kodak_crop, codec.decode(new.data)) - psnr(kodak_crop, codec.decode(old.data))) < 0.1
    streams = sum(len(s) for s in bitstream.unpack(new.data).streams)
    assert abs(8 * streams - new.estimated_bits) <= 0.01 * new.estimated_bits + 2 * 16 * 8
    assert psnr(kodak_crop, codec.decode(new.data, decoder="fast")) > psnr(kodak_crop, codec.decode(new.data)) - 0.5


def test_rd_rounding_gives_a_better_rate_distortion_curve_than_nearest_rounding(kodak_crop):
    """RD rounding (codec/rounding.py) saved 0.2 to 2.0 % BD-rate on each of the 24 Kodak images
    (MODEL_CARD). Rounding that read the wrong code lengths or moved symbols the wrong way would
    cost rate or fidelity for nothing; decoders read its files as any others."""
    curves = {}
    for multiplier in (0, RD_MULTIPLIER):
        with rd_multiplier(multiplier):
            files = [codec.encode(kodak_crop, q, None, 0.0) for q in (0, 33, 66, 100)]
        curves[multiplier] = [f.bpp for f in files], [psnr(kodak_crop, codec.decode(f.data)) for f in files]
    (near_bpp, near_psnr), (rd_bpp, rd_psnr) = curves[0], curves[RD_MULTIPLIER]
    assert all(r < n for r, n in zip(rd_bpp, near_bpp))
    assert bd_rate(near_bpp, near_psnr, rd_bpp, rd_psnr) < 0


def test_bpp_target_is_reached_within_3_percent(kodak_crop):
    low = codec.encode(kodak_crop, 0, None, 0.0).bpp
    high = codec.encode(kodak_crop, 100, None, 0.0).bpp
    for fraction in (0.3, 0.7):  # targets inside the model's range for this image, spaced in log-rate
        target = float(np.exp(np.log(low) + fraction * (np.log(high) - np.log(low))))
        enc = salcodec.api.compress_image(kodak_crop, saliency="none", bpp=target)
        assert abs(enc.bpp - target) <= 0.03 * target, (target, enc.bpp)
    with pytest.raises(salcodec.SalcodecError, match="below this model's lowest rate"):
        salcodec.api.compress_image(kodak_crop, saliency="none", bpp=low / 3)


def test_pixels_identical_whatever_the_thread_count():
    """Encode with 2 threads and with 1, decode each file with the other count, all in separate
    processes: the files and the decoded pixels must be identical (benchmarks/determinism.py
    does all 24 Kodak images at three qualities)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "determinism.py"
    out = subprocess.run([sys.executable, str(script), "--kodak", str(KODAK), "--images", "kodim05.png", "kodim23.png",
                          "--qualities", "20", "80"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4/4 files byte-identical" in out.stdout and "4/4 images pixel-identical" in out.stdout


def test_saliency_moves_quality_toward_the_salient_region(kodim23):
    """At equal real bpp, a saliency map raises PSNR where it is high and lowers it elsewhere."""
    sal = np.zeros(kodim23.shape[:2], np.float32)
    sal[:, :384] = 1.0
    plain_enc = codec.encode(kodim23, 50, None, 0.0)
    salient_enc = codec.encode_to_bpp(kodim23, plain_enc.bpp, sal, 0.5)
    assert abs(salient_enc.bpp - plain_enc.bpp) <= 0.03 * plain_enc.bpp
    plain, salient = codec.decode(plain_enc.data), codec.decode(salient_enc.data)
    left, right = (slice(None), slice(0, 384)), (slice(None), slice(384, None))
    assert psnr(kodim23[left], salient[left]) > psnr(kodim23[left], plain[left]) + 0.15
    assert psnr(kodim23[right], salient[right]) < psnr(kodim23[right], plain[right])


def test_shipped_saliency_model_meets_its_targets_on_unseen_osie_images():
    """The learned predictor on the OSIE validation ids (never trained on), as saliency-eval scores them."""
    from salcodec.saliency import AUTO_METHOD
    from salcodec.saliency.evaluate import evaluate
    assert AUTO_METHOD == "learned"
    scores = evaluate(KODAK.parent / "saliency" / "osie", ["learned", "sr-centre"], progress=False)
    assert scores["learned"]["n"] == 112
    assert scores["learned"]["CC"] >= 0.50 and scores["learned"]["NSS"] >= 1.6, scores["learned"]
    assert scores["learned"]["CC"] > scores["sr-centre"]["CC"] and scores["learned"]["AUC-Judd"] > scores["sr-centre"]["AUC-Judd"]
