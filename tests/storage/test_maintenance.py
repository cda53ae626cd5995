"""The node's background loops compact and scrub on their own, and stop cleanly."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from storage import scrub
from storage.device import Device
from storage.index import Location, MetaEntry, PutMeta
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


async def _meta_records(dev: Device, n: int) -> None:
    ops = [PutMeta(MetaEntry(2, b"m%05d" % i, i + 1, b"v", Location(1, 0, 60, 1, 65536, 80)))
           for i in range(n)]
    await dev.run_io(dev.index.apply, ops)


async def test_scrub_paces_metadata_by_record_count_and_slows_down_when_busy(
        device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    await _meta_records(device, 2000)
    slept: list[float] = []

    async def fake_sleep(s: float) -> None:
        slept.append(s)

    monkeypatch.setattr("storage.scrub.asyncio.sleep", fake_sleep)
    idle = scrub.Pace(bytes_per_s=1e12, meta_records_per_s=1000.0, busy_window_s=0.0)
    quiet_for = device.idle_s()
    stats = await scrub.scrub_device(device, pace=idle)
    assert stats.meta_records == 2000 and stats.corrupt == 0
    # ~2 s of budget for 2000 records at 1000/s (less the time the pages took) ...
    assert 1.0 < sum(slept) <= 2.0
    assert device.idle_s() >= quiet_for     # ... and the pass is not client activity
    slept.clear()
    await device.get_meta(2, b"m00001")         # client work: the device is busy now
    await scrub.scrub_device(device, pace=scrub.Pace(1e12, 1000.0, busy_window_s=3600.0))
    assert sum(slept) > 10.0


async def test_scrub_of_metadata_finds_a_corrupt_value(device: Device) -> None:
    await _meta_records(device, 300)
    raw_key = b"\x00\x00\x00\x02" + b"m00123"
    with device.index._kv.write() as txn:       # flip the value's last byte in LMDB
        raw = txn.get("meta", raw_key)
        assert raw is not None
        txn.put("meta", raw_key, raw[:-1] + bytes([raw[-1] ^ 1]))
    stats = await scrub.scrub_device(device, pace=scrub.Pace(meta_records_per_s=1e9))
    assert (stats.meta_records, stats.corrupt) == (300, 1)
    assert [(j.partition, j.key) for j in device.index.repair_jobs()] == [(2, b"m00123")]
    assert await device.get_meta(2, b"m00123") is None
