"""The rebalancer's metadata unit compares partition summaries before it pulls records."""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ring.builder import build_ring
from ring.model import Device as RingDevice
from ring.model import Ring
from storage.client import MetaRecord
from storage.device import Device
from storage.rebalance_units import Units


class _Peers:
    """A NodeClient stand-in that serves other devices in-process and counts the pulls."""

    def __init__(self, devices: dict[int, Device]) -> None:
        self.devices = devices
        self.pulls = 0

    async def partition_summary(self, addr: str, device: int, partition: int
                                ) -> dict[str, int | str]:
        return await self.devices[device].partition_summary(partition)

    async def list_meta(self, addr: str, device: int, partition: int, prefix: bytes,
                        start_after: bytes | None = None, start_at: bytes | None = None,
                        limit: int = 1000, delimiter: bytes | None = None) -> list[MetaRecord]:
        self.pulls += 1
        got = await self.devices[device].list_meta(partition, prefix, start_after, start_at,
                                                   limit)
        return [MetaRecord(e.key, e.ts, e.value) for e in got]

    async def put_meta(self, addr: str, device: int, partition: int, key: bytes, ts: int,
                       value: bytes | None) -> None:
        await self.devices[device].put_meta(partition, key, ts, value)


@pytest.fixture
async def three(tmp_path: Path, executor: concurrent.futures.ThreadPoolExecutor
                ) -> AsyncIterator[dict[int, Device]]:
    devs = {i: Device(i, tmp_path / f"d{i}", executor=executor) for i in range(3)}
    for d in devs.values():
        await d.open()
    yield devs
    for d in devs.values():
        await d.close()


def _ring() -> Ring:
    return build_ring([RingDevice(i, f"127.0.0.1:{i + 1}", 1.0, f"r/z/n{i}/d0")
                       for i in range(3)], 1, 3)


def _units(peers: _Peers) -> Units:
    async def gate(_n: int) -> None:
        pass

    client: Any = peers     # duck-typed: only the calls meta_unit makes
    nothing: Any = lambda *_a: None      # noqa: E731 - error and moved reports unused here
    return Units(client=lambda: client, gate=gate, error=nothing, moved=nothing,
                 rings=lambda: [])


async def test_equal_replicas_are_not_pulled_and_a_difference_is(
        three: dict[int, Device]) -> None:
    for d in three.values():
        for i in range(50):
            await d.put_meta(0, b"k%02d" % i, i + 1, b"v%d" % i)
    peers = _Peers(three)
    units = _units(peers)
    unit = await units.meta_unit(three[0], _ring(), 0)
    assert peers.pulls == 0 and unit.counters.meta_copied == 0
    await three[2].put_meta(0, b"k07", 100, None)      # a newer delete on one replica
    await three[2].put_meta(0, b"new", 5, b"x")
    unit = await units.meta_unit(three[0], _ring(), 0)
    assert peers.pulls == 1 and unit.counters.meta_copied == 2
    got = await three[0].get_meta(0, b"k07")
    assert got is not None and got.value is None and got.ts == 100
    assert (await three[0].partition_summary(0))["meta_hash"] == (
        await three[2].partition_summary(0))["meta_hash"]
