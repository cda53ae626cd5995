"""Group commit: many writers share one fdatasync per segment and one index transaction.

Rules: a writer pwrites its record, then submit()s its index operation with the segments it
wrote to, and is answered only after those segments were fdatasync'ed *and* the transaction
that holds its operation committed (in that order: the index never points at bytes that are
not on disk). While one batch is being made durable, the next one gathers; the batch size
grows by itself with the load. Commits run in one dedicated thread per device.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from storage import limits
from storage.index import Index, Op
from storage.segments import SegmentStore


@dataclass(frozen=True)
class _Pending:
    op: Op | None  # None: only make the segments durable
    segments: frozenset[int]
    future: asyncio.Future[bool]


class GroupCommitter:
    def __init__(self, index: Index, segments: SegmentStore,
                 on_error: Callable[[BaseException], BaseException]) -> None:
        self._index = index
        self._segments = segments
        self._on_error = on_error  # maps an exception to the one the writers get
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="commit")
        self.batches = 0  # number of commits so far (tests check that writers shared them)
        self.ops = 0
        # Called from the commit thread with (ops in the batch, fdatasync seconds): the
        # node's metrics set it; prometheus_client's histograms are thread-safe.
        self.observer: Callable[[int, float], None] | None = None

    async def submit(self, op: Op | None, segments: Iterable[int]) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(op, frozenset(segments), future))
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="group-commit")
        return await future

    async def close(self) -> None:
        while self._pending:
            await asyncio.sleep(0.001)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._thread.shutdown(wait=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[:limits.commit_batch_ops_max]
                del self._pending[:len(batch)]
                try:
                    if self._short(batch):
                        # A few small records: the syncs take less than handing the batch
                        # to the commit thread and back (two context switches and the GIL
                        # changing hands, measured as the largest cost of a node under
                        # small PUTs). Only this task writes the index, so nothing else can
                        # hold LMDB's write lock and make the loop wait for it.
                        results = self._commit(batch)
                    else:
                        results = await loop.run_in_executor(self._thread, self._commit, batch)
                except Exception as e:  # every writer of the batch learns the same failure
                    err = self._on_error(e)
                    for p in batch:
                        if not p.future.done():
                            p.future.set_exception(err)
                    continue
                for p, result in zip(batch, results, strict=True):
                    if not p.future.done():
                        p.future.set_result(result)

    def _short(self, batch: list[_Pending]) -> bool:
        return len(batch) <= limits.commit_inline_ops_max and self._segments.unsynced_bytes(
            _segments_of(batch)) <= limits.commit_inline_bytes_max

    def _commit(self, batch: list[_Pending]) -> list[bool]:
        segs = _segments_of(batch)
        started = time.monotonic()
        self._segments.sync(segs)
        if self.observer is not None:
            self.observer(len(batch), time.monotonic() - started)
        ops = [p.op for p in batch if p.op is not None]
        applied = iter(self._index.apply(ops) if ops else [])
        self.batches += 1
        self.ops += len(batch)
        return [next(applied) if p.op is not None else True for p in batch]


def _segments_of(batch: list[_Pending]) -> set[int]:
    """Every segment the batch's writers wrote to."""
    return set().union(*(p.segments for p in batch))
