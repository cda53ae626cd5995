"""The node server through the real client: a `python -m storage node serve` process, and the
aiohttp app on a loopback port for the failure statuses."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from storage import limits, wire
from storage.client import (
    DeviceFull,
    FragmentCorrupt,
    FragmentNotFound,
    MetaRecord,
    NodeClient,
    NodeError,
    NodeRequestError,
    NodeUnavailable,
)
from storage.node import Node, NodeConfig
from storage.server import listen, make_app
from tests.storage.conftest import chunks

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_live(client: NodeClient, addr: str) -> None:
    for _ in range(200):
        try:
            await client.info(addr)
            return
        except NodeUnavailable:
            await asyncio.sleep(0.05)
    raise AssertionError("node did not come up")


class NodeProcess:
    def __init__(self, tmp: Path, capacity: int | None = None) -> None:
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "storage", "node", "serve", "--listen", self.addr,
                "--device", f"1={tmp / 'd1'}", "--device", f"2={tmp / 'd2'}",
                "--rings-dir", str(tmp / "rings"), "--no-background"]
        if capacity is not None:
            args += ["--capacity-bytes", str(capacity)]
        self.proc = subprocess.Popen(args, cwd=ROOT)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture(params=["rpc", "http"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[NodeClient]:
    c = NodeClient(transport=request.param)
    yield c
    await c.close()


def _ring_bytes() -> bytes:
    from ring import ringfile
    from ring.builder import build_ring
    from ring.model import Device as RingDevice

    devs = [RingDevice(i, f"127.0.0.1:{9100 + i}", 1.0, f"r/z/n{i}/d") for i in range(6)]
    return ringfile.dumps(build_ring(devs, part_power=4, width=6, version=3))


async def test_node_process_end_to_end(tmp_path: Path, client: NodeClient) -> None:
    node = NodeProcess(tmp_path)
    try:
        await wait_live(client, node.addr)
        a = node.addr
        data = os.urandom(5_000_000)  # above the RPC limits: streamed over HTTP
        await client.put_fragment(a, 1, 5, b"obj/0", len(data), chunks(data))
        await client.put_fragment(a, 1, 5, b"obj/1", 1000, chunks(data[:1000]))
        assert await client.read_fragment(a, 1, 5, b"obj/1") == data[:1000]
        assert await client.fragment_size(a, 1, 5, b"obj/0") == len(data)
        assert await client.read_fragment(a, 1, 5, b"obj/0") == data
        assert await client.read_fragment(a, 1, 5, b"obj/0", 1000, 5000) == data[1000:6000]
        streamed = b"".join([p async for p in client.stream_fragment(a, 1, 5, b"obj/0", 7)])
        assert streamed == data[7:]
        assert await client.list_fragments(a, 1, 5) == [(b"obj/0", len(data)), (b"obj/1", 1000)]
        assert await client.list_fragments(a, 1, 5, after=b"obj/0") == [(b"obj/1", 1000)]
        await client.delete_fragment(a, 1, 5, b"obj/0")
        await client.delete_fragment(a, 1, 5, b"obj/0")  # idempotent
        with pytest.raises(FragmentNotFound):
            await client.read_fragment(a, 1, 5, b"obj/0")
        with pytest.raises(FragmentNotFound):
            await client.fragment_size(a, 1, 5, b"obj/0")
        with pytest.raises(NodeRequestError):  # the client refuses a body of the wrong size
            await client.put_fragment(a, 1, 5, b"x", 10, chunks(b"short"))

        long_key = b"k" * 1024
        await client.put_meta(a, 2, 9, long_key, 2**127 + 5, b"v1")
        await client.put_meta(a, 2, 9, long_key, 2**127 + 4, b"older")
        await client.put_meta(a, 2, 9, b"gone", 3, None)
        assert await client.get_meta(a, 2, 9, long_key) == MetaRecord(long_key, 2**127 + 5,
                                                                       b"v1")
        assert await client.get_meta(a, 2, 9, b"missing") is None
        listed = await client.list_meta(a, 2, 9, b"")
        assert [r.key for r in listed] == [b"gone", long_key]
        assert listed[0].value is None
        assert await client.list_meta(a, 2, 9, b"k", start_after=b"k") == listed[1:]
        summary = await client.partition_summary(a, 2, 9)
        assert summary["count"] == 2

        ring = _ring_bytes()
        await client.put_ring(a, "object-6", ring)
        assert await client.get_ring(a, "object-6") == ring
        with pytest.raises(NodeRequestError):
            await client.put_ring(a, "object-6", b"not a ring")
        assert await client.get_ring(a, "object-6") == ring  # the bad push harmed nothing
        info = await client.info(a)
        rings = info["rings"]
        assert isinstance(rings, dict) and rings["object-6"]["version"] == 3
        assert rings["object-6"]["bytes"] == len(ring)
        devices = info["devices"]
        assert isinstance(devices, list) and {d["id"] for d in devices} == {1, 2}
        with pytest.raises(NodeUnavailable):  # no device 3 here
            await client.read_fragment(a, 3, 5, b"x")
        assert node.stop() == 0
        # rebuild-index from the command line, then a restart finds everything as it was.
        shutil.rmtree(tmp_path / "d2" / "index.lmdb")
        rebuilt = subprocess.run([sys.executable, "-m", "storage", "node", "rebuild-index",
                                  "--device", str(tmp_path / "d2")], cwd=ROOT, check=True,
                                 capture_output=True, text=True)
        assert '"meta_records": 2' in rebuilt.stdout
        node = NodeProcess(tmp_path)
        await wait_live(client, node.addr)
        assert (await client.get_meta(node.addr, 2, 9, long_key)) == MetaRecord(
            long_key, 2**127 + 5, b"v1")
        assert [r.key for r in await client.list_meta(node.addr, 2, 9, b"")] == [
            b"gone", long_key]
    finally:
        if node.proc.poll() is None:
            node.stop()
    with pytest.raises(NodeUnavailable):
        await client.info(node.addr)


@pytest.fixture
async def app_node(tmp_path: Path) -> AsyncIterator[tuple[Node, str]]:
    node = Node(NodeConfig(devices={1: tmp_path / "a", 2: tmp_path / "b"},
                           capacity_bytes=4 * 1024 * 1024, segment_size_bytes=256 * 1024))
    runner = web.AppRunner(make_app(node, background=False))
    await runner.setup()
    port = free_port()
    server = await listen(runner, "127.0.0.1", port)
    yield node, f"127.0.0.1:{port}"
    server.close()
    await runner.cleanup()


async def test_full_corrupt_and_failed_statuses(app_node: tuple[Node, str], client: NodeClient,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    node, a = app_node
    kept = os.urandom(1_500_000)
    await client.put_fragment(a, 1, 0, b"kept", len(kept), chunks(kept))
    with pytest.raises(DeviceFull):
        for i in range(20):
            await client.put_fragment(a, 1, 0, b"f%d" % i, len(kept), chunks(kept))
    assert await client.read_fragment(a, 1, 0, b"kept") == kept

    # Corrupt a byte deep in the body: the first streamed piece is fine, a later one is not.
    loc = (await node.devices[1].stat_fragment(0, b"kept")).loc
    seg = node.devices[1].path / "segments" / f"{loc.segment:06d}.seg"
    with open(seg, "r+b") as f:
        f.seek(loc.offset + loc.head_bytes + 1_200_000)
        f.write(b"\x00\x01\x02")
    got = b""
    with pytest.raises(NodeUnavailable):
        async for piece in client.stream_fragment(a, 1, 0, b"kept"):
            got += piece
    assert got == kept[:len(got)] and len(got) < 1_200_000
    with pytest.raises(FragmentNotFound):  # quarantined by the failed stream
        await client.read_fragment(a, 1, 0, b"kept")

    await client.put_fragment(a, 2, 0, b"c", 100_000, chunks(kept[:100_000]))
    loc = (await node.devices[2].stat_fragment(0, b"c")).loc
    seg = node.devices[2].path / "segments" / f"{loc.segment:06d}.seg"
    with open(seg, "r+b") as f:
        f.seek(loc.offset + loc.head_bytes + 10)
        f.write(b"\xff\xfe")
    with pytest.raises(FragmentCorrupt):
        await client.read_fragment(a, 2, 0, b"c")

    def broken(*_a: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(node.devices[2].segments, "sync", broken)
    with pytest.raises(NodeUnavailable):
        await client.put_meta(a, 2, 0, b"m", 1, b"v")
    with pytest.raises(NodeUnavailable):
        await client.get_meta(a, 2, 0, b"m")
    await client.put_meta(a, 1, 0, b"m", 1, b"v")  # the other device keeps serving
    info = await client.info(a)
    failed = {d["id"]: d["failed"] for d in info["devices"]}  # type: ignore[attr-defined]
    assert failed == {1: False, 2: True}


async def test_many_concurrent_small_puts_share_commits(app_node: tuple[Node, str],
                                                        client: NodeClient) -> None:
    node, a = app_node
    body = os.urandom(4096)
    await asyncio.gather(*(client.put_fragment(a, 1, 1, b"s%d" % i, len(body), chunks(body))
                           for i in range(64)))
    assert node.devices[1].committer.batches < 64
    assert len(await client.list_fragments(a, 1, 1)) == 64
    assert limits.chunk_size_bytes > len(body)


async def test_client_vanishing_mid_body_harms_nothing(app_node: tuple[Node, str],
                                                       client: NodeClient) -> None:
    node, a = app_node
    host, port = a.split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    path = wire.frag_path(1, 0, b"torn")
    writer.write(f"PUT {path} HTTP/1.1\r\nHost: {a}\r\nContent-Length: 3000000\r\n\r\n"
                 .encode())
    writer.write(os.urandom(1_500_000))
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    dev = node.devices[1]
    for _ in range(200):  # the server reserved the region, then noticed the hang-up
        if dev.segments.used_bytes() > 0 and not dev.segments.busy(dev.segments.active_id()):
            break
        await asyncio.sleep(0.05)
    assert dev.segments.used_bytes() >= 3_000_000  # the whole region was reserved: now dead
    assert not dev.segments.busy(dev.segments.active_id())
    with pytest.raises(FragmentNotFound):
        await client.read_fragment(a, 1, 0, b"torn")
    await client.put_fragment(a, 1, 0, b"next", 3, chunks(b"abc"))
    assert await client.read_fragment(a, 1, 0, b"next") == b"abc"


async def test_a_damaged_metadata_record_read_over_rpc_is_refused_and_quarantined(
        app_node: tuple[Node, str], client: NodeClient) -> None:
    """mget is answered inline for an intact record; a damaged one takes the task path,
    which quarantines it (the node's repair queue gets it) and answers an error."""
    node, a = app_node
    await client.put_meta(a, 1, 3, b"m", 7, b"value")
    assert await client.get_meta(a, 1, 3, b"m") == MetaRecord(b"m", 7, b"value")
    raw_key = (3).to_bytes(4, "big") + b"m"
    with node.devices[1].index._kv.write() as txn:     # flip the value's last byte in LMDB
        raw = txn.get("meta", raw_key)
        assert raw is not None
        txn.put("meta", raw_key, raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(NodeError) as refused:
        await client.get_meta(a, 1, 3, b"m")
    assert "checksum" in str(refused.value)
    assert [(j.partition, j.key) for j in node.devices[1].index.repair_jobs()] == [(3, b"m")]
    assert await client.get_meta(a, 1, 3, b"m") is None
