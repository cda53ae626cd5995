"""The fragment uploads of one PUT: a bounded queue of blocks per fragment feeding the task
that streams it to its node, what each stripe's blocks hold of the memory budget until the
uploads have written them, and the write quorum's wait for the uploads to be durable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from gateway import limits

Block = bytes | memoryview


class Claim:
    """The sinks still holding one stripe's blocks (queued, or being written to the node);
    `done` resolves once none does. Letting go twice is harmless: a block can be let go by
    its writer, by a sink that ended, or by the pump dropping a straggler."""

    def __init__(self, count: int) -> None:
        self._left = set(range(count))
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._left:
            self.done.set_result(None)

    def let_go(self, index: int) -> None:
        self._left.discard(index)
        if not self._left and not self.done.done():
            self.done.set_result(None)


Item = tuple[Block, Callable[[], None]]      # a block and how to let it go


class Sink:
    """One fragment's upload: a bounded queue of blocks and the task streaming it out.

    A block counts against the memory budget until the upload has written it (or ended):
    released when merely queued, the blocks of every upload waiting for a slow node were
    held outside the budget, `fragment_queue_blocks` of them per fragment per upload."""

    def __init__(self, depth: int,
                 upload: Callable[[AsyncIterator[Block]], Awaitable[None]]) -> None:
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(depth)
        self._writing: Callable[[], None] | None = None
        self.task: asyncio.Task[None] = asyncio.ensure_future(upload(self._blocks()))
        self.task.add_done_callback(lambda _t: self._let_go_all())

    async def _blocks(self) -> AsyncIterator[Block]:
        """What the upload streams: each block is let go once the upload asks for the next."""
        while (item := await self.queue.get()) is not None:
            block, self._writing = item
            yield block
            self._let_go_current()

    def _let_go_current(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing()

    def _let_go_all(self) -> None:
        self._let_go_current()
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                item[1]()

    async def send(self, item: Item | None, timeout_s: float | None = None) -> bool:
        """Queue a block; False if the fragment's node did not take it within timeout_s."""
        if self.task.done():
            if item is not None:
                item[1]()
            return True
        put = asyncio.ensure_future(self.queue.put(item))
        await asyncio.wait({put, self.task}, timeout=timeout_s,
                           return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            return self.task.done()
        if self.task.done():        # ended while we queued: nobody will take it
            self._let_go_all()
        return True

    @property
    def alive(self) -> bool:
        return not self.task.done()

    @property
    def failed(self) -> bool:
        return self.task.done() and (self.task.cancelled() or self.task.exception() is not None)


async def durable_quorum(tasks: Sequence[asyncio.Task[None]], need: int,
                          ) -> tuple[int, list[str]]:
    """Wait for fragment uploads: once `need` are durable, stragglers get a short grace
    and are then dropped (a frozen node must not hold the client; repair rebuilds them)."""
    pending: set[asyncio.Task[None]] = set(tasks)
    durable, reasons = 0, []
    while pending:
        grace = limits.write_straggler_s if durable >= need else None
        done, pending = await asyncio.wait(pending, timeout=grace,
                                           return_when=asyncio.FIRST_COMPLETED)
        if not done:
            break
        for t in done:
            if t.cancelled() or t.exception() is not None:
                reasons.append(str(t.exception()) if not t.cancelled() else "dropped")
            else:
                durable += 1
    for t in pending:
        t.cancel()
    return durable, reasons
