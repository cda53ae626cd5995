"""The scrubber: re-read every fragment and metadata record at a bounded rate.

Rules:
- It reads through the same verified path as a client read, so a mismatch has the same
  effect (quarantine + repair job).
- Fragments are paced by bytes (rate_bytes_per_s, leaving the disk to clients); metadata
  records by count (meta_records_per_s): a record is a few hundred bytes, so a byte budget
  let a pass over a million records run flat out and take a core.
- It yields to clients: while the device served client work within the last
  busy_window_s, it goes busy_slowdown times slower (never stops: a node that is always
  busy still gets scrubbed, slowly).
- A pass walks the index page by page and never holds a read transaction across a sleep.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from storage import limits
from storage.device import Device, mark_background
from storage.errors import Corrupt, NotFound, SegmentGone

# Records per trip to the I/O threads: short enough (~1 ms of work) not to hold the GIL
# against the event loop for long.
_PAGE = 256


@dataclass(frozen=True)
class Pace:
    bytes_per_s: float = limits.scrub_rate_bytes_per_s
    meta_records_per_s: float = limits.scrub_meta_records_per_s
    busy_window_s: float = limits.scrub_busy_window_s
    busy_slowdown: float = limits.scrub_busy_slowdown

    def factor(self, dev: Device) -> float:
        return self.busy_slowdown if dev.idle_s() < self.busy_window_s else 1.0


@dataclass
class ScrubStats:
    fragments: int = 0
    meta_records: int = 0
    bytes_read: int = 0
    corrupt: int = 0


async def scrub_device(dev: Device, rate_bytes_per_s: float = limits.scrub_rate_bytes_per_s,
                       pace: Pace | None = None) -> ScrubStats:
    """One full pass over the device (run it in its own task: the task's device calls are
    marked background work)."""
    mark_background()
    pace = pace or Pace(bytes_per_s=rate_bytes_per_s)
    stats = ScrubStats()
    await _scrub_fragments(dev, stats, pace)
    await _scrub_meta(dev, stats, pace)
    return stats


async def _scrub_fragments(dev: Device, stats: ScrubStats, pace: Pace) -> None:
    cursor = b""
    while True:
        page, cursor = await dev.run_io(dev.index.scan_fragments, cursor, _PAGE)
        for entry in page:
            stats.fragments += 1
            try:
                async for piece in dev.iter_fragment(entry):
                    stats.bytes_read += len(piece)
                    await asyncio.sleep(len(piece) / pace.bytes_per_s * pace.factor(dev))
            except Corrupt:
                stats.corrupt += 1
            except (SegmentGone, NotFound):
                pass  # compacted or deleted meanwhile: nothing left to check
        if len(page) < _PAGE:
            return


async def _scrub_meta(dev: Device, stats: ScrubStats, pace: Pace) -> None:
    cursor = b""
    while True:
        started = time.monotonic()
        checked, corrupt, cursor = await dev.run_io(dev.index.check_meta, cursor, _PAGE)
        stats.meta_records += checked
        for partition, key in corrupt:
            stats.corrupt += 1
            try:
                await dev.get_meta(partition, key)  # the verified read quarantines it
            except Corrupt:
                pass
        if checked < _PAGE:
            return
        # The page's share of the budget, less the time the page itself took.
        budget_s = checked / pace.meta_records_per_s * pace.factor(dev)
        await asyncio.sleep(max(0.0, budget_s - (time.monotonic() - started)))
