"""aiohttp or a raw asyncio protocol for internal traffic? Both measured on loopback.

Issue 7 asks to pick between aiohttp's client and a raw asyncio protocol for the internal data
path by measuring both. This runs a peer process serving, on two ports:
- aiohttp: a WebSocket echo of binary messages (what storage/rpc.py runs on) and an HTTP
  endpoint that reads a streamed request body (what fragment uploads use);
- raw: an asyncio.Protocol speaking 4-byte length-prefixed frames (echo), where a frame
  whose length has the top bit set is a bulk body to drain and acknowledge;
and times, from this process, with uvloop on both sides:
- small calls one at a time (latency) and 64 in flight (rate), 100-byte frames;
- a 256 MiB body streamed in 256 KiB pieces (MB/s);
with the CPU of both processes per call or per MB (from /proc), so that a figure bought with
more CPU shows it.

    .venv/bin/python -m bench.transport_bench [--calls 20000] [--mib 256]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import cast

import aiohttp
import uvloop
from aiohttp import web

_LEN = struct.Struct(">I")
_BULK = 0x8000_0000
PIECE = 256 * 1024


# ---- the peer ---------------------------------------------------------------------------

class _Echo(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.bulk_left = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.bulk_left:
            take = min(self.bulk_left, len(data))
            self.bulk_left -= take
            data = data[take:]
            if not self.bulk_left:
                self.transport.write(_LEN.pack(0))
        self.buf += data
        out = []
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if n & _BULK:
                size = n & ~_BULK
                have = min(size, len(self.buf) - 4)
                del self.buf[:4 + have]
                self.bulk_left = size - have
                if not self.bulk_left:
                    out.append(_LEN.pack(0))
                continue
            if len(self.buf) < 4 + n:
                break
            out.append(bytes(self.buf[:4 + n]))
            del self.buf[:4 + n]
        if out:
            self.transport.write(b"".join(out))


async def _ws(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024 * 1024)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == aiohttp.WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def _sink(request: web.Request) -> web.Response:
    n = 0
    async for chunk in request.content.iter_any():
        n += len(chunk)
    return web.Response(text=str(n))


async def _serve(http_port: int, raw_port: int) -> None:
    app = web.Application(client_max_size=1 << 40)
    app.router.add_get("/ws", _ws)
    app.router.add_post("/sink", _sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", http_port).start()
    await asyncio.get_running_loop().create_server(_Echo, "127.0.0.1", raw_port)
    print("ready", flush=True)
    await asyncio.Event().wait()


# ---- the client -------------------------------------------------------------------------

class _RawClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiters: list[asyncio.Future[bytes]] = []   # answers come back in order
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)   # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while len(self.buf) >= 4:
            (n,) = _LEN.unpack_from(self.buf)
            if len(self.buf) < 4 + n:
                return
            body = bytes(self.buf[4:4 + n])
            del self.buf[:4 + n]
            self.waiters.pop(0).set_result(body)

    def call(self, frame: bytes) -> asyncio.Future[bytes]:
        assert self.transport is not None
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        self.transport.write(_LEN.pack(len(frame)) + frame)
        return fut

    def bulk(self, size: int) -> asyncio.Future[bytes]:
        assert self.transport is not None
        fut = asyncio.get_running_loop().create_future()
        self.waiters.append(fut)
        self.transport.write(_LEN.pack(_BULK | size))
        return fut


def _cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _timed(peer: int, fn: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and the peer)."""
    c0, p0, t0 = time.process_time(), _cpu_s(peer), time.perf_counter()
    await fn()
    return time.perf_counter() - t0, time.process_time() - c0 + _cpu_s(peer) - p0


async def _pool(n: int, concurrency: int, one: Callable[[], Awaitable[object]]) -> None:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await one()
    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(http_port: int, raw_port: int, peer: int, calls: int, mib: int
                   ) -> list[tuple[str, str, str]]:
    frame = os.urandom(100)
    rows: list[tuple[str, str, str]] = []
    loop = asyncio.get_running_loop()
    transport, raw = await loop.create_connection(_RawClient, "127.0.0.1", raw_port)
    raw.transport = transport       # (uvloop sets TCP_NODELAY on TCP transports itself)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"http://127.0.0.1:{http_port}/ws", compress=0)
        waiting: list[asyncio.Future[None]] = []     # answers come back in order

        async def ws_reader() -> None:
            async for _msg in ws:
                waiting.pop(0).set_result(None)

        reader = asyncio.ensure_future(ws_reader())

        async def ws_call() -> None:
            fut = loop.create_future()
            waiting.append(fut)
            await ws.send_bytes(frame)
            await fut

        async def raw_call() -> None:
            await raw.call(frame)

        for name, one in (("aiohttp WebSocket", ws_call), ("raw protocol", raw_call)):
            for conc in (1, 64):
                wall, cpu = await _timed(peer, functools.partial(_pool, calls, conc, one))
                rows.append((f"{name}: 100-byte calls, {conc} in flight",
                             f"{calls / wall:,.0f} calls/s",
                             f"{cpu / calls * 1e6:.1f} us CPU per call (both sides)"))

        total = mib * 1024 * 1024
        piece = os.urandom(PIECE)

        async def body() -> object:
            for _ in range(total // PIECE):
                yield piece

        async def http_bulk() -> None:
            async with session.post(f"http://127.0.0.1:{http_port}/sink", data=body()) as r:
                assert int(await r.text()) == total

        async def raw_bulk() -> None:
            done = raw.bulk(total)
            assert raw.transport is not None
            for _ in range(total // PIECE):
                raw.transport.write(piece)
                if raw.transport.get_write_buffer_size() > 4 * PIECE:
                    await asyncio.sleep(0)     # let the loop drain (no drain() on a Protocol)
            await done

        for name, fn in (("aiohttp HTTP streamed body", http_bulk),
                         ("raw protocol body", raw_bulk)):
            wall, cpu = await _timed(peer, fn)
            rows.append((f"{name}, {mib} MiB in {PIECE // 1024} KiB pieces",
                         f"{mib * 1.048576 / wall:,.0f} MB/s",
                         f"{cpu / (mib * 1.048576) * 1000:.2f} ms CPU per MB (both sides)"))
        await ws.close()
        reader.cancel()
    assert raw.transport is not None
    raw.transport.close()
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        uvloop.run(_serve(*args.serve))
        return
    http_port, raw_port = _free_port(), _free_port()
    peer = subprocess.Popen([sys.executable, "-m", "bench.transport_bench", "--serve",
                             str(http_port), str(raw_port)], stdout=subprocess.PIPE)
    try:
        assert peer.stdout is not None and peer.stdout.readline().strip() == b"ready"
        rows = uvloop.run(_measure(http_port, raw_port, peer.pid, args.calls, args.mib))
    finally:
        peer.terminate()
        peer.wait()
    width = max(len(r[0]) for r in rows)
    for name, rate, cpu in rows:
        print(f"{name:<{width}}  {rate:>16}  {cpu}")


if __name__ == "__main__":
    main()
