"""Mutations of real files for fuzzing: truncation, bit flips, byte edits, insertions, splices and
header-field edits, with the CRC re-sealed on a share of them so that the parser and the entropy
decoder behind the CRC are exercised too."""
from __future__ import annotations

import random
import struct
import zlib


def reseal(data: bytes) -> bytes:
    body = data[:-4] if len(data) >= 4 else data
    return body + struct.pack(">I", zlib.crc32(body))


def mutate(data: bytes, other: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    kind = rng.randrange(7)
    if kind == 0 and out:  # truncate
        out = out[: rng.randrange(len(out))]
    elif kind == 1:  # flip bits
        for _ in range(rng.randint(1, 8)):
            if out:
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    elif kind == 2:  # overwrite bytes
        for _ in range(rng.randint(1, 16)):
            if out:
                out[rng.randrange(len(out))] = rng.randrange(256)
    elif kind == 3:  # insert bytes
        pos = rng.randrange(len(out) + 1)
        out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    elif kind == 4:  # splice two files
        out = out[: rng.randrange(len(out) + 1)] + bytearray(other[rng.randrange(len(other) + 1):])
    elif kind == 5 and len(out) > 40:  # a header field: a 32-bit word somewhere in the first 40 bytes
        pos = rng.randrange(0, 36)
        out[pos:pos + 4] = struct.pack(">I", rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, rng.randrange(1 << 32)]))
    else:  # garble the payload's middle
        if len(out) > 8:
            a = rng.randrange(len(out) - 4)
            for i in range(a, min(len(out) - 4, a + rng.randint(1, 256))):
                out[i] = rng.randrange(256)
    result = bytes(out)
    return reseal(result) if rng.random() < 0.5 else result
