"""Keep the resident memory of big-image coding close to what is actually in use.

glibc serves blocks below its mmap threshold (which grows up to 32 MB as large blocks are
freed) from heaps it rarely shrinks, so the freed buffers of one tile or stage stay resident
while the next allocates its own: on a 12-megapixel image that was several hundred MB above
the live data. A fixed 1 MB threshold puts every large tensor in its own mapping, returned to
the system when freed. Other C libraries are left as they are.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # mallopt parameter numbers from glibc's malloc.h
MMAP_THRESHOLD_BYTES = 1 << 20


@functools.cache
def return_large_blocks_to_the_system() -> bool:
    """Ask glibc to map every block ≥ 1 MB separately; True when it agreed (process-wide, once)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        return False
