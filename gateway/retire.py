"""Data of replaced and deleted objects, deleted a while after the object stopped pointing
at it.

Why wait: a GET that read the old manifest a moment before an overwrite or a DELETE is
still fetching that data, on this gateway or another one, and S3 promises it the whole old
object. Deleting the fragments at once cut such bodies mid-stream. Ceph's RGW keeps replaced
tails for a minimum wait before its garbage collector removes them for the same reason.

Rules:
- one ordered queue per process and one task that sleeps until the oldest entry is due;
- memory is bounded: past `max_pending` entries the oldest is deleted early;
- entries still waiting when the process stops are not lost for good: nothing references
  their data ids any more, so the nodes' orphan collector (storage/orphans.py) removes them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class Retirement(Generic[T]):
    """Hands items to `delete` once they have waited `delay_s` seconds."""

    def __init__(self, delete: Callable[[Sequence[T]], None], delay_s: float,
                 max_pending: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._delete, self.delay_s, self.max_pending = delete, delay_s, max_pending
        self._clock = clock
        self._queue: deque[tuple[float, Sequence[T]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self.early = 0      # entries deleted before their time because the queue was full

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, items: Sequence[T]) -> None:
        if not items:
            return
        if self.delay_s <= 0:
            self._delete(items)
            return
        self._queue.append((self._clock() + self.delay_s, items))
        while len(self._queue) > self.max_pending:
            self.early += 1
            self._delete(self._queue.popleft()[1])
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def due(self) -> list[Sequence[T]]:
        """Take the entries whose time has come, oldest first."""
        now, out = self._clock(), []
        while self._queue and self._queue[0][0] <= now:
            out.append(self._queue.popleft()[1])
        return out

    async def _run(self) -> None:
        while self._queue:
            await asyncio.sleep(max(0.0, self._queue[0][0] - self._clock()))
            for items in self.due():
                self._delete(items)

    def close(self) -> None:
        """Stop waiting (process exit); what is left goes to the orphan collector."""
        if self._task is not None:
            self._task.cancel()
