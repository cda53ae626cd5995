"""gateway/batching.py: concurrent changes share rounds, a waiter is answered by a round
that carries its change, a failed round fails its waiters and keeps the keys dirty."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

import pytest

from gateway.batching import BatchedWriter


class Store:
    """A round's write that takes `delay_s` and records (loop time it began, key) per key."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.rounds: list[tuple[float, str]] = []
        self.fail: Exception | None = None

    async def write(self, keys: Collection[str]) -> None:
        began = asyncio.get_running_loop().time()
        self.rounds.extend((began, k) for k in keys)
        await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail


async def test_concurrent_changes_share_a_round_and_later_ones_the_next() -> None:
    store = Store(delay_s=0.01)
    writer = BatchedWriter(store.write)
    await asyncio.gather(*(writer.changed("a") for _ in range(20)))
    assert [k for _, k in store.rounds] == ["a"]              # twenty callers, one write
    # Changes that come while a round runs are not in it: they wait for the next one.
    first = asyncio.ensure_future(writer.changed("a"))
    await asyncio.sleep(0)
    later = [asyncio.ensure_future(writer.changed(k)) for k in ("a", "b", "b")]
    await first
    assert not any(w.done() for w in later)
    await asyncio.gather(*later)
    assert sorted(k for _, k in store.rounds[2:]) == ["a", "b"]    # one round for all three


async def test_a_failed_round_fails_its_waiters_and_a_retry_writes_again() -> None:
    store = Store()
    store.fail = ConnectionError("quorum lost")
    writer = BatchedWriter(store.write)
    with pytest.raises(ConnectionError):
        await writer.changed("k")
    assert writer.dirty == {"k"}
    store.fail = None
    await writer.retry()
    assert writer.dirty == set() and [k for _, k in store.rounds] == ["k", "k"]
