"""The node's framed RPC channel: many small calls in flight on one connection.

Why: an HTTP request/response through aiohttp costs several hundred microseconds of CPU per
call on each side; msgpack messages on a persistent connection, with calls pipelined, cost a
fraction of that (bench/storage_bench.py prints both). Streamed bodies (large fragment PUTs,
stream_fragment) stay on plain HTTP, where TCP gives each stream its own flow control. The
connection is a raw TCP one on the node's HTTP port (storage/rpc_stream.py says why and how).

Protocol (messages of one or more msgpack arrays back to back: the frames queued in one loop
turn travel together, storage/rpc_frames.py):
    request : [call_id, op, request_id, *args]   request_id: the gateway's id, "" if none
    response: [call_id, status, payload]         status as in HTTP: 200 ok, 404, 413, 507...
Ops and their payloads are the table in _OPS. A status >= 400 carries a reason string.
413 means "too large for this channel": the client retries the call over HTTP.
Rules: each call runs in its own task (so concurrent calls share group commits); at most
limits.rpc_inflight_per_connection_max run per connection, then reading pauses (backpressure).
Each call's task carries the caller's request id (storage.metrics.REQUEST_ID), so the node's
log lines about it name the S3 request that caused it; every call is reported to an observer
(the node's metrics) with its op, status, time and sizes. A message that is not frames of
this protocol ends the connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgpack
from aiohttp import web

from storage import limits, list_pages, rpc_frames
from storage.errors import BadRequest, StorageError
from storage.index import MetaEntry
from storage.metrics import REQUEST_ID, bound_request_id
from storage.node import Node
from storage.rpc_frames import Outbox
from storage.rpc_stream import Buffer, MessageChannel

Result = tuple[int, Any]
OpFn = Callable[[Node, list[Any]], Awaitable[Result]]
# (op, status, seconds, bytes in, bytes out) of one answered call.
Observer = Callable[[str, int, float, int, int], None]
log = logging.getLogger("coffre.storage.rpc")


def _bytes(x: Any) -> bytes:
    if not isinstance(x, bytes):
        raise BadRequest("expected bytes")
    return x


def _int(x: Any) -> int:
    if not isinstance(x, int) or isinstance(x, bool):
        raise BadRequest("expected an integer")
    return x


def _opt_bytes(x: Any) -> bytes | None:
    return None if x is None else _bytes(x)


async def _fput(node: Node, a: list[Any]) -> Result:
    body = _bytes(a[3])

    async def one() -> AsyncIterator[bytes]:
        yield body

    await node.device(_int(a[0])).put_fragment(_int(a[1]), _bytes(a[2]), len(body), one())
    return 204, None


class BinViews(list[memoryview]):
    """An answer payload of bytes held as views (verified chunks of a fragment): packed as
    one msgpack bin by copying each view once into the frame (_answer)."""


async def _fget(node: Node, a: list[Any]) -> Result:
    length = None if a[4] is None else _int(a[4])
    views = await node.device(_int(a[0])).read_fragment_views(
        _int(a[1]), _bytes(a[2]), _int(a[3]), length, max_bytes=limits.rpc_read_bytes_max)
    return 200, BinViews(views)


def _answer(call_id: Any, status: int, payload: Any) -> bytes | list[Buffer]:
    """msgpack [call_id, status, payload]; a BinViews payload becomes the head of a bin 32
    followed by its views, written to the socket as they are (packb would have needed them
    joined first, and the join is a copy)."""
    if not isinstance(payload, BinViews):
        out: bytes = msgpack.packb([call_id, status, payload])
        return out
    size = sum(len(v) for v in payload)
    head = (b"\x93" + msgpack.packb(call_id) + msgpack.packb(status) + b"\xc6"
            + size.to_bytes(4, "big"))
    return [head, *payload]


async def _fsize(node: Node, a: list[Any]) -> Result:
    entry = await node.device(_int(a[0])).stat_fragment(_int(a[1]), _bytes(a[2]))
    return 200, entry.loc.body_len


async def _fdel(node: Node, a: list[Any]) -> Result:
    await node.device(_int(a[0])).delete_fragment(_int(a[1]), _bytes(a[2]))
    return 204, None


async def _flist(node: Node, a: list[Any]) -> Result:
    entries = await node.device(_int(a[0])).list_fragments(_int(a[1]), _bytes(a[2]), _int(a[3]))
    return 200, [[e.key, e.loc.body_len] for e in entries]


async def _mput(node: Node, a: list[Any]) -> Result:
    ts = int.from_bytes(_bytes(a[3]), "big")
    applied = await node.device(_int(a[0])).put_meta(_int(a[1]), _bytes(a[2]), ts,
                                                     _opt_bytes(a[4]))
    return 200, applied


async def _mputp(node: Node, a: list[Any]) -> Result:
    """mput that also answers the record it replaced: [applied, None | [ts, value]]."""
    ts = int.from_bytes(_bytes(a[3]), "big")
    applied, prev = await node.device(_int(a[0])).put_meta_previous(
        _int(a[1]), _bytes(a[2]), ts, _opt_bytes(a[4]))
    return 200, [applied, None if prev is None else [prev.ts.to_bytes(16, "big"), prev.value]]


async def _mget(node: Node, a: list[Any]) -> Result:
    return _meta_answer(await node.device(_int(a[0])).get_meta(_int(a[1]), _bytes(a[2])))


def _mget_now(node: Node, a: list[Any]) -> Result | None:
    """mget answered inside the read callback; None (the task path, which quarantines it)
    for a damaged record."""
    e = node.device(_int(a[0])).peek_meta(_int(a[1]), _bytes(a[2]))
    return None if e is not None and not e.intact else _meta_answer(e)


def _meta_answer(e: MetaEntry | None) -> Result:
    if e is None:
        return 404, "no record"
    return 200, [e.ts.to_bytes(16, "big"), e.value]


async def _mlist(node: Node, a: list[Any]) -> Result:
    delimiter = _opt_bytes(a[6]) if len(a) > 6 else None
    entries = await node.device(_int(a[0])).list_meta(
        _int(a[1]), _bytes(a[2]), _opt_bytes(a[3]), _opt_bytes(a[4]), _int(a[5]), delimiter)
    return 200, [[e.key, e.ts.to_bytes(16, "big"), e.value] for e in entries]


async def _mpage(node: Node, a: list[Any]) -> Result:
    query, with_rows = list_pages.query_from_wire(a[2:], limits.list_limit_max)
    page = await node.device(_int(a[0])).list_page(_int(a[1]), query, with_rows)
    return 200, list_pages.page_to_wire(page)


async def _mpages(node: Node, a: list[Any]) -> Result:
    """Several mpage calls in one message (a gateway asks each node for all the shards it
    reads there at once); each answer is [status, payload] as for a call of its own."""
    if len(a) > limits.rpc_inflight_per_connection_max:
        raise BadRequest("too many pages in one call")
    answers = await asyncio.gather(*(_call(node, "mpage", item) for item in a))
    return 200, [list(answer) for answer in answers]


async def _summary(node: Node, a: list[Any]) -> Result:
    return 200, await node.device(_int(a[0])).partition_summary(_int(a[1]))


async def _ping(node: Node, a: list[Any]) -> Result:
    return 200, None


# rpc_frames.STREAM_PUT (its body follows the call as raw messages, _serve_stream) is the
# only call that is not in _OPS: it needs the connection, not just its arguments.

_OPS: dict[str, OpFn] = {
    "ping": _ping,
    "fput": _fput, "fget": _fget, "fsize": _fsize, "fdel": _fdel, "flist": _flist,
    "mput": _mput, "mputp": _mputp, "mget": _mget, "mlist": _mlist, "mpage": _mpage,
    "mpages": _mpages,
    "summary": _summary,
}


# Ops whose common case needs no I/O and no waiting (a point read of the mapped index):
# answered in the callback that read them, with no task, no future and no extra loop turn,
# which were most of a small call's cost on the node
# (bench/results/2026-12-07-rpc-inline-and-rounds.md). They return None when the call
# needs the task path after all.
NowFn = Callable[[Node, list[Any]], "Result | None"]
_NOW_OPS: dict[str, NowFn] = {
    "ping": lambda node, a: (200, None),
    "mget": _mget_now,
}


async def _call(node: Node, op: Any, args: list[Any]) -> Result:
    fn = _OPS.get(op) if isinstance(op, str) else None
    if fn is None:
        return 400, f"unknown op {op!r}"
    try:
        return await fn(node, args)
    except _EXPECTED as e:
        return _failure(e)


def _call_now(node: Node, op: str, args: list[Any]) -> Result | None:
    try:
        return _NOW_OPS[op](node, args)
    except _EXPECTED as e:
        return _failure(e)
    except Exception:
        return None         # a bug: the task path raises it again, where it is logged


# What a call may raise that is an answer: a storage error, or arguments of the wrong shape.
_EXPECTED = (StorageError, IndexError, TypeError, ValueError, OverflowError)


def _failure(e: Exception) -> Result:
    if isinstance(e, StorageError):
        return e.status, e.reason
    return 400, f"bad arguments: {e}"


async def _serve_one(node: Node, conn: _ServerConn, frame: list[Any], size: int) -> None:
    call_id, op, request_id, *args = frame
    # This task runs in its own copy of the context: the id tags only this call's lines.
    REQUEST_ID.set(bound_request_id(request_id if isinstance(request_id, str) else None))
    started = time.monotonic()
    try:
        status, payload = await _call(node, op, args)
        sent = conn.reply(call_id, op, status, payload, size, started)
        if sent is not None:
            await sent      # waits for the write: a slow reader holds the slot
    except (ConnectionError, RuntimeError):
        pass  # the client went away; its calls' outcomes are its own to retry


def _log_call(op: Any, status: int, payload: Any, seconds: float) -> None:
    # Server-side failures are worth a line at the default level; the rest only when asked.
    level = logging.WARNING if status >= 500 else logging.DEBUG
    if log.isEnabledFor(level):
        reason = payload if status >= 400 and isinstance(payload, str) else ""
        log.log(level, "rpc %s %s %.1f ms %s", op, status, seconds * 1000, reason)


class _BodyIn:
    """The body of a streamed fragment PUT: the messages that follow its call on the
    connection, `length` bytes in all, handed to the device as they come (a few queued at
    most: beyond them the socket is not read, so a slow disk slows the sender)."""

    _QUEUED_MAX = 4

    def __init__(self, length: int, channel: MessageChannel) -> None:
        self.left = length            # bytes still to arrive
        self._channel = channel
        self._pieces: deque[bytes | bytearray] = deque()
        self._wake = asyncio.Event()
        self._cut = False
        self._paused = False

    def feed(self, piece: bytes | bytearray) -> None:
        if len(piece) > self.left:
            raise ValueError("body longer than its declared length")
        self.left -= len(piece)
        self._pieces.append(piece)
        self._wake.set()
        if len(self._pieces) >= self._QUEUED_MAX and not self._paused:
            self._paused = True
            self._channel.pause_reading()

    def cut(self) -> None:
        """The connection ended before the whole body came."""
        self._cut = True
        self._wake.set()

    async def pieces(self) -> AsyncIterator[bytes | bytearray]:
        while True:
            while not self._pieces:
                if self.left == 0:
                    return
                if self._cut:
                    raise ConnectionResetError("body cut short")
                self._wake.clear()
                await self._wake.wait()
            piece = self._pieces.popleft()
            if self._paused and len(self._pieces) < self._QUEUED_MAX // 2:
                self._paused = False
                self._channel.resume_reading()
            yield piece


async def _serve_stream(node: Node, conn: _ServerConn, frame: list[Any],
                        body: _BodyIn) -> None:
    """A streamed fragment PUT: [call_id, "fputs", request_id, device, partition, key,
    length], then the body as messages of raw bytes; answered once durable, like fput."""
    call_id, _op, request_id, dev, part, key, length = frame
    REQUEST_ID.set(bound_request_id(request_id if isinstance(request_id, str) else None))
    started = time.monotonic()
    status, payload = 204, None
    try:
        await node.device(_int(dev)).put_fragment(_int(part), _bytes(key), length,
                                                  body.pieces())
    except StorageError as e:
        status, payload = e.status, e.reason
    except (TypeError, ValueError, OverflowError) as e:
        status, payload = 400, f"bad arguments: {e}"
    except ConnectionError:
        return                       # the client went away mid-body: nothing to answer
    _log_call(rpc_frames.STREAM_PUT, status, payload, time.monotonic() - started)
    observe = conn.server.observe
    answer: bytes = msgpack.packb([call_id, status, payload])
    if observe is not None:
        observe(rpc_frames.STREAM_PUT, status, time.monotonic() - started, length, len(answer))
    if not conn.channel.alive:
        return
    conn.channel.send([answer])
    if body.left:                    # refused before the whole body came: out of step
        conn.channel.close()


class _ServerConn:
    """One client connection: each call in its own task, at most
    limits.rpc_inflight_per_connection_max at once, then the socket is not read (the client's
    sends back up: backpressure) until one finishes."""

    def __init__(self, server: RpcServer) -> None:
        self.server = server
        self.channel = MessageChannel(self._on_message, self._on_lost,
                                      limits.rpc_message_bytes_max)
        self.outbox = Outbox(self.channel)
        self.running: set[asyncio.Task[None]] = set()
        self._waiting: deque[tuple[list[Any], int]] = deque()
        self._body: _BodyIn | None = None      # a streamed PUT's body is arriving

    def _on_message(self, data: bytes | bytearray) -> None:
        if self._body is not None:
            self._body_piece(self._body, data)
            return
        try:
            calls = list(rpc_frames.frames(data))
        except ValueError:
            calls = []
        if not calls or not all(isinstance(f, list) and len(f) >= 3 for f in calls):
            self.channel.close()     # not our protocol: drop the connection
            return
        if len(calls) == 1 and calls[0][1] == rpc_frames.STREAM_PUT:
            self._open_body(calls[0])
            return
        size = len(data) // len(calls)
        for frame in calls:
            if self._answer_now(frame, size):
                continue
            if len(self.running) < limits.rpc_inflight_per_connection_max:
                self._start(frame, size)
            else:
                self._waiting.append((frame, size))
        if self._waiting:
            self.channel.pause_reading()

    def _answer_now(self, frame: list[Any], size: int) -> bool:
        """Answer a call of _NOW_OPS in this callback; False when it needs a task: another
        op, a damaged record, or the client not reading its answers (the task path waits
        for the write; answering here would buffer without bound)."""
        if (self.channel.write_paused or not isinstance(frame[1], str)
                or frame[1] not in _NOW_OPS):
            return False
        call_id, op, request_id, *args = frame
        token = REQUEST_ID.set(bound_request_id(request_id if isinstance(request_id, str)
                                                else None))
        started = time.monotonic()
        try:
            result = _call_now(self.server.node, op, args)
            if result is None:
                return False
            self.reply(call_id, op, *result, size, started)
            return True
        finally:
            REQUEST_ID.reset(token)

    def reply(self, call_id: Any, op: Any, status: int, payload: Any, size: int,
              started: float) -> asyncio.Future[None] | None:
        """Log, count and queue the answer to a call; the future of its write, None when
        the connection is gone."""
        answer = _answer(call_id, status, payload)
        _log_call(op, status, payload, time.monotonic() - started)
        observe = self.server.observe
        if observe is not None:
            # Only known op names become labels: a peer sending made-up ones must not
            # grow the metrics without bound.
            name = op if isinstance(op, str) and op in _OPS else "unknown"
            length = len(answer) if isinstance(answer, bytes) else sum(len(p) for p in answer)
            observe(name, status, time.monotonic() - started, size, length)
        return self.outbox.put(answer) if self.channel.alive else None

    def _open_body(self, frame: list[Any]) -> None:
        length = frame[6] if len(frame) == 7 else None
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            self.channel.close()     # cannot tell where its body ends
            return
        body = _BodyIn(length, self.channel)
        if length:
            self._body = body
        task = asyncio.create_task(_serve_stream(self.server.node, self, frame, body))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def _body_piece(self, body: _BodyIn, data: bytes | bytearray) -> None:
        try:
            body.feed(data)
        except ValueError:
            body.cut()
            self.channel.close()
            return
        if body.left == 0:
            self._body = None        # the next message is a call again

    def _start(self, frame: list[Any], size: int) -> None:
        task = asyncio.create_task(_serve_one(self.server.node, self, frame, size))
        self.running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.running.discard(task)
        if self._waiting and not self.server.stopping:
            self._start(*self._waiting.popleft())
            if not self._waiting:
                self.channel.resume_reading()

    def _on_lost(self, _exc: Exception | None) -> None:
        self._waiting.clear()
        if self._body is not None:
            self._body.cut()
        self.server.conns.discard(self)


class RpcServer:
    """The node's side of the channel: makes a _ServerConn per raw connection (PortSniffer
    hands them over) and drains them on shutdown."""

    def __init__(self, node: Node, observe: Observer | None) -> None:
        self.node, self.observe = node, observe
        self.conns: set[_ServerConn] = set()
        self.stopping = False

    def channel(self) -> MessageChannel:
        conn = _ServerConn(self)
        self.conns.add(conn)
        return conn.channel

    async def stop(self, _app: web.Application | None = None) -> None:
        """Stop reading calls, let the running ones answer (bounded), then close."""
        self.stopping = True
        for conn in list(self.conns):
            conn.channel.pause_reading()
        running = [t for conn in self.conns for t in conn.running]
        if running:
            await asyncio.wait(running, timeout=limits.shutdown_drain_s)
        for conn in list(self.conns):
            conn.channel.close()


RPC_SERVER = web.AppKey("rpc_server", RpcServer)


def install(app: web.Application, node: Node, observe: Observer | None = None) -> None:
    """Make the app's RpcServer (storage/server.py's listener hands it raw connections)."""
    server = app[RPC_SERVER] = RpcServer(node, observe)
    app.on_shutdown.append(server.stop)
