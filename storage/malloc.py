"""glibc malloc settings for the server processes: keep freed big buffers for reuse.

Why: the data path allocates and frees buffers of a few MiB many times a second (an RPC
answer is read into one buffer of its size, stripes, parity blocks, joined bodies). glibc
serves those with mmap, or trims the heap top back to the kernel, so that nearly every new
buffer is fresh pages: a page fault per 4 KiB and the kernel zeroing them. Under 64 MiB GETs
that was 28 % of the gateway's samples (py-spy, on the `bytearray(size)` of
rpc_stream.MessageChannel). With the thresholds below freed buffers are reused from the heap:
gateway CPU 1.01-1.17 -> 0.72-0.82 ms per object MB, get-large 590-713 -> 790-915 MB/s.

The cost: a process keeps up to TRIM_THRESHOLD_BYTES of freed heap resident instead of
returning it at once. Nothing happens on a libc without mallopt (musl) or when
COFFRE_MALLOC_TUNE=0.
"""

from __future__ import annotations

import ctypes
import os

from storage import libc

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# Above every buffer the data path makes (RPC messages are at most 8 MiB): served from the
# heap, not by a fresh mmap each time.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
# Free memory at the heap's top kept before trimming: a few rounds of in-flight buffers.
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def tune() -> bool:
    """Apply the thresholds to this process; True when glibc took them."""
    if os.environ.get("COFFRE_MALLOC_TUNE", "1") == "0":
        return False
    mallopt = libc.function("mallopt", (ctypes.c_int, ctypes.c_int))
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
                and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
