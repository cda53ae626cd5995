"""Micro-benchmarks of the data path's pure parts: zfec encode/decode at the stripe sizes in
use, the hashes a PUT takes of each stripe, and rendering a 1000-key listing page.

Seeded; CPU time of one process; prints figures, asserts nothing.
Run: `.venv/bin/python -m bench.micro_datapath`.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable

from gateway import limits
from gateway.checksums import ChecksumAlgorithm, Checksummer
from gateway.list_xml import list_objects_v2
from gateway.s3xml import ListEntry, ListPage
from storage.erasure import Codec

MB = 1e6


def _cpu(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """CPU seconds per call, over at least `seconds` of CPU time."""
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        fn()
        n += 1
    return (time.process_time() - start) / n


def erasure(rng: random.Random) -> None:
    block = limits.stripe_block_bytes
    print(f"zfec, {block // 1024} KiB blocks (one stripe = k blocks of data)")
    print(f"  {'code':>6} {'encode MB/s':>12} {'decode MB/s (m lost)':>22}")
    for k, m in ((4, 2), (8, 3), (10, 4)):
        codec = Codec(k, m)
        data = rng.randbytes(k * block)
        blocks = codec.split(data, block)
        coded = codec.encode(blocks)
        survivors = {i: bytes(coded[i]) for i in range(m, k + m)}    # the first m lost
        enc = _cpu(lambda: codec.encode(blocks))     # noqa: B023 - used at once
        dec = _cpu(lambda: codec.decode(survivors))  # noqa: B023
        print(f"  {k:>3}+{m:<2} {len(data) / enc / MB:>12.0f} {len(data) / dec / MB:>22.0f}")


def put_hashes(rng: random.Random) -> None:
    """Each hash runs in a thread of its own (datapath): a PUT's wall time follows the
    slowest, MD5; the CPU is their sum."""
    stripe = rng.randbytes(4 * limits.stripe_block_bytes)
    print(f"hashes of a PUT, per {len(stripe) // 2**20} MiB stripe (one core)")
    for alg in (None, ChecksumAlgorithm.CRC64NVME, ChecksumAlgorithm.CRC32,
                ChecksumAlgorithm.SHA256):
        if alg is None:
            cost = _cpu(lambda: hashlib.md5(stripe))
            md5 = cost
        else:
            cost = _cpu(lambda: Checksummer(alg).update(stripe))  # noqa: B023
        name = "MD5 (the ETag)" if alg is None else alg.aws_name
        print(f"  {name:>16} {len(stripe) / cost / MB:9,.0f} MB/s  "
              f"{cost / md5:5.1%} of MD5's CPU")


def listing(rng: random.Random) -> None:
    for alg, kind in (("", ""), ("CRC64NVME", "FULL_OBJECT")):
        entries = [ListEntry(f"dataset-{rng.randrange(1000):04d}/part-{i:08d}.parquet",
                             1_700_000_000_000 + i, '"d41d8cd98f00b204e9800998ecf8427e"',
                             rng.randrange(1 << 30), "STANDARD", alg, kind)
                   for i in range(1000)]
        page = ListPage(entries, [], True, entries[-1].key)
        cost = _cpu(lambda: list_objects_v2("bucket", "", None, 1000, page,  # noqa: B023
                                            False, None, "tok", None, None))
        print(f"ListObjectsV2 page of 1000 keys{' with checksums' if alg else ''}: "
              f"{cost * 1e3:.2f} ms to render ({1000 / cost:,.0f} keys/s on one core)")


def main() -> None:
    rng = random.Random(1)
    erasure(rng)
    put_hashes(rng)
    listing(rng)


if __name__ == "__main__":
    main()
