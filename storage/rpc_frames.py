"""Coalescing the RPC channel's frames: all the calls (or answers) queued for one connection
in one turn of the event loop leave as one message.

Why: on loopback every message is a send() system call that runs the receiver's TCP stack
and wakes its process; under concurrent requests that was the gateway's largest single
cost (27 % of its busy samples under 32 concurrent small GETs, py-spy), far more than
packing the calls. A message holds one or more msgpack objects back to back (msgpack is
self-delimiting), so a message of one frame is exactly what a frame was before.

Rules: frames leave in the order they were queued; a message is cut at
`limits.rpc_batch_bytes_max` (a bigger frame goes alone); each queued frame learns whether
its message was handed to the connection (a caller may retry a frame that was not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import msgpack

from storage import limits
from storage.rpc_stream import Buffer

# The streamed fragment PUT's op name: its body follows the call as raw messages (the
# client's RpcPool.stream, the node's rpc._serve_stream).
STREAM_PUT = "fputs"


def frames(data: bytes | bytearray) -> Iterator[Any]:
    """The msgpack objects of one message, in order (ValueError if one is malformed)."""
    whole = _bulk_answer(data) if len(data) >= _BULK_BYTES else None
    if whole is not None:
        yield whole
        return
    while data:
        try:
            yield msgpack.unpackb(data)
            return
        except msgpack.ExtraData as more:      # another frame follows this one
            yield more.unpacked  # type: ignore[attr-defined]
            data = more.extra  # type: ignore[attr-defined]
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise ValueError(f"malformed frame: {e}") from e


# A message this big that is one answer whose payload is a bin (a fragment read) is
# decoded without copying the payload: the payload is a view into the message.
_BULK_BYTES = 64 * 1024


def _bulk_answer(data: bytes | bytearray) -> list[Any] | None:
    """[call_id, status, memoryview of the payload] when `data` is exactly one 3-item
    array ending in a bin 32 (as storage/rpc.py packs fragment reads), else None."""
    if data[0] != 0x93:
        return None
    head = msgpack.Unpacker()
    head.feed(data[:32])
    try:
        head.read_array_header()
        call_id, status = head.unpack(), head.unpack()
    except (ValueError, TypeError, msgpack.UnpackException, msgpack.OutOfData):
        return None
    at = head.tell()
    if data[at] != 0xC6 or at + 5 + int.from_bytes(data[at + 1:at + 5], "big") != len(data):
        return None
    return [call_id, status, memoryview(data)[at + 5:]]


def _retrieve(sent: asyncio.Future[None]) -> None:
    # A writer that does not wait for its frame (nothing to retry) must not leave an
    # "exception never retrieved" behind.
    if not sent.cancelled():
        sent.exception()


class Sink(Protocol):
    """Where an Outbox writes: a MessageChannel (storage/rpc_stream.py)."""

    @property
    def write_paused(self) -> bool: ...

    def send(self, pieces: Sequence[Buffer]) -> None: ...

    async def drain(self) -> None: ...


class Outbox:
    """Frames for one connection, sent together at the end of the loop turn.

    A frame is bytes or a list of pieces (an answer made of views of the bytes read from
    disk); the sink gets the pieces of every frame of the message, to write them unjoined.
    The message is handed to the sink in the flush callback itself; only when the sink's
    send buffer is above its high-water mark does a task wait for it to drain before the
    frames' futures are done (a task and a loop turn per message cost more than the
    write on a small call).
    """

    def __init__(self, sink: Sink, batch_bytes_max: int = limits.rpc_batch_bytes_max) -> None:
        self._sink = sink
        self._max = batch_bytes_max
        self._queued: list[Buffer] = []
        self._size = 0
        self._sent: asyncio.Future[None] | None = None    # the queued batch's outcome
        self._draining: set[asyncio.Task[None]] = set()

    @property
    def gathering(self) -> bool:
        """Frames are queued for this loop turn's message: one more rides along free."""
        return self._sent is not None

    def put(self, frame: bytes | list[Buffer]) -> asyncio.Future[None]:
        """Queue a frame; the future is done once its message was written (or failed)."""
        pieces = [frame] if isinstance(frame, bytes) else frame
        size = sum(len(p) for p in pieces)
        if self._queued and self._size + size > self._max:
            self._flush()
        if self._sent is None:
            loop = asyncio.get_running_loop()
            self._sent = loop.create_future()
            self._sent.add_done_callback(_retrieve)
            loop.call_soon(self._flush)
        self._queued.extend(pieces)
        self._size += size
        return self._sent

    def _flush(self) -> None:
        if self._sent is None:
            return                      # flushed early (size cap) in this turn
        pieces, sent = self._queued, self._sent
        self._queued, self._size, self._sent = [], 0, None
        try:
            self._sink.send(pieces)
        except Exception as e:          # every waiter hears of it; nothing is re-raised
            if not sent.done():
                sent.set_exception(e)
            return
        if not self._sink.write_paused:
            if not sent.done():
                sent.set_result(None)
            return
        task = asyncio.ensure_future(self._drained(sent))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drained(self, sent: asyncio.Future[None]) -> None:
        try:
            await self._sink.drain()
        except Exception as e:
            if not sent.done():
                sent.set_exception(e)
            return
        if not sent.done():
            sent.set_result(None)
