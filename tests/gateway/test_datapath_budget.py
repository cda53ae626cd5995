"""The PUT path's blocks count against the memory budget until the fragment uploads have
written them, not merely queued them (DataPath with a stand-in for the nodes: a unit test
of datapath.py alone; the cluster tests exercise the real path)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator

from gateway import limits
from gateway.budget import Budget
from gateway.datapath import DataPath
from ring.builder import build_ring
from ring.model import Device, Ring

BLOCK = limits.stripe_block_bytes
K, M = 4, 2


class _Rings:
    def __init__(self) -> None:
        devs = [Device(i, f"127.0.0.1:{9100 + i}", 1.0, f"r/z/n{i}/d0") for i in range(K + M)]
        self._ring = build_ring(devs, 4, K + M)

    def data(self, width: int) -> Ring:
        assert width == K + M
        return self._ring


class _Nodes:
    """Takes fragment bodies; the first fragment asked for is not read until `go` is set."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.slow: bytes | None = None
        self.read: dict[bytes, int] = {}      # bytes of each fragment read so far

    async def put_fragment(self, addr: str, device: int, partition: int, key: bytes,
                           length: int, body: AsyncIterable[bytes | memoryview]) -> None:
        if self.slow is None:
            self.slow = key
        if key == self.slow:
            await self.go.wait()
        self.read[key] = 0
        async for piece in body:
            self.read[key] += len(piece)
        assert self.read[key] == length

    async def ping(self, addr: str) -> None:
        return None

    def drop_connections(self, addr: str) -> None:
        return None


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65536):
        yield data[i:i + 65536]
        await asyncio.sleep(0)


async def test_blocks_queued_for_a_slow_node_stay_in_the_budget() -> None:
    data = random.Random(5).randbytes(12 * K * BLOCK)
    budget = Budget(1 << 30)
    nodes = _Nodes()
    path = DataPath(_Rings(), nodes, budget=budget)  # type: ignore[arg-type]
    write = asyncio.ensure_future(path.write(_body(data), len(data), K, M, lambda _b: None))
    # The pump runs until the slow fragment holds it back: nothing moves for 0.3 s.
    seen: tuple[int, int] = (-1, -1)
    for _ in range(50):
        await asyncio.sleep(0.3)
        now = (budget.held_bytes, sum(nodes.read.values()))
        if now == seen:
            break
        seen = now
    assert not write.done()
    # Every stripe the other fragments have read is still alive, its block waiting in the
    # slow fragment's queue (its data blocks are views of the stripe's buffer): all of
    # them must be held. Before, a block left the budget once queued: 5 stripes were
    # alive here, 2 held.
    alive = max(nodes.read.values()) // BLOCK
    assert alive >= 1
    assert budget.held_bytes >= alive * K * BLOCK
    nodes.go.set()
    ref = await write
    assert ref.size == len(data)
    assert budget.held_bytes == 0
