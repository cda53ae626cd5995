"""A process-wide memory budget for object bytes in flight (stripes being encoded, sent,
fetched or decoded).

Why: each upload and download keeps at most two stripes in flight, which bounds one
request; the budget bounds all of them together, so a thousand concurrent uploads queue for
memory instead of multiplying it. Waiters are served first come, first served (a large
stripe is not starved by a stream of small ones). A single reservation larger than the whole
budget is let through when nothing else is held, so that no size of request can wait forever.
Every reservation is released by whoever finishes with the bytes (`Budget.hold` as a context
manager, or `release` from a done callback).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class Budget:
    def __init__(self, capacity_bytes: int) -> None:
        if capacity_bytes <= 0:
            raise ValueError("a memory budget must be positive")
        self.capacity_bytes = capacity_bytes
        self.held_bytes = 0
        self.peak_bytes = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _fits(self, n: int) -> bool:
        return self.held_bytes + n <= self.capacity_bytes or self.held_bytes == 0

    async def acquire(self, n: int) -> None:
        """Reserve `n` bytes, waiting behind earlier waiters until they fit."""
        if not self._waiters and self._fits(n):
            self._take(n)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (n, future)
        self._waiters.append(entry)
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self.release(n)         # granted just as we were cancelled: give it back
            else:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                self._wake()            # a waiter behind us may fit now
            raise

    def release(self, n: int) -> None:
        self.held_bytes -= n
        assert self.held_bytes >= 0, "released more than was held"
        self._wake()

    @asynccontextmanager
    async def hold(self, n: int) -> AsyncIterator[None]:
        await self.acquire(n)
        try:
            yield
        finally:
            self.release(n)

    def _take(self, n: int) -> None:
        self.held_bytes += n
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)

    def _wake(self) -> None:
        while self._waiters:
            n, future = self._waiters[0]
            if future.done():           # cancelled while queued; acquire() removes it
                self._waiters.popleft()
                continue
            if not self._fits(n):
                return
            self._waiters.popleft()
            self._take(n)
            future.set_result(None)
