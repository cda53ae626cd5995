"""Streamed fragment PUTs on the RPC channel (rpc_frames.STREAM_PUT) on a real loopback
socket: the body follows its call as raw messages and reaches the device whole; the
connection then carries calls again; a refusal is answered before the body ends; a body
longer than declared, or cut short, stores nothing. The node is a stand-in whose device
collects what it is given (a unit test of the channel; the cluster tests stream real
fragments to real nodes)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterable, AsyncIterator

import msgpack
import pytest

from storage import rpc, rpc_frames
from storage.errors import BadRequest
from storage.rpc_client import RpcPool
from tests.storage.conftest import rpc_listening


class _Device:
    def __init__(self) -> None:
        self.stored: dict[bytes, bytes] = {}
        self.cut: list[bytes] = []          # keys whose body ended early
        self.refuse = False

    async def put_fragment(self, partition: int, key: bytes, length: int,
                           body: AsyncIterable[bytes | bytearray | memoryview]) -> None:
        if self.refuse:
            raise BadRequest("refused")
        pieces = []
        try:
            async for piece in body:
                pieces.append(bytes(piece))
        except ConnectionError:
            self.cut.append(key)
            raise
        self.stored[key] = b"".join(pieces)


class _Node:
    def __init__(self) -> None:
        self.dev = _Device()

    def device(self, _index: int) -> _Device:
        return self.dev


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, _Device]]:
    node = _Node()
    async with rpc_listening(rpc.RpcServer(node=node, observe=None)) as addr:  # type: ignore[arg-type]
        yield addr, node.dev


async def _until_cut(dev: _Device) -> None:
    for _ in range(100):
        if dev.cut:
            return
        await asyncio.sleep(0.01)


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes | memoryview]:
    view = memoryview(data)
    for at in range(0, len(data), size):
        yield view[at:at + size]
        await asyncio.sleep(0)


async def test_a_streamed_put_reaches_the_device_whole(
        served: tuple[str, _Device], pool: RpcPool) -> None:
    addr, dev = served
    data = random.Random(1).randbytes(5 * 1024 * 1024 + 12345)
    status, _ = await pool.stream(addr, rpc_frames.STREAM_PUT, (0, 3, b"k1", len(data)),
                                  _pieces(data, 300_000))
    assert status == 204
    assert dev.stored[b"k1"] == data
    # The connection went back to the pool and carries a second stream, byte for byte.
    again = data[::-1]
    assert (await pool.stream(addr, rpc_frames.STREAM_PUT, (0, 3, b"k2", len(again)),
                              _pieces(again, 2 * 1024 * 1024)))[0] == 204
    assert dev.stored[b"k2"] == again


async def test_a_refused_stream_is_answered_before_its_body_ends(
        served: tuple[str, _Device], pool: RpcPool) -> None:
    addr, dev = served
    dev.refuse = True
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):          # 10 GiB declared: far more than is ever sent
            sent += 1
            yield b"x" * (1024 * 1024)
            await asyncio.sleep(0)

    status, reason = await pool.stream(addr, rpc_frames.STREAM_PUT, (0, 3, b"k", 10_000 * 2**20),
                                       endless())
    assert (status, reason) == (400, "refused")
    assert sent < 100
    assert dev.stored == {}


def _call(length: int) -> bytes:
    frame = msgpack.packb([1, rpc_frames.STREAM_PUT, None, 0, 3, b"k", length])
    return len(frame).to_bytes(4, "big") + frame


def _raw(piece: bytes) -> bytes:
    return len(piece).to_bytes(4, "big") + piece


async def test_a_body_longer_than_declared_ends_the_connection_and_stores_nothing(
        served: tuple[str, _Device]) -> None:
    addr, dev = served
    host, port = addr.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"COFFRE-RPC/1\n" + _call(10) + _raw(b"y" * 20))
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""    # closed, nothing answered
    writer.close()
    await _until_cut(dev)
    assert dev.cut == [b"k"]
    assert dev.stored == {}


async def test_a_body_cut_short_stores_nothing(served: tuple[str, _Device]) -> None:
    addr, dev = served
    host, port = addr.split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"COFFRE-RPC/1\n" + _call(1000) + _raw(b"z" * 400))
    await writer.drain()
    writer.close()
    await _until_cut(dev)
    assert dev.cut == [b"k"]
    assert dev.stored == {}
