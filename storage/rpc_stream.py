"""The RPC channel's transport: length-prefixed messages on a plain TCP connection that
shares the node's HTTP port.

Why not a WebSocket (what the channel ran on before): aiohttp reads a WebSocket message into
a fresh bytes per socket read and joins them, masks every frame the client sends, and parses
HTTP-style framing in Python around it. bench/transport_bench.py measured a raw protocol at
0.42 ms CPU per MB of body against aiohttp's 1.60; under 64 MiB GETs the gateway spent 23 % of
its busy samples receiving WebSocket frames. Here a big message is read by the kernel straight
into one buffer of its final size (BufferedProtocol), and an answer goes out as the views it
was made of (writelines): each byte is copied once on each side, by the kernel.

Wire: the client's first bytes are MAGIC (no HTTP request starts that way, so one listening
port serves both: PortSniffer); then each message, either way, is a 4-byte big-endian length
and that many bytes (what storage/rpc_frames.py puts in a message). A length above the
channel's maximum ends the connection.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any, cast

MAGIC = b"COFFRE-RPC/1\n"
_HEAD = struct.Struct(">I")
_STAGE_BYTES = 256 * 1024      # socket reads of small messages land here
_DIRECT_BYTES = 64 * 1024      # a message this big is read into a buffer of its own
# One read into the stage takes at most this: the start of a big message that lands in the
# stage before its length is known is copied out, so that start is kept short.
_READ_WINDOW = 32 * 1024

Buffer = bytes | bytearray | memoryview
OnMessage = Callable[[bytes | bytearray], None]
OnLost = Callable[[Exception | None], None]


class ProtocolError(Exception):
    """The peer broke the framing: the connection is closed."""


class MessageChannel(asyncio.BufferedProtocol):
    """One connection's messages in both directions.

    on_message gets each whole message (bytes, or the bytearray a big one was read into,
    which the receiver then owns); on_lost is called once when the connection ends.
    """

    def __init__(self, on_message: OnMessage, on_lost: OnLost, max_message: int) -> None:
        self._on_message, self._on_lost, self._max = on_message, on_lost, max_message
        self.transport: asyncio.Transport | None = None
        self._stage = bytearray(_STAGE_BYTES)
        self._start = self._end = 0           # unread bytes of the stage
        self._big: bytearray | None = None    # the message being read into its own buffer
        self._big_have = 0
        self._write_ok: asyncio.Future[None] | None = None   # set while writing is paused
        self._lost = False
        self._closed = False                  # close() called: deliver nothing more

    # -- asyncio callbacks ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Calls are small and answered at once: Nagle's delay would stall each of them.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._big is not None:
            return memoryview(self._big)[self._big_have:]
        if len(self._stage) - self._end < _READ_WINDOW:
            self._compact()
        return memoryview(self._stage)[self._end:self._end + _READ_WINDOW]

    def buffer_updated(self, nbytes: int) -> None:
        try:
            if self._big is not None:
                self._big_have += nbytes
                if self._big_have == len(self._big):
                    whole, self._big = self._big, None
                    self._on_message(whole)
                return
            self._end += nbytes
            self._parse()
        except ProtocolError:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._write_ok is not None and not self._write_ok.done():
            self._write_ok.set_exception(ConnectionResetError("rpc connection lost"))
        self._on_lost(exc)

    def pause_writing(self) -> None:
        if self._write_ok is None or self._write_ok.done():
            self._write_ok = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._write_ok is not None and not self._write_ok.done():
            self._write_ok.set_result(None)

    # -- receiving ----------------------------------------------------------------------
    def _parse(self) -> None:
        stage = self._stage
        while self._end - self._start >= _HEAD.size:
            (size,) = _HEAD.unpack_from(stage, self._start)
            if size > self._max:
                raise ProtocolError(f"message of {size} bytes, at most {self._max}")
            body = self._start + _HEAD.size
            if self._end - body >= size:
                self._start = body + size
                self._on_message(bytes(memoryview(stage)[body:self._start]))
                if self._closed:
                    return      # a callback closed the channel
                continue
            if size >= _DIRECT_BYTES or body + size > len(stage):
                self._big = bytearray(size)
                have = self._end - body
                self._big[:have] = memoryview(stage)[body:self._end]
                self._big_have = have
                self._start = self._end = 0
            return
        if self._start == self._end:
            self._start = self._end = 0

    def _compact(self) -> None:
        left = self._end - self._start
        self._stage[:left] = self._stage[self._start:self._end]
        self._start, self._end = 0, left

    # -- sending ------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return (self.transport is not None and not self._lost and not self._closed
                and not self.transport.is_closing())

    def send(self, pieces: Sequence[Buffer]) -> None:
        """Queue one message made of `pieces` (written as they are, not joined)."""
        if not self.alive:
            raise ConnectionResetError("rpc connection closed")
        assert self.transport is not None
        size = sum(len(p) for p in pieces)
        if size > self._max:
            raise ValueError(f"message of {size} bytes, at most {self._max}")
        self.transport.writelines([_HEAD.pack(size), *pieces])

    @property
    def write_paused(self) -> bool:
        """The send buffer is above its high-water mark (drain() would wait)."""
        return self._write_ok is not None and not self._write_ok.done()

    async def drain(self) -> None:
        """Wait while the connection's send buffer is above its high-water mark."""
        if self._write_ok is not None and not self._write_ok.done():
            await asyncio.shield(self._write_ok)
        elif self._lost:
            raise ConnectionResetError("rpc connection lost")

    def pause_reading(self) -> None:
        if self.alive:
            assert self.transport is not None
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.alive:
            assert self.transport is not None
            self.transport.resume_reading()

    def close(self) -> None:
        self._closed = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class PortSniffer(asyncio.Protocol):
    """A connection on the node's port, until its first bytes tell what it speaks: MAGIC
    hands it to `raw()` (the RPC channel), anything else to `http()` (aiohttp's protocol)."""

    def __init__(self, http: Callable[[], asyncio.BaseProtocol],
                 raw: Callable[[], MessageChannel]) -> None:
        self._http, self._raw = http, raw
        self._seen = b""
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._seen += data
        if len(self._seen) < len(MAGIC) and MAGIC.startswith(self._seen):
            return                  # not enough to tell yet
        assert self._transport is not None
        proto: Any
        if self._seen.startswith(MAGIC):
            proto, rest = self._raw(), self._seen[len(MAGIC):]
        else:
            proto, rest = self._http(), self._seen
        self._transport.set_protocol(proto)
        proto.connection_made(self._transport)
        if rest:
            _feed(proto, rest)

    def connection_lost(self, exc: Exception | None) -> None:
        pass                        # closed before it said anything


def _feed(proto: asyncio.BaseProtocol, data: bytes) -> None:
    """Hand bytes already read to a protocol of either kind."""
    if isinstance(proto, asyncio.BufferedProtocol):
        view = memoryview(data)
        while view:
            buf = memoryview(proto.get_buffer(len(view)))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]
    else:
        cast(asyncio.Protocol, proto).data_received(data)
