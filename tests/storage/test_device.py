"""The device engine: reads and writes, group commit, corruption, rebuild, capacity, failure."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import os
import random
import shutil
from pathlib import Path

import pytest

from storage import limits
from storage.device import Device
from storage.errors import BadRequest, Corrupt, DeviceFailed, DeviceFull, NotFound
from storage.rebuild import rebuild_index
from tests.storage.conftest import SMALL_SEGMENT_BYTES, chunks

CHUNK = limits.chunk_size_bytes


async def reopen(dev: Device, executor: concurrent.futures.Executor, **kw: int) -> Device:
    if not dev.failed:
        await dev.close()
    new = Device(dev.id, dev.path, executor=executor, segment_size_bytes=SMALL_SEGMENT_BYTES,
                 **kw)  # type: ignore[arg-type]
    await new.open()
    return new


async def test_round_trip_ranges_and_stream(device: Device) -> None:
    data = random.Random(1).randbytes(3 * 1024 * 1024 + 12345)
    await device.put_fragment(5, b"big", len(data), chunks(data, 100_000))
    assert await device.read_fragment(5, b"big") == data
    for off, n in [(0, 1), (CHUNK - 1, 2), (CHUNK, CHUNK), (len(data) - 1, 1),
                   (1_000_000, 2_000_000), (7, None)]:
        want = data[off:] if n is None else data[off:off + n]
        assert await device.read_fragment(5, b"big", off, n) == want
    entry = await device.stat_fragment(5, b"big")
    assert entry.loc.body_len == len(data)
    got = b"".join([p async for p in device.iter_fragment(entry, 10, len(data) - 20)])
    assert got == data[10:-10]
    await device.put_fragment(5, b"", 0, chunks(b""))
    assert await device.read_fragment(5, b"") == b""


async def test_bad_lengths_leave_nothing(device: Device) -> None:
    with pytest.raises(BadRequest):
        await device.put_fragment(1, b"short", 10, chunks(b"123"))
    with pytest.raises(BadRequest):
        await device.put_fragment(1, b"long", 2, chunks(b"123"))
    big = b"x" * (2 * limits.write_batch_bytes)
    with pytest.raises(BadRequest):  # after the region was reserved and partly written
        await device.put_fragment(1, b"short2", len(big) + 1, chunks(big))
    for key in (b"short", b"long", b"short2"):
        with pytest.raises(NotFound):
            await device.read_fragment(1, key)
    assert not any(device.segments.busy(s) for s in device.segments.sealed_ids())
    assert not device.segments.busy(device.segments.active_id())


async def test_concurrent_writers_share_commits(device: Device) -> None:
    n = 200
    bodies = {b"k%d" % i: os.urandom(4096) for i in range(n)}
    await asyncio.gather(*(device.put_fragment(2, k, 4096, chunks(v))
                           for k, v in bodies.items()))
    print("commits", device.committer.batches, "ops", device.committer.ops)
    assert device.committer.batches < n // 2
    for k, v in bodies.items():
        assert await device.read_fragment(2, k) == v


async def test_racing_equal_stamps_one_wins_and_the_other_sees_it(device: Device) -> None:
    """Two puts of one stamp at once both pass the early check; the one that loses at the
    commit answers the record that won, not the older one it saw first (put_above's claims
    rely on it: gateway/uploads.py)."""
    await device.put_meta(1, b"c", 5, b"open")
    (a_applied, a_prev), (b_applied, b_prev) = await asyncio.gather(
        device.put_meta_previous(1, b"c", 6, b"mine"),
        device.put_meta_previous(1, b"c", 6, b"theirs"))
    assert [a_applied, b_applied].count(True) == 1
    won, lost = (a_prev, b_prev) if a_applied else (b_prev, a_prev)
    assert won is not None and won.ts == 5
    assert lost is not None and lost.ts == 6


async def test_delete_is_idempotent_and_meta_newest_wins(device: Device) -> None:
    await device.put_fragment(1, b"a", 3, chunks(b"abc"))
    assert await device.delete_fragment(1, b"a")
    assert not await device.delete_fragment(1, b"a")
    assert await device.put_meta(1, b"m", 10, b"ten")
    assert not await device.put_meta(1, b"m", 10, b"other ten")
    assert not await device.put_meta(1, b"m", 9, b"nine")
    got = await device.get_meta(1, b"m")
    assert got is not None and (got.ts, got.value) == (10, b"ten")
    assert await device.put_meta(1, b"m", 11, None)
    got = await device.get_meta(1, b"m")
    assert got is not None and got.value is None


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


async def test_flipped_byte_is_refused_quarantined_and_queued(device: Device) -> None:
    data = os.urandom(5 * CHUNK)
    await device.put_fragment(3, b"victim", len(data), chunks(data))
    await device.put_fragment(3, b"bystander", 10, chunks(b"0123456789"))
    loc = (await device.stat_fragment(3, b"victim")).loc
    seg = device.path / "segments" / f"{loc.segment:06d}.seg"
    step = CHUNK + 8
    _flip(seg, loc.offset + loc.head_bytes + 3 * step + 100)  # inside chunk 3
    # A range that does not touch chunk 3 is still served, verified.
    assert await device.read_fragment(3, b"victim", 0, 2 * CHUNK) == data[:2 * CHUNK]
    with pytest.raises(Corrupt):
        await device.read_fragment(3, b"victim", 3 * CHUNK + 5, 10)
    with pytest.raises(NotFound):  # quarantined: never served again
        await device.read_fragment(3, b"victim")
    jobs = device.index.repair_jobs()
    assert [(j.partition, j.key) for j in jobs] == [(3, b"victim")]
    info = await device.info()
    assert info["quarantined"] == 1 and info["repair_jobs"] == 1
    assert await device.read_fragment(3, b"bystander") == b"0123456789"


async def test_corrupt_piece_while_streaming_is_not_served(device: Device) -> None:
    data = os.urandom(40 * CHUNK)
    await device.put_fragment(3, b"s", len(data), chunks(data))
    entry = await device.stat_fragment(3, b"s")
    loc = entry.loc
    seg = device.path / "segments" / f"{loc.segment:06d}.seg"
    _flip(seg, loc.offset + loc.head_bytes + 30 * (CHUNK + 8))
    served = b""
    with pytest.raises(Corrupt):
        async for piece in device.iter_fragment(entry):
            served += piece
    assert served == data[:len(served)] and len(served) <= 30 * CHUNK


async def test_truncated_segment(device: Device, executor: concurrent.futures.Executor
                                 ) -> None:
    bodies = {b"t%d" % i: os.urandom(3000 + i) for i in range(10)}
    for k, v in bodies.items():
        await device.put_fragment(0, k, len(v), chunks(v))
    last = (await device.stat_fragment(0, b"t9")).loc
    seg = device.path / "segments" / f"{last.segment:06d}.seg"
    dev = await reopen(device, executor)
    os.truncate(seg, last.offset + last.stored_bytes - 20)
    with pytest.raises(Corrupt):
        await dev.read_fragment(0, b"t9")
    for i in range(9):
        assert await dev.read_fragment(0, b"t%d" % i) == bodies[b"t%d" % i]
    await dev.close()
    stats = rebuild_index(dev.path)
    assert stats["fragments"] == 9 and stats["damaged_records"] == 0
    assert stats["garbage_bytes"] > 0  # the torn record, not indexed
    dev = await reopen(dev, executor)
    with pytest.raises(NotFound):
        await dev.read_fragment(0, b"t9")
    assert await dev.read_fragment(0, b"t3") == bodies[b"t3"]
    await dev.close()


async def test_rebuild_index_restores_every_live_record(
        device: Device, executor: concurrent.futures.Executor) -> None:
    seed = 77
    print("seed", seed)
    rng = random.Random(seed)
    frags: dict[bytes, bytes] = {}
    metas: dict[bytes, tuple[int, bytes | None]] = {}
    long_prefix = b"L" * 600
    for i in range(150):
        key = (long_prefix if i % 3 == 0 else b"") + b"f%d" % rng.randrange(60)
        body = rng.randbytes(rng.randrange(0, 3 * CHUNK))
        part = key[-1] % 4
        await device.put_fragment(part, key, len(body), chunks(body))
        frags[key] = body
        if rng.random() < 0.2:
            await device.delete_fragment(part, key)
            del frags[key]
        mkey = (long_prefix if i % 2 else b"") + b"m%d" % rng.randrange(40)
        ts = rng.randrange(1, 2**100)
        value = None if rng.random() < 0.2 else rng.randbytes(rng.randrange(0, 3000))
        if await device.put_meta(7, mkey, ts, value):
            metas[mkey] = (ts, value)
    parts = {}
    for i in range(4):
        for e in await device.list_fragments(i, b"", 10_000):
            parts[e.key] = i
    assert set(parts) == set(frags)
    await device.close()
    shutil.rmtree(device.path / "index.lmdb")
    rebuild_index(device.path)
    dev = await reopen(device, executor)
    for key, body in frags.items():
        assert await dev.read_fragment(parts[key], key) == body
    listed = [e.key for i in range(4) for e in await dev.list_fragments(i, b"", 10_000)]
    assert sorted(listed) == sorted(frags)
    got = await dev.list_meta(7, b"", None, None, 10_000)
    assert {m.key: (m.ts, m.value) for m in got} == metas
    assert [m.key for m in got] == sorted(metas)
    await dev.close()


async def test_capacity_full_is_clean(tmp_path: Path,
                                      executor: concurrent.futures.Executor) -> None:
    dev = Device(1, tmp_path / "full", executor=executor, capacity_bytes=2 * 1024 * 1024,
                 segment_size_bytes=SMALL_SEGMENT_BYTES)
    await dev.open()
    stored: dict[bytes, bytes] = {}
    with pytest.raises(DeviceFull):
        for i in range(10_000):
            body = os.urandom(50_000)
            await dev.put_fragment(1, b"c%d" % i, len(body), chunks(body))
            stored[b"c%d" % i] = body
    assert len(stored) > 5
    with pytest.raises(DeviceFull):
        await dev.put_meta(1, b"m", 1, os.urandom(500_000))
    for k, v in stored.items():  # nothing already stored was harmed
        assert await dev.read_fragment(1, k) == v
    info = await dev.info()
    assert info["free_bytes"] == 0 or int(str(info["free_bytes"])) < 100_000
    assert not dev.failed
    await dev.close()


async def test_io_error_fails_only_that_device(
        device: Device, monkeypatch: pytest.MonkeyPatch) -> None:
    await device.put_fragment(1, b"before", 3, chunks(b"abc"))

    def broken(*_a: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(device.segments, "sync", broken)
    with pytest.raises(DeviceFailed):
        await device.put_fragment(1, b"after", 3, chunks(b"def"))
    assert device.failed
    with pytest.raises(DeviceFailed):
        await device.read_fragment(1, b"before")
    info = await device.info()
    assert info["failed"] is True and "Input/output" in str(info["failed_reason"])


async def test_scrub_finds_and_quarantines_bitrot(device: Device) -> None:
    from storage.scrub import scrub_device

    for i in range(20):
        body = os.urandom(3 * CHUNK)
        await device.put_fragment(4, b"s%d" % i, len(body), chunks(body))
    await device.put_meta(4, b"meta", 1, b"value")
    loc = (await device.stat_fragment(4, b"s7")).loc
    _flip(device.path / "segments" / f"{loc.segment:06d}.seg",
          loc.offset + loc.head_bytes + 2 * (CHUNK + 8) + 1)
    stats = await scrub_device(device, rate_bytes_per_s=1e12)
    assert (stats.fragments, stats.corrupt, stats.meta_records) == (20, 1, 1)
    assert [j.key for j in device.index.repair_jobs()] == [b"s7"]
    again = await scrub_device(device, rate_bytes_per_s=1e12)
    assert (again.fragments, again.corrupt) == (19, 0)


async def test_stamps_grow_across_restarts(device: Device, executor: concurrent.futures.Executor,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    await device.put_fragment(1, b"k", 1, chunks(b"a"))
    await device.delete_fragment(1, b"k")
    stamp = device.index.fragment_stamp()
    assert stamp > 0
    monkeypatch.setattr("storage.device.time.time_ns", lambda: 1)  # the clock stepped back
    dev = await reopen(device, executor)
    await dev.put_fragment(1, b"k", 1, chunks(b"b"))
    assert (await dev.stat_fragment(1, b"k")).ts > stamp
    await dev.close()
    rebuild_index(dev.path)  # the newest record is the second put, not the delete
    dev = await reopen(dev, executor)
    assert await dev.read_fragment(1, b"k") == b"b"
    await dev.close()
