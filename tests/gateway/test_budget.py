"""The process-wide memory budget: bounded, first come first served, never stuck."""

from __future__ import annotations

import asyncio
import random

import pytest

from gateway.budget import Budget


async def test_holds_block_until_released_in_order() -> None:
    b = Budget(100)
    await b.acquire(60)
    order: list[str] = []

    async def want(name: str, n: int) -> None:
        async with b.hold(n):
            order.append(name)
            await asyncio.sleep(0)

    big = asyncio.create_task(want("big", 80))
    await asyncio.sleep(0)
    small = asyncio.create_task(want("small", 10))  # would fit, but queues behind "big"
    await asyncio.sleep(0.01)
    assert order == [] and b.held_bytes == 60
    b.release(60)
    await asyncio.gather(big, small)
    assert order == ["big", "small"]
    assert b.held_bytes == 0 and b.peak_bytes <= 100


async def test_oversized_reservation_passes_alone() -> None:
    b = Budget(10)
    async with b.hold(50):
        assert b.held_bytes == 50
    assert b.held_bytes == 0


async def test_cancelled_waiter_lets_the_next_through() -> None:
    b = Budget(10)
    await b.acquire(10)
    stuck = asyncio.create_task(b.acquire(10))
    nxt = asyncio.create_task(b.acquire(5))
    await asyncio.sleep(0.01)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
    b.release(10)
    await asyncio.wait_for(nxt, 1)
    assert b.held_bytes == 5


async def test_random_workload_never_exceeds_capacity() -> None:
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rnd = random.Random(seed)
    b = Budget(1000)

    async def worker() -> None:
        for _ in range(50):
            n = rnd.randrange(1, 400)
            async with b.hold(n):
                assert b.held_bytes <= 1000
                await asyncio.sleep(rnd.random() / 1000)

    await asyncio.gather(*(worker() for _ in range(20)))
    assert b.held_bytes == 0 and b.peak_bytes <= 1000
