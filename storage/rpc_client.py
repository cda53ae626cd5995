"""Client half of the framed RPC channel (see rpc.py): a few connections per node
(rpc_stream.py), each carrying many calls in flight, matched to their answers by call id.

Rules: connections open lazily and are replaced when they die; a call that could not be
sent on a dead connection is sent once more on a fresh one (nothing reached the node), a
call whose connection died after sending fails with ChannelError (the caller cannot know
whether it ran). Every call has a deadline. NodeClient maps ChannelError to NodeUnavailable.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterable
from typing import Any

import msgpack

from storage import limits
from storage.metrics import REQUEST_ID
from storage.rpc_frames import Outbox, frames
from storage.rpc_stream import MAGIC, Buffer, MessageChannel


class ChannelError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _NotSent(Exception):
    """The connection was dead before the call left: safe to try another one."""


class _Conn:
    def __init__(self) -> None:
        self.channel = MessageChannel(self._on_message, self._on_lost,
                                      limits.rpc_message_bytes_max)
        self.outbox = Outbox(self.channel)
        # call id -> (its answer, the outcome of the message carrying it)
        self.pending: dict[int, tuple[asyncio.Future[tuple[int, Any]], asyncio.Future[None]]] = {}
        self._ids = itertools.count(1)
        self._watched: asyncio.Future[None] | None = None   # the newest message's outcome

    @property
    def alive(self) -> bool:
        return self.channel.alive

    async def call(self, op: str, args: tuple[Any, ...], timeout_s: float) -> tuple[int, Any]:
        if not self.alive:
            raise _NotSent()
        call_id = next(self._ids)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, Any]] = loop.create_future()
        # One timer on the answer itself: asyncio.wait_for would add a waiter future and
        # callbacks around it, a measurable share of a small call's cost.
        timer = loop.call_later(timeout_s, _expire, future)
        try:
            paused = self.channel.write_paused
            sent = self.outbox.put(msgpack.packb([call_id, op, REQUEST_ID.get(), *args]))
            self.pending[call_id] = future, sent
            if paused:
                # The send buffer is full: wait for it (the caller is held back, not
                # buffered without bound); a message that failed was not sent.
                try:
                    await sent
                except (ConnectionError, RuntimeError) as e:
                    raise _NotSent() from e
            elif sent is not self._watched:
                self._watched = sent         # one callback per message, not per call
                sent.add_done_callback(self._message_failed)
            return await future
        except TimeoutError:
            raise ChannelError(f"rpc {op} timed out after {timeout_s}s") from None
        finally:
            timer.cancel()
            self.pending.pop(call_id, None)

    async def stream(self, op: str, args: tuple[Any, ...], body: AsyncIterable[Buffer],
                     timeout_s: float) -> tuple[int, Any]:
        """One call whose body follows it as raw messages (rpc_frames.STREAM_PUT); the connection
        carries nothing else meanwhile. An answer that comes before the whole body was
        sent (a refusal) ends the sending."""
        call_id = next(self._ids)
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[int, Any]] = loop.create_future()
        sent = loop.create_future()       # its call is written at once, below
        sent.set_result(None)
        self.pending[call_id] = answer, sent
        try:
            try:
                self.channel.send([msgpack.packb([call_id, op, REQUEST_ID.get(), *args])])
                async for piece in body:
                    if answer.done():
                        break
                    view = memoryview(piece)     # slices of it are not copies
                    for at in range(0, len(view), _STREAM_PIECE_MAX):
                        self.channel.send([view[at:at + _STREAM_PIECE_MAX]])
                    async with asyncio.timeout(timeout_s):
                        await self.channel.drain()
            except ConnectionError:
                if not answer.done():
                    raise ChannelError("rpc connection lost while sending a body") from None
            async with asyncio.timeout(timeout_s):
                return await answer
        except TimeoutError:
            raise ChannelError(f"rpc {op} timed out after {timeout_s}s") from None
        finally:
            self.pending.pop(call_id, None)

    def _on_message(self, data: bytes | bytearray) -> None:
        try:
            answers = list(frames(data))
            for call_id, status, payload in answers:
                waiting = self.pending.get(call_id)
                if waiting is not None and not waiting[0].done():
                    waiting[0].set_result((status, payload))
        except (ValueError, TypeError):
            self.channel.close()     # not an answer of this protocol: give up on the node

    def _message_failed(self, sent: asyncio.Future[None]) -> None:
        """A message could not be written: its calls never left."""
        failure = None if sent.cancelled() else sent.exception()
        if failure is None:
            return
        gone = isinstance(failure, ConnectionError | RuntimeError)
        for future, carrier in self.pending.values():
            if carrier is sent and not future.done():
                future.set_exception(_NotSent() if gone else failure)

    def _on_lost(self, _exc: Exception | None) -> None:
        lost = ChannelError("rpc connection lost")
        for future, sent in self.pending.values():
            if not future.done():
                # A call whose message never left (still queued, or its write failed) may
                # be sent again.
                left = sent.done() and not sent.cancelled() and sent.exception() is None
                future.set_exception(lost if left else _NotSent())

    async def close(self) -> None:
        self.channel.close()


def _expire(future: asyncio.Future[tuple[int, Any]]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


# A streamed body goes out in messages of at most this (a piece may be bigger).
_STREAM_PIECE_MAX = 1024 * 1024
# Idle connections kept per node for streamed bodies (one stream at a time on each).
_STREAM_IDLE_MAX = 8


class RpcPool:
    def __init__(self, *, timeout_s: float, connect_timeout_s: float,
                 connections_per_node: int = limits.rpc_connections_per_node) -> None:
        self._timeout_s = timeout_s
        self._connect_timeout_s = connect_timeout_s
        self._per_node = connections_per_node
        self._conns: dict[str, list[_Conn]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._turn = itertools.count()
        self._closing: set[asyncio.Future[None]] = set()
        self._idle_streams: dict[str, list[_Conn]] = {}
        self._outstanding: dict[str, int] = {}

    def outstanding(self, addr: str) -> int:
        """Calls and streams to `addr` sent and not yet answered: how busy the node is
        with this process's work, for callers free to pick among replicas."""
        return self._outstanding.get(addr, 0)

    def _begin(self, addr: str) -> None:
        self._outstanding[addr] = self._outstanding.get(addr, 0) + 1

    def _end(self, addr: str) -> None:
        self._outstanding[addr] -= 1

    async def call(self, addr: str, op: str, *args: Any) -> tuple[int, Any]:
        self._begin(addr)
        try:
            for attempt in range(2):
                conn = await self._pick(addr)
                try:
                    return await conn.call(op, args, self._timeout_s)
                except _NotSent:
                    if attempt:
                        raise ChannelError("rpc connection lost before sending") from None
            raise AssertionError("unreachable")
        finally:
            self._end(addr)

    async def stream(self, addr: str, op: str, args: tuple[Any, ...],
                     body: AsyncIterable[Buffer]) -> tuple[int, Any]:
        """A call with a streamed body, on a connection of its own (TCP's flow control is
        then the stream's alone: a slow disk holds back no other call); the connection is
        kept for the next stream when the call went through whole."""
        idle = self._idle_streams.setdefault(addr, [])
        while idle and not idle[-1].alive:
            idle.pop()
        self._begin(addr)
        try:
            conn = idle.pop() if idle else await self._connect(addr)
            done = False
            try:
                status, payload = await conn.stream(op, args, body, self._timeout_s)
                done = status < 400
                return status, payload
            finally:
                if done and conn.alive and len(idle) < _STREAM_IDLE_MAX:
                    idle.append(conn)
                else:
                    await conn.close()
        finally:
            self._end(addr)

    async def _pick(self, addr: str) -> _Conn:
        conns = [c for c in self._conns.get(addr, []) if c.alive]
        for c in conns:
            # A connection already gathering this turn's message carries the call in the
            # same send: a send to loopback costs more CPU than the call's own handling.
            if c.outbox.gathering and not c.channel.write_paused:
                return c
        if len(conns) >= self._per_node:
            return conns[next(self._turn) % len(conns)]
        lock = self._locks.setdefault(addr, asyncio.Lock())
        async with lock:
            conns = [c for c in self._conns.get(addr, []) if c.alive]
            if len(conns) < self._per_node:
                conns.append(await self._connect(addr))
                self._conns[addr] = conns
        return conns[next(self._turn) % len(conns)]

    async def _connect(self, addr: str) -> _Conn:
        host, _, port = addr.rpartition(":")
        conn = _Conn()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                await loop.create_connection(lambda: conn.channel, host.strip("[]"), int(port))
        except (OSError, TimeoutError, ValueError) as e:
            raise ChannelError(f"rpc connect: {type(e).__name__}: {e}") from e
        assert conn.channel.transport is not None
        conn.channel.transport.write(MAGIC)
        return conn

    def drop(self, addr: str) -> None:
        """Forget the connections to `addr` (closed in the background): after a network cut
        they may sit in TCP retransmission back-off long after the node is reachable again,
        while a fresh connection works at once."""
        for conn in [*self._conns.pop(addr, []), *self._idle_streams.pop(addr, [])]:
            task = asyncio.ensure_future(conn.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        for conns in [*self._conns.values(), *self._idle_streams.values()]:
            for conn in conns:
                await conn.close()
        self._conns.clear()
        self._idle_streams.clear()
