"""The `.sgc` container: a versioned, self-describing, checked wrapper around the entropy-coded streams.

Layout (all integers big-endian; full description in docs/bitstream.md):

    magic       4  b"\\x89SGC"
    version     1  FORMAT_VERSION
    model id    1 + n   length-prefixed printable ASCII (0x21-0x7E)
    digest      8  first 8 bytes of SHA-256 over the decoder's weights
    height      4
    width       4
    q0          1  quality byte, round(255 · max q); the spatial map is never sent
    flags       1  bit 0: the encoder was given a saliency map (informational);
                   bits 1 and 2: the image was coded flipped top-bottom / left-right (decoders flip back)
    tile        2  tile side in pixels of the tiled transforms (0: untiled); a multiple of 64 in 256-8192
    streams     2  number of entropy-coded streams
    lengths     4 × streams
    payload     Σ lengths
    crc32       4  over every byte before it

Nothing in a file is trusted before it is checked: the CRC first, then every field against
limits, then the stream count and lengths against the payload actually present.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from ..errors import SalcodecError

MAGIC = b"\x89SGC"
FORMAT_VERSION = 1
FLAG_SPATIAL_QUALITY = 1
FLAG_FLIP_ROWS = 2  # coded upside down (codec/orientation.py)
FLAG_FLIP_COLUMNS = 4  # coded mirrored
KNOWN_FLAGS = FLAG_SPATIAL_QUALITY | FLAG_FLIP_ROWS | FLAG_FLIP_COLUMNS
MAX_MODEL_ID = 64

DEFAULT_MAX_PIXELS = 200_000_000
TILE_MULTIPLE, MIN_TILE, MAX_TILE = 64, 256, 8192
DEFAULT_MAX_STREAM_BYTES = 1 << 30

_FIXED = struct.Struct(">IIBBHH")  # height, width, q0, flags, tile, streams


@dataclass
class Header:
    model_id: str
    digest: bytes
    height: int
    width: int
    q0: int
    flags: int = 0
    tile: int = 0


@dataclass
class Container:
    header: Header
    streams: list[bytes] = field(default_factory=list)


def pack(container: Container) -> bytes:
    h = container.header
    model = h.model_id.encode("ascii")
    if not 0 < len(model) <= MAX_MODEL_ID:
        raise SalcodecError(f"model id must be 1-{MAX_MODEL_ID} ASCII characters")
    if len(h.digest) != 8:
        raise SalcodecError("weights digest must be 8 bytes")
    parts = [MAGIC, bytes([FORMAT_VERSION, len(model)]), model, h.digest,
             _FIXED.pack(h.height, h.width, h.q0, h.flags, h.tile, len(container.streams))]
    parts += [struct.pack(">I", len(s)) for s in container.streams]
    parts += container.streams
    body = b"".join(parts)
    return body + struct.pack(">I", zlib.crc32(body))


def unpack(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, max_stream_bytes: int = DEFAULT_MAX_STREAM_BYTES) -> Container:
    """Parse and check a container; every failure is a one-line SalcodecError."""
    if len(data) < len(MAGIC) + 1 or data[:4] != MAGIC:
        raise SalcodecError("not a salcodec file (bad magic)")
    if data[4] != FORMAT_VERSION:
        raise SalcodecError(f"unsupported format version {data[4]} (this salcodec reads version {FORMAT_VERSION})")
    if len(data) < 6 + 8 + _FIXED.size + 4:
        raise SalcodecError("truncated file (header incomplete)")
    body, (crc,) = data[:-4], struct.unpack(">I", data[-4:])
    if zlib.crc32(body) != crc:
        raise SalcodecError("corrupt or truncated file (CRC-32 mismatch)")

    pos = 5
    model_len = body[pos]
    pos += 1
    if not 0 < model_len <= MAX_MODEL_ID or pos + model_len + 8 + _FIXED.size > len(body):
        raise SalcodecError("corrupt header (model id)")
    raw_id = bytes(body[pos:pos + model_len])
    if not all(0x21 <= b <= 0x7E for b in raw_id):  # printable ASCII only: ids reach messages and file names
        raise SalcodecError("corrupt header (model id is not printable ASCII)")
    model_id = raw_id.decode("ascii")
    pos += model_len
    digest = bytes(body[pos:pos + 8])
    pos += 8
    height, width, q0, flags, tile, n_streams = _FIXED.unpack_from(body, pos)
    pos += _FIXED.size

    if height == 0 or width == 0:
        raise SalcodecError("corrupt header (zero image size)")
    if height * width > max_pixels:
        raise SalcodecError(f"image size {width}x{height} exceeds the limit of {max_pixels} pixels")
    if flags & ~KNOWN_FLAGS:
        raise SalcodecError("corrupt header (unknown flags)")
    if tile and (tile % TILE_MULTIPLE or not MIN_TILE <= tile <= MAX_TILE):
        raise SalcodecError(f"corrupt header (tile side {tile})")
    if n_streams == 0 or pos + 4 * n_streams > len(body):
        raise SalcodecError("corrupt header (stream table)")
    lengths = struct.unpack_from(f">{n_streams}I", body, pos)
    pos += 4 * n_streams
    if any(n > max_stream_bytes for n in lengths):
        raise SalcodecError(f"stream length exceeds the limit of {max_stream_bytes} bytes")
    if pos + sum(lengths) != len(body):
        raise SalcodecError("corrupt file (stream lengths do not match the payload)")
    streams = []
    for n in lengths:
        streams.append(bytes(body[pos:pos + n]))
        pos += n
    return Container(Header(model_id, digest, height, width, q0, flags, tile), streams)


def pad_stream(stream: bytes, symbols: int) -> bytes:
    """Zero-pad an rANS stream before decoding it.

    CompressAI's C++ decoder reads 32-bit words without checking the end of its buffer: a valid
    stream is never read past its end, but a corrupt one can be. The padding covers two words for
    the initial state plus two per symbol (one renormalisation and one bypass word), which bounds
    the reads of every stream except those whose garbage asks for long runs of bypass words; see
    docs/bitstream.md for this known limit.
    """
    return stream + bytes(4 * (2 + 2 * symbols))
