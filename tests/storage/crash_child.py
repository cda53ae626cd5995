"""Child process of the crash test: writes under load, prints each acknowledged write.

Usage: python -m tests.storage.crash_child DEVICE_DIR SEED
Every line is printed (and flushed) only after the engine acknowledged the write, so the
parent knows exactly what must survive a SIGKILL. Bodies derive from their keys (body_for).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from storage.device import Device

SEGMENT_BYTES = 1024 * 1024


def body_for(key: bytes) -> bytes:
    rng = random.Random(key)
    size = rng.choice([0, 1, 100, 4096, 70_000, 300_000, 1_500_000])
    return rng.randbytes(size)


async def _pieces(data: bytes, rng: random.Random) -> AsyncIterator[bytes]:
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 200_000)
        yield data[pos:pos + step]
        pos += step
        await asyncio.sleep(0)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def _worker(dev: Device, worker: int, seed: int) -> None:
    rng = random.Random(seed * 1000 + worker)
    done: list[bytes] = []
    for i in range(1_000_000):
        key = b"w%d-%d-%d" % (seed, worker, i)
        action = rng.random()
        if action < 0.6:
            body = body_for(key)
            await dev.put_fragment(worker, key, len(body), _pieces(body, rng))
            done.append(key)
            _say("F " + key.hex())
        elif action < 0.8 and done:
            victim = done.pop(rng.randrange(len(done)))
            _say("d " + victim.hex())  # intent: if killed now, either outcome is right
            await dev.delete_fragment(worker, victim)
            _say("D " + victim.hex())
        else:
            ts = rng.randrange(1, 2**128)
            await dev.put_meta(worker, key, ts, key * 3)
            _say(f"M {key.hex()} {ts}")


async def main(path: Path, seed: int) -> None:
    ex = concurrent.futures.ThreadPoolExecutor(8)
    dev = Device(1, path, executor=ex, segment_size_bytes=SEGMENT_BYTES)
    await dev.open()
    _say("READY")
    await asyncio.gather(*(_worker(dev, w, seed) for w in range(12)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
