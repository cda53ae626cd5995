"""storage/rpc_stream.py on real loopback sockets: messages of every size arrive whole and in
order however the bytes are cut, a big one is read into a buffer of its own, a broken length
ends the connection, and one port serves HTTP and the channel side by side."""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from storage.rpc_stream import _DIRECT_BYTES, _STAGE_BYTES, MAGIC, MessageChannel, PortSniffer

MAX = 8 * 1024 * 1024


class Sink:
    """What one end of a channel received."""

    def __init__(self) -> None:
        self.messages: list[bytes | bytearray] = []
        self.lost = asyncio.get_running_loop().create_future()
        self.arrived = asyncio.Event()
        self.channel = MessageChannel(self._message, self._lost, MAX)

    def _message(self, data: bytes | bytearray) -> None:
        self.messages.append(data)
        self.arrived.set()

    def _lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)

    async def wait_for(self, count: int) -> None:
        while len(self.messages) < count:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), 10)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def feed(channel: MessageChannel, data: bytes, cuts: list[int]) -> None:
    """Hand `data` to the channel as the kernel would, in reads cut at `cuts`."""
    at = 0
    for end in [*sorted(c for c in cuts if 0 < c < len(data)), len(data)]:
        while at < end:
            buf = channel.get_buffer(-1)
            n = min(len(buf), end - at)
            buf[:n] = data[at:at + n]
            channel.buffer_updated(n)
            at += n


sizes = st.lists(st.sampled_from([0, 1, 3, 100, _DIRECT_BYTES - 1, _DIRECT_BYTES,
                                  _STAGE_BYTES - 2, _STAGE_BYTES + 7, 1_000_003]),
                 min_size=1, max_size=6)


@settings(max_examples=60, deadline=None)
@given(sizes=sizes, cuts=st.lists(st.integers(0, 3_000_000), max_size=12))
def test_messages_arrive_whole_and_in_order_however_the_reads_are_cut(
        sizes: list[int], cuts: list[int]) -> None:
    got: list[bytes | bytearray] = []
    channel = MessageChannel(got.append, lambda _e: None, MAX)
    bodies = [os.urandom(n) for n in sizes]
    feed(channel, b"".join(frame(b) for b in bodies), cuts)
    assert [bytes(m) for m in got] == bodies


def test_a_big_message_is_read_into_its_own_buffer() -> None:
    got: list[bytes | bytearray] = []
    channel = MessageChannel(got.append, lambda _e: None, MAX)
    body = os.urandom(3 * _STAGE_BYTES)
    data = frame(body)
    feed(channel, data[:1000], [])
    # From here the kernel writes straight into the message's buffer, sized to what is left.
    assert len(channel.get_buffer(-1)) == len(body) - (1000 - 4)
    feed(channel, data[1000:], [])
    assert got == [body] and isinstance(got[0], bytearray)


class _Closed:
    def __init__(self) -> None:
        self.closed = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def test_a_length_above_the_maximum_ends_the_connection() -> None:
    got: list[bytes | bytearray] = []
    channel = MessageChannel(got.append, lambda _e: None, 1000)
    transport = _Closed()
    channel.transport = transport  # type: ignore[assignment]
    feed(channel, frame(b"ok") + struct.pack(">I", 1001) + b"x" * 10, [])
    assert got == [b"ok"] and transport.closed


@pytest.fixture
async def served() -> AsyncIterator[tuple[int, list[Sink]]]:
    """A port serving a tiny HTTP app and, beside it, channels that record what they get."""
    sinks: list[Sink] = []

    def make() -> MessageChannel:
        sinks.append(Sink())
        return sinks[-1].channel

    http_app = web.Application()

    async def hello(_request: web.Request) -> web.Response:
        return web.Response(text="hello")

    http_app.router.add_get("/", hello)
    runner = web.AppRunner(http_app)
    await runner.setup()
    http = runner.server
    assert http is not None
    server = await asyncio.get_running_loop().create_server(
        lambda: PortSniffer(http, make), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], sinks
    server.close()
    await runner.cleanup()


async def test_one_port_serves_http_and_the_channel(served: tuple[int, list[Sink]]) -> None:
    port, sinks = served
    async with aiohttp.ClientSession() as session:
        for _ in range(2):          # keep-alive: the second request rides the same socket
            async with session.get(f"http://127.0.0.1:{port}/") as resp:
                assert resp.status == 200 and await resp.text() == "hello"
    client = Sink()
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: client.channel, "127.0.0.1", port)
    assert client.channel.transport is not None
    client.channel.transport.write(MAGIC[:4])          # the preamble may come in pieces
    await asyncio.sleep(0.05)
    client.channel.transport.write(MAGIC[4:])
    big = os.urandom(5_000_000)
    client.channel.send([b"one"])
    client.channel.send([memoryview(big)[:100], memoryview(big)[100:]])
    await client.channel.drain()
    while not sinks:
        await asyncio.sleep(0.01)
    await sinks[0].wait_for(2)
    assert [bytes(m) for m in sinks[0].messages] == [b"one", big]
    sinks[0].channel.send([b"answer"])                 # and back the other way
    await client.wait_for(1)
    assert client.messages == [b"answer"]
    client.channel.close()
    assert await asyncio.wait_for(sinks[0].lost, 5) is None
    with pytest.raises(ConnectionResetError):
        client.channel.send([b"late"])


async def test_paused_reading_backs_up_the_sender(served: tuple[int, list[Sink]]) -> None:
    """A receiver that stops reading makes the sender's drain wait, not its memory grow."""
    port, sinks = served
    client = Sink()
    await asyncio.get_running_loop().create_connection(lambda: client.channel, "127.0.0.1",
                                                       port)
    assert client.channel.transport is not None
    client.channel.transport.write(MAGIC)
    client.channel.send([b"first"])
    while not sinks or not sinks[0].messages:
        await asyncio.sleep(0.01)
    sinks[0].channel.pause_reading()
    chunk = os.urandom(1_000_000)
    blocked = False
    for _ in range(64):
        client.channel.send([chunk])
        try:
            await asyncio.wait_for(client.channel.drain(), 0.2)
        except TimeoutError:
            blocked = True
            break
    assert blocked, "64 MB went out to a receiver that does not read"
    sinks[0].channel.resume_reading()
    await asyncio.wait_for(client.channel.drain(), 10)
    client.channel.close()
