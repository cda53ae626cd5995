"""Big fragments leave the page cache once durable; small ones and reads stay cached.

Residency is read with mincore(2) over a mapping of the segment file: what the kernel really
holds, not what the code meant to do.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import random
from pathlib import Path

from storage import limits
from storage.device import Device
from storage.segments import segment_name
from tests.storage.conftest import chunks

_libc = ctypes.CDLL(None, use_errno=True)
_PAGE = mmap.PAGESIZE


def resident_fraction(path: Path, offset: int, size: int) -> float:
    """The fraction of the pages of path[offset:offset+size] in the page cache."""
    start = offset - offset % _PAGE
    length = offset + size - start
    pages = (length + _PAGE - 1) // _PAGE
    vec = (ctypes.c_ubyte * pages)()
    # A private mapping gives a writable buffer to take the address of (mincore needs one);
    # mapping touches no page, so the residency seen is the page cache's.
    with open(path, "rb") as f, mmap.mmap(f.fileno(), start + length,
                                          flags=mmap.MAP_PRIVATE) as m:
        first = ctypes.c_char.from_buffer(m)
        rc = _libc.mincore(ctypes.c_void_p(ctypes.addressof(first) + start),
                           ctypes.c_size_t(length), vec)
        del first
    if rc != 0:
        raise OSError(ctypes.get_errno(), "mincore")
    return sum(b & 1 for b in vec) / pages


async def _record_span(device: Device, key: bytes) -> tuple[Path, int, int]:
    loc = (await device.stat_fragment(3, key)).loc
    return device.path / "segments" / segment_name(loc.segment), loc.offset, loc.stored_bytes


async def test_big_fragment_leaves_the_cache_once_durable(device: Device) -> None:
    data = random.Random(2).randbytes(limits.uncached_record_bytes_min + 5 * 65536 + 7)
    await device.put_fragment(3, b"big", len(data), chunks(data, 1 << 20))
    path, offset, size = await _record_span(device, b"big")
    assert resident_fraction(path, offset, size) < 0.05
    assert await device.read_fragment(3, b"big") == data      # and reads back whole
    assert resident_fraction(path, offset, size) > 0.95       # a read keeps what it read


async def test_small_fragment_stays_cached(device: Device) -> None:
    data = random.Random(3).randbytes(limits.uncached_record_bytes_min // 2)
    await device.put_fragment(3, b"small", len(data), chunks(data, 1 << 20))
    path, offset, size = await _record_span(device, b"small")
    assert resident_fraction(path, offset, size) > 0.95
    assert os.path.getsize(path) >= offset + size
