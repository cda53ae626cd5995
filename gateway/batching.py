"""Batched durable writes of per-process records (a group commit for counters).

Counters and metering keep absolute totals in memory, one record per key that only this
process writes. A caller marks its key dirty and waits for the round that carries its
change: concurrent callers share one round of quorum writes, and a caller is answered only
once its change is durable. A failed round leaves the keys dirty (rewriting absolute values
is safe) and fails its waiters; the next change or an explicit retry writes them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Generic, TypeVar

K = TypeVar("K")


class BatchedWriter(Generic[K]):
    def __init__(self, write: Callable[[Collection[K]], Awaitable[None]],
                 after_round: Callable[[], None] | None = None) -> None:
        self._write = write         # one round: makes the current values of these keys durable
        self._after_round = after_round
        self.dirty: set[K] = set()
        self._batch: asyncio.Future[None] | None = None   # done when the next round lands
        self._task: asyncio.Task[None] | None = None

    async def changed(self, key: K) -> None:
        """Mark `key` dirty; return once a round has written it."""
        self.dirty.add(key)
        await self._wait_round()

    async def retry(self) -> None:
        """Write what a failed round left dirty (no-op when nothing is, or a round runs)."""
        if self.dirty and self._task is None:
            await self._wait_round()

    async def _wait_round(self) -> None:
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        if self._task is None:
            self._task = asyncio.ensure_future(self._rounds())
        await asyncio.shield(batch)

    async def _rounds(self) -> None:
        """Write dirty keys until none are left; each round answers its waiters."""
        try:
            while self.dirty:
                dirty, self.dirty = self.dirty, set()
                batch, self._batch = self._batch, None
                try:
                    await self._write(dirty)
                except Exception as exc:
                    # Stop rather than spin while the metadata replicas are unreachable.
                    self.dirty |= dirty
                    if batch is not None:
                        batch.set_exception(exc)
                        batch.exception()       # retrieved: no "never retrieved" warning
                    break
                if batch is not None:
                    batch.set_result(None)
                if self._after_round is not None:
                    self._after_round()
        finally:
            self._task = None
