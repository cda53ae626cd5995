"""Compaction under concurrent reads and writes after deleting 70% of the records."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import random
import shutil
from pathlib import Path

import pytest

from storage.compaction import compact_device
from storage.device import Device
from storage.errors import DeviceFull, NotFound
from storage.rebuild import rebuild_index
from storage.scrub import scrub_device
from tests.storage.conftest import SMALL_SEGMENT_BYTES, chunks, segment_bytes_on_disk


async def test_compaction_under_live_traffic(device: Device,
                                             executor: concurrent.futures.Executor) -> None:
    seed = 2024
    print("seed", seed)
    rng = random.Random(seed)
    live: dict[bytes, bytes] = {}
    for i in range(400):
        body = rng.randbytes(rng.randrange(1000, 9000))
        await device.put_fragment(1, b"k%04d" % i, len(body), chunks(body))
        live[b"k%04d" % i] = body
        if i % 8 == 0:
            await device.put_meta(2, b"m%04d" % i, i + 1, body[:100])
    doomed = rng.sample(sorted(live), k=int(0.7 * len(live)))
    for key in doomed:
        assert await device.delete_fragment(1, key)
        del live[key]
    before = segment_bytes_on_disk(device.path)

    stop = asyncio.Event()
    reads = 0

    async def reader() -> None:
        nonlocal reads
        keys = sorted(live)
        while not stop.is_set():
            key = rng.choice(keys)
            assert await device.read_fragment(1, key) == live[key]
            reads += 1

    async def writer() -> None:
        i = 0
        while not stop.is_set():
            body = rng.randbytes(3000)
            await device.put_fragment(3, b"new%d" % i, len(body), chunks(body))
            new[b"new%d" % i] = body
            i += 1

    new: dict[bytes, bytes] = {}
    traffic = [asyncio.create_task(reader()) for _ in range(4)] + [asyncio.create_task(writer())]
    results = await compact_device(device)
    stop.set()
    await asyncio.gather(*traffic)
    after = segment_bytes_on_disk(device.path)
    print(f"compacted {len(results)} segments, {before} -> {after} bytes, {reads} reads")
    assert len(results) >= 5
    assert after < 0.6 * before
    for key, body in live.items():
        assert await device.read_fragment(1, key) == body
    for key, body in new.items():
        assert await device.read_fragment(3, key) == body
    for key in doomed[:20]:
        try:
            await device.read_fragment(1, key)
            raise AssertionError("deleted fragment came back")
        except NotFound:
            pass
    metas = await device.list_meta(2, b"", None, None, 1000)
    assert len(metas) == 50

    stats = await scrub_device(device, rate_bytes_per_s=1e12)
    assert stats.corrupt == 0 and stats.fragments == len(live) + len(new)

    # Tombstones were kept as long as needed: a rebuilt index resurrects nothing.
    await device.close()
    shutil.rmtree(device.path / "index.lmdb")
    rebuild_index(device.path)
    dev = Device(1, device.path, executor=executor, segment_size_bytes=SMALL_SEGMENT_BYTES)
    await dev.open()
    listed = {e.key for e in await dev.list_fragments(1, b"", 10_000)}
    assert listed == set(live)
    assert len(await dev.list_fragments(3, b"", 10_000)) == len(new)
    await dev.close()


async def test_a_full_device_can_reclaim_deleted_space(
        tmp_path: Path, executor: concurrent.futures.Executor) -> None:
    dev = Device(1, tmp_path / "full", executor=executor, capacity_bytes=2 * 1024 * 1024,
                 segment_size_bytes=SMALL_SEGMENT_BYTES)
    await dev.open()
    kept: dict[bytes, bytes] = {}
    with pytest.raises(DeviceFull):
        for i in range(10_000):
            body = os.urandom(40_000)
            await dev.put_fragment(1, b"c%d" % i, len(body), chunks(body))
            kept[b"c%d" % i] = body
    for key in sorted(kept)[::4] + sorted(kept)[1::4] + sorted(kept)[2::4]:
        await dev.delete_fragment(1, key)
        del kept[key]
    assert await compact_device(dev)
    body = os.urandom(40_000)
    await dev.put_fragment(1, b"after", len(body), chunks(body))  # room again
    for key, value in kept.items():
        assert await dev.read_fragment(1, key) == value
    await dev.close()
