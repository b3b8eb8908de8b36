"""The container: round trip and every refusal path, each with a one-line SalcodecError."""
from __future__ import annotations

import struct
import zlib

import pytest

from salcodec.codec import bitstream as bs
from salcodec.errors import SalcodecError


def make(streams=(b"yyyy", b"zz"), **kw) -> bytes:
    fields = dict(model_id="tiny", digest=b"\x01" * 8, height=17, width=33, q0=128, flags=0, tile=0) | kw
    return bs.pack(bs.Container(bs.Header(**fields), list(streams)))


def reseal(body: bytes) -> bytes:
    """Recompute the CRC so that a mutation reaches the parser behind it."""
    return body + struct.pack(">I", zlib.crc32(body))


def test_round_trip():
    c = bs.unpack(make())
    assert c.header == bs.Header("tiny", b"\x01" * 8, 17, 33, 128, 0, 0)
    assert c.streams == [b"yyyy", b"zz"]


def test_empty_stream_allowed():
    assert bs.unpack(make(streams=(b"", b"z"))).streams == [b"", b"z"]


@pytest.mark.parametrize("data, message", [
    (b"", "bad magic"),
    (b"PNG\x89" + b"\x00" * 40, "bad magic"),
    (b"\x89SGC\x07" + b"\x00" * 40, "unsupported format version 7"),
    (b"\x89SGC\x01\x04ti", "truncated"),
])
def test_refuses_garbage(data, message):
    with pytest.raises(SalcodecError, match=message):
        bs.unpack(data)


def test_refuses_truncation_and_bit_flips():
    data = make()
    for cut in range(1, len(data) - 1):
        with pytest.raises(SalcodecError):
            bs.unpack(data[:cut])
    flipped = bytearray(data)
    flipped[-8] ^= 0x10
    with pytest.raises(SalcodecError, match="CRC-32"):
        bs.unpack(bytes(flipped))


def test_refuses_size_over_limit_before_allocating():
    data = make(height=100_000, width=100_000)
    with pytest.raises(SalcodecError, match="exceeds the limit"):
        bs.unpack(data)
    assert bs.unpack(data, max_pixels=10**10).header.width == 100_000


def test_refuses_zero_size():
    with pytest.raises(SalcodecError, match="zero image size"):
        bs.unpack(make(height=0))


def test_refuses_lengths_that_do_not_match_payload():
    body = bytearray(make()[:-4])
    # the first stream length sits right before the payload (6 bytes of streams)
    pos = len(body) - 6 - 8
    struct.pack_into(">I", body, pos, 5)
    with pytest.raises(SalcodecError, match="stream lengths"):
        bs.unpack(reseal(bytes(body)))


def test_refuses_stream_over_limit():
    with pytest.raises(SalcodecError, match="stream length exceeds"):
        bs.unpack(make(streams=(b"x" * 100, b"z")), max_stream_bytes=50)


def test_refuses_unknown_flags_and_bad_model_id():
    with pytest.raises(SalcodecError, match="unknown flags"):
        bs.unpack(make(flags=0x80))
    body = bytearray(make()[:-4])
    body[5] = 200  # model id length beyond the limit
    with pytest.raises(SalcodecError, match="model id"):
        bs.unpack(reseal(bytes(body)))
    body = bytearray(make()[:-4])
    body[6] = 0xFF  # not ASCII
    with pytest.raises(SalcodecError, match="not printable ASCII"):
        bs.unpack(reseal(bytes(body)))
    body[6] = ord("\n")  # ASCII, but a control character (found by fuzz/run.py: it broke the one-line message)
    with pytest.raises(SalcodecError, match="not printable ASCII"):
        bs.unpack(reseal(bytes(body)))


def test_error_messages_stay_one_line():
    assert str(SalcodecError("no such file: a\nb.png")) == "no such file: a b.png"


def test_pack_rejects_bad_header():
    with pytest.raises(SalcodecError):
        make(model_id="")
    with pytest.raises(SalcodecError):
        make(digest=b"short")
