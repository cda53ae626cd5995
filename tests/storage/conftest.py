"""Shared fixtures for the storage tests: a device on a temp dir, body generators, an RPC
server on a loopback port, an RPC client pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage import rpc
from storage.device import Device
from storage.rpc_client import RpcPool
from storage.rpc_stream import PortSniffer

SMALL_SEGMENT_BYTES = 256 * 1024


async def chunks(data: bytes, step: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i:i + step]


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    ex = concurrent.futures.ThreadPoolExecutor(8)
    yield ex
    ex.shutdown(wait=True)


@pytest.fixture
async def device(tmp_path: Path, executor: concurrent.futures.ThreadPoolExecutor
                 ) -> AsyncIterator[Device]:
    dev = Device(1, tmp_path / "dev", executor=executor,
                 segment_size_bytes=SMALL_SEGMENT_BYTES)
    await dev.open()
    yield dev
    if not dev.failed:
        await dev.close()


def segment_bytes_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "segments").glob("*.seg"))


class _NoHttp(asyncio.Protocol):
    pass


@contextlib.asynccontextmanager
async def rpc_listening(server: rpc.RpcServer) -> AsyncIterator[str]:
    """`server`'s channel on a loopback port (no HTTP side): yields its "host:port"."""
    listener = await asyncio.get_running_loop().create_server(
        lambda: PortSniffer(_NoHttp, server.channel), "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{listener.sockets[0].getsockname()[1]}"
    finally:
        listener.close()


@pytest.fixture
async def pool() -> AsyncIterator[RpcPool]:
    """An RPC client with one connection per node."""
    client = RpcPool(timeout_s=10, connect_timeout_s=2, connections_per_node=1)
    yield client
    await client.close()
