"""The library API: inputs of every kind, saliency options, clear errors."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from PIL import Image

import salcodec
from salcodec.errors import SalcodecError
from tests.conftest import TINY


def test_compress_accepts_array_pil_and_path(kodak_crop, tmp_path):
    path = tmp_path / "crop.png"
    Image.fromarray(kodak_crop).save(path)
    outs = [salcodec.decompress(salcodec.compress(src, quality=60, saliency="none", model=TINY))
            for src in (kodak_crop, Image.fromarray(kodak_crop), path, str(path))]
    for out in outs:
        assert out.shape == kodak_crop.shape
        assert np.array_equal(out, outs[0])


def test_saliency_options(kodak_crop, tmp_path):
    h, w = kodak_crop.shape[:2]
    sal = np.zeros((h, w), np.float32)
    sal[:, : w // 2] = 1.0
    gray = tmp_path / "gray.png"
    Image.fromarray((sal * 255).astype(np.uint8)).save(gray)
    rgba = tmp_path / "alpha.png"
    Image.fromarray(np.dstack([kodak_crop, (sal * 255).astype(np.uint8)]), "RGBA").save(rgba)
    by_array = salcodec.compress(kodak_crop, saliency=sal, model=TINY)
    assert salcodec.compress(kodak_crop, saliency=gray, model=TINY) == by_array
    assert salcodec.compress(kodak_crop, saliency=str(rgba), model=TINY) == by_array
    for option in ("auto", "none", "centre"):
        assert salcodec.decompress(salcodec.compress(kodak_crop, saliency=option, model=TINY)).shape == kodak_crop.shape


def test_predict_saliency_shape_and_range(kodak_crop):
    s = salcodec.predict_saliency(kodak_crop)
    assert s.shape == kodak_crop.shape[:2] and s.dtype == np.float32
    assert 0.0 <= s.min() and s.max() <= 1.0 and s.max() > s.min()


@pytest.mark.parametrize("kwargs, message", [
    ({"quality": 120}, "quality must be in 0-100"),
    ({"saliency": "no-such-method-or-file.png"}, "no such file"),
    ({"model": "missing"}, "unknown model 'missing'"),
    ({"model": "../../etc/passwd"}, "invalid model id"),
])
def test_bad_arguments_raise_salcodec_error(kodak_crop, kwargs, message):
    with pytest.raises(SalcodecError, match=message):
        salcodec.compress(kodak_crop, **({"model": TINY} | kwargs))


def test_bad_arrays_raise_salcodec_error():
    with pytest.raises(SalcodecError, match="uint8"):
        salcodec.compress(np.zeros((8, 8, 3), np.float32), model=TINY)
    with pytest.raises(SalcodecError, match="H×W×3"):
        salcodec.compress(np.zeros((8, 8, 5), np.uint8), model=TINY)
    with pytest.raises(SalcodecError, match="bytes"):
        salcodec.decompress("not bytes")
    with pytest.raises(SalcodecError, match="saliency array"):
        salcodec.compress(np.zeros((8, 8, 3), np.uint8), saliency=np.zeros((8, 8, 3)), model=TINY)


def test_image_modes_are_converted_with_notes(tmp_path):
    from salcodec.codec.image_io import load_image
    base = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    cases = {
        "rgba.png": (Image.fromarray(np.dstack([base, np.full((20, 30), 128, np.uint8)]), "RGBA"), "alpha"),
        "gray.png": (Image.fromarray(base[:, :, 0]), "grayscale"),
        "gray16.png": (Image.fromarray((base[:, :, 0].astype(np.uint16) * 257)), "16-bit"),
        "palette.png": (Image.fromarray(base).convert("P"), None),
        "cmyk.jpg": (Image.fromarray(base).convert("CMYK"), "CMYK"),
    }
    for name, (img, note) in cases.items():
        img.save(tmp_path / name)
        notes: list[str] = []
        arr = load_image(tmp_path / name, notes)
        assert arr.shape == (20, 30, 3) and arr.dtype == np.uint8, name
        if note:
            assert any(note in n for n in notes), (name, notes)
    gray16 = load_image(tmp_path / "gray16.png")
    assert np.array_equal(gray16[:, :, 0], base[:, :, 0])


def matrix_rgb_profile(name: str, gamma: float) -> bytes:
    """A minimal ICC v2 display profile: sRGB's primaries (D50-adapted) with a pure power-law
    curve, so the colour conversion it implies can be computed by hand."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + s15(x) + s15(y) + s15(z)
    text = name.encode() + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(8 + 2 + 1 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    primaries = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249))] + \
        [(sig, xyz(*p)) for sig, p in zip((b"rXYZ", b"gXYZ", b"bXYZ"), primaries)] + \
        [(sig, curve) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + bytes(12) + b"acsp" + bytes(28) + s15(0.9642) + s15(1.0) + s15(0.8249) + bytes(48))
    return header + table + data


def test_icc_tagged_images_are_converted_to_srgb(tmp_path):
    from PIL import ImageCms

    from salcodec.codec.image_io import load_image
    gray = Image.fromarray(np.full((6, 8, 3), 128, np.uint8))
    cases = {"linear.png": matrix_rgb_profile("linear test RGB", 1.0),
             "srgb.png": ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
             "broken.png": b"not an ICC profile"}
    loaded = {}
    for name, icc in cases.items():
        gray.save(tmp_path / name, icc_profile=icc)
        notes: list[str] = []
        loaded[name] = (load_image(tmp_path / name, notes), notes)
    pixels, notes = loaded["linear.png"]
    assert np.all(np.abs(pixels.astype(int) - 188) <= 1), pixels[0, 0]  # sRGB's curve at linear 0.5: 187.5
    assert notes == ["converted colours from the ICC profile 'linear test RGB' to sRGB"]
    assert np.all(loaded["srgb.png"][0] == 128) and loaded["srgb.png"][1] == []
    assert np.all(loaded["broken.png"][0] == 128) and "unreadable ICC profile" in loaded["broken.png"][1][0]


def test_broken_images_are_refused(tmp_path, kodak_crop):
    from salcodec.codec.image_io import load_image
    good = tmp_path / "good.png"
    Image.fromarray(kodak_crop).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for path in (truncated, junk, tmp_path / "missing.png", tmp_path):
        with pytest.raises(SalcodecError):
            load_image(path)


def test_exif_orientation_is_respected(tmp_path):
    from salcodec.codec.image_io import load_image
    img = Image.fromarray(np.zeros((10, 20, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_image(tmp_path / "rot.jpg").shape == (20, 10, 3)
