"""Storage node benchmark: fragment and metadata PUT/GET rates through the real client and a
real `python -m storage node serve` process on loopback, next to the disk's own floors.

    .venv/bin/python bench/storage_bench.py [--dir DIR] [--quick] [--seed N]

Figures printed (never asserted):
- fsync floor: 4 KiB pwrite + fdatasync per call, one thread, appending to one file;
- raw write: 4 MiB writes then one fsync, MB/s;
- fragment PUT/s at 4 KiB with 1 and 64 concurrent writers (each acknowledged = durable);
- MB/s for 4 MiB fragments (PUT and GET), fragment GET/s at 4 KiB, metadata PUT/s and GET/s;
- per-call overhead: a ping (no disk, no thread hop) and a metadata GET of a missing key, over
  HTTP and over the framed RPC channel.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage.client import NodeClient, NodeUnavailable  # noqa: E402


def fsync_floor(directory: Path, n: int) -> float:
    path = directory / "fsync-floor.tmp"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    block = os.urandom(4096)
    try:
        start = time.perf_counter()
        for i in range(n):
            os.pwrite(fd, block, i * 4096)
            os.fdatasync(fd)
        return n / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


def raw_write_mb_s(directory: Path, total_mb: int) -> float:
    path = directory / "raw-write.tmp"
    block = os.urandom(4 * 1024 * 1024)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        start = time.perf_counter()
        for i in range(total_mb // 4):
            os.pwrite(fd, block, i * len(block))
        os.fsync(fd)
        return total_mb / (time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()


async def one_piece(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def pieces(data: bytes, step: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i:i + step]


async def rate(n: int, concurrency: int, op: Callable[[int], Awaitable[object]]) -> float:
    """Calls per second of op(0..n-1) with `concurrency` calls in flight."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def small_calls(client: NodeClient, addr: str, transport: str, rng: random.Random,
                      scale: int, floor: float) -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    small = rng.randbytes(4096)
    tag = transport.encode()

    def put_small(prefix: bytes) -> Callable[[int], Awaitable[object]]:
        return lambda i: client.put_fragment(addr, 1, i % 64, tag + prefix + b"%d" % i, 4096,
                                             one_piece(small))

    def get_small(i: int) -> Awaitable[object]:
        return client.read_fragment(addr, 1, i % 64, tag + b"b%d" % i)

    r = await rate(150 * scale, 1, put_small(b"a"))
    rows.append((f"[{transport}] fragment PUT 4 KiB, 1 writer", r,
                 f"/s  {r / floor:.2f}x fsync floor"))
    r = await rate(1000 * scale, 64, put_small(b"b"))
    rows.append((f"[{transport}] fragment PUT 4 KiB, 64 writers", r,
                 f"/s  {r / floor:.2f}x fsync floor"))
    r = await rate(300 * scale, 1, get_small)
    rows.append((f"[{transport}] fragment GET 4 KiB, 1 reader", r, "/s"))
    r = await rate(1000 * scale, 64, get_small)
    rows.append((f"[{transport}] fragment GET 4 KiB, 64 readers", r, "/s"))
    meta = rng.randbytes(1500)
    r = await rate(150 * scale, 1, lambda i: client.put_meta(addr, 1, 7, tag + b"m%d" % i, 1,
                                                             meta))
    rows.append((f"[{transport}] meta PUT 1.5 KiB, 1 writer", r, "/s"))
    r = await rate(1000 * scale, 64,
                   lambda i: client.put_meta(addr, 1, 7, tag + b"n%d" % i, 1, meta))
    rows.append((f"[{transport}] meta PUT 1.5 KiB, 64 writers", r, "/s"))
    r = await rate(500 * scale, 1, lambda i: client.get_meta(addr, 1, 7, tag + b"n%d" % i))
    rows.append((f"[{transport}] meta GET, 1 reader", r, "/s"))
    r = await rate(500 * scale, 1, lambda i: client.get_meta(addr, 1, 9, b"none"))
    rows.append((f"[{transport}] meta GET of a missing key", 1e6 / r, "us per call"))
    r = await rate(1000 * scale, 1, lambda i: client.ping(addr))
    rows.append((f"[{transport}] ping (no disk, no thread)", 1e6 / r, "us per call"))
    r = await rate(4000 * scale, 64, lambda i: client.ping(addr))
    rows.append((f"[{transport}] pings, 64 in flight", r, "/s"))
    return rows


async def big_fragments(client: NodeClient, addr: str, rng: random.Random, scale: int
                        ) -> list[tuple[str, float, str]]:
    big = rng.randbytes(4 * 1024 * 1024)
    n_big = 8 * scale
    r = await rate(n_big, 4, lambda i: client.put_fragment(addr, 1, 0, b"big%d" % i,
                                                           len(big), pieces(big)))
    rows = [("fragment PUT 4 MiB, 4 writers", r * 4, "MB/s")]

    async def get_big(i: int) -> None:
        async for _ in client.stream_fragment(addr, 1, 0, b"big%d" % (i % n_big)):
            pass

    r = await rate(n_big * 2, 4, get_big)
    rows.append(("fragment GET 4 MiB (streamed), 4 readers", r * 4, "MB/s"))
    return rows


async def run(directory: Path, quick: bool, seed: int) -> list[tuple[str, float, str]]:
    rng = random.Random(seed)
    scale = 1 if quick else 4
    rows: list[tuple[str, float, str]] = []
    rows.append(("fsync floor (4 KiB pwrite+fdatasync)", fsync_floor(directory, 300 * scale),
                 "/s"))
    rows.append(("raw write (4 MiB writes + fsync)", raw_write_mb_s(directory, 64 * scale),
                 "MB/s"))
    port = free_port()
    addr = f"127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "storage", "node", "serve", "--listen", addr,
                             "--device", f"1={directory / 'dev1'}", "--no-background"],
                            cwd=ROOT)
    clients = {"http": NodeClient(transport="http"), "rpc": NodeClient(transport="rpc")}
    try:
        for _ in range(200):
            try:
                await clients["http"].info(addr)
                break
            except NodeUnavailable:
                await asyncio.sleep(0.05)
        for name, client in clients.items():
            rows += await small_calls(client, addr, name, rng, scale, rows[0][1])
        rows += await big_fragments(clients["http"], addr, rng, scale)
    finally:
        for client in clients.values():
            await client.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the device")
    parser.add_argument("--quick", action="store_true", help="fewer operations")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"seed {args.seed}")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="coffre-bench-") as tmp:
        try:
            import uvloop  # the loop the gateway runs on

            rows = uvloop.run(run(Path(tmp), args.quick, args.seed))
        except ImportError:
            rows = asyncio.run(run(Path(tmp), args.quick, args.seed))
    width = max(len(name) for name, _, _ in rows)
    for name, value, unit in rows:
        print(f"{name:<{width}}  {value:>10.1f} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
