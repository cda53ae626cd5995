"""Background work of a node: compaction and scrubbing loops, one pair per node.

Rules: each loop catches and logs its own failures (a failed device is skipped until the
node restarts) so background work never takes the server down; stop() cancels both loops
and waits for them, which the server does before closing the devices. The scrubber paces
itself and yields to client work (scrub.py); its loop runs in its own task so that its
device calls count as background work.
"""

from __future__ import annotations

import asyncio
import logging

from storage import limits
from storage.compaction import compact_device
from storage.node import Node
from storage.scrub import Pace, scrub_device

log = logging.getLogger("coffre.storage.maintenance")

COMPACTION_INTERVAL_S = 30.0
SCRUB_PAUSE_S = 60.0  # between two full passes


class Maintenance:
    def __init__(self, node: Node, *, scrub_rate_bytes_per_s: float =
                 limits.scrub_rate_bytes_per_s,
                 compaction_interval_s: float = COMPACTION_INTERVAL_S,
                 scrub_pause_s: float = SCRUB_PAUSE_S, scrub_pace: Pace | None = None) -> None:
        self._node = node
        self._pace = scrub_pace or Pace(bytes_per_s=scrub_rate_bytes_per_s)
        self._compaction_interval_s = compaction_interval_s
        self._scrub_pause_s = scrub_pause_s
        self.compacted = 0  # segments compacted so far
        self.scrub_passes = 0
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._compaction_loop(), name="compaction"),
                       asyncio.create_task(self._scrub_loop(), name="scrub")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _compaction_loop(self) -> None:
        while True:
            await asyncio.sleep(self._compaction_interval_s)
            for dev in self._node.devices.values():
                if dev.failed:
                    continue
                try:
                    for r in await compact_device(dev):
                        self.compacted += 1
                        log.info("device %s: compacted segment %s, copied %s bytes, "
                                 "freed %s", dev.id, r.segment, r.bytes_copied, r.bytes_freed)
                except Exception:
                    log.exception("device %s: compaction failed", dev.id)

    async def _scrub_loop(self) -> None:
        while True:
            await asyncio.sleep(self._scrub_pause_s)
            for dev in self._node.devices.values():
                if dev.failed:
                    continue
                try:
                    stats = await scrub_device(dev, pace=self._pace)
                    self.scrub_passes += 1
                    if stats.corrupt:
                        log.warning("device %s: scrub found %s corrupt records",
                                    dev.id, stats.corrupt)
                except Exception:
                    log.exception("device %s: scrub failed", dev.id)
