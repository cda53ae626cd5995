"""The scrubber: re-read every fragment and metadata record at a bounded rate.

Rules: it reads through the same verified path as a client read, so a mismatch has the same
effect (quarantine + repair job); it sleeps so that the bytes it reads average at most
rate_bytes_per_s, leaving the disk to clients. A pass walks the index page by page and never
holds a read transaction across a sleep.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from storage import limits
from storage.device import Device
from storage.errors import Corrupt, NotFound, SegmentGone

_PAGE = 256


@dataclass
class ScrubStats:
    fragments: int = 0
    meta_records: int = 0
    bytes_read: int = 0
    corrupt: int = 0


async def scrub_device(dev: Device, rate_bytes_per_s: float = limits.scrub_rate_bytes_per_s
                       ) -> ScrubStats:
    stats = ScrubStats()
    cursor = b""
    while True:
        page, cursor = await dev.run_io(dev.index.scan_fragments, cursor, _PAGE)
        for entry in page:
            stats.fragments += 1
            try:
                async for piece in dev.iter_fragment(entry):
                    stats.bytes_read += len(piece)
                    await asyncio.sleep(len(piece) / rate_bytes_per_s)
            except Corrupt:
                stats.corrupt += 1
            except (SegmentGone, NotFound):
                pass  # compacted or deleted meanwhile: nothing left to check
        if len(page) < _PAGE:
            break
    await _scrub_meta(dev, stats)
    return stats


async def _scrub_meta(dev: Device, stats: ScrubStats) -> None:
    cursor = b""
    while True:
        page, cursor = await dev.run_io(dev.index.scan_meta, cursor, _PAGE)
        for entry in page:
            stats.meta_records += 1
            if not entry.intact:
                stats.corrupt += 1
                try:
                    await dev.get_meta(entry.partition, entry.key)  # quarantines it
                except Corrupt:
                    pass
        if len(page) < _PAGE:
            return
        await asyncio.sleep(0)
