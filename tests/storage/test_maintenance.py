"""The node's background loops compact and scrub on their own, and stop cleanly."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from storage.maintenance import Maintenance
from storage.node import Node, NodeConfig
from tests.storage.conftest import SMALL_SEGMENT_BYTES, chunks, segment_bytes_on_disk


async def test_background_loops_compact_and_scrub(tmp_path: Path) -> None:
    node = Node(NodeConfig(devices={1: tmp_path / "d"}, segment_size_bytes=SMALL_SEGMENT_BYTES))
    await node.open()
    dev = node.devices[1]
    bodies = {b"k%d" % i: os.urandom(20_000) for i in range(60)}
    for k, v in bodies.items():
        await dev.put_fragment(0, k, len(v), chunks(v))
    for k in sorted(bodies)[:45]:
        await dev.delete_fragment(0, k)
        del bodies[k]
    before = segment_bytes_on_disk(dev.path)
    work = Maintenance(node, scrub_rate_bytes_per_s=1e12, compaction_interval_s=0.01,
                       scrub_pause_s=0.01)
    work.start()
    for _ in range(500):
        if work.compacted and work.scrub_passes:
            break
        await asyncio.sleep(0.02)
    await work.stop()
    assert work.compacted and work.scrub_passes
    assert segment_bytes_on_disk(dev.path) < before
    for k, v in bodies.items():
        assert await dev.read_fragment(0, k) == v
    await node.close()
