"""Gateway memory while a large object goes up and comes back (issue: bounded memory).

Starts a real local cluster, uploads a generated object of --size-mib through boto3 in
streaming mode (multipart off: one PutObject), reads it back verifying its SHA-256, and
samples the gateway's resident set size (VmRSS) every 50 ms. Prints the peak and the
throughput of both directions.

    .venv/bin/python -m bench.memory_bench --size-mib 1024
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import threading
import time

from tests.cluster.harness import new_cluster

MIB = 1024 * 1024


def write_source(path: str, size: int, seed: int) -> bytes:
    """Write `size` deterministic bytes to `path`; return their SHA-256."""
    block = random.Random(seed).randbytes(MIB)
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = block[: min(MIB, left)]
            f.write(chunk)
            sha.update(chunk)
            left -= len(chunk)
    return sha.digest()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    args = ap.parse_args()
    size = args.size_mib * MIB
    cluster = new_cluster()
    cluster.start()
    try:
        pid = cluster.procs["gateway"].pid
        peak = [rss_mib(pid)]
        idle = peak[0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mib(pid))
                time.sleep(0.05)

        threading.Thread(target=sample, daemon=True).start()
        s3 = cluster.s3()
        s3.create_bucket(Bucket="mem")
        src_path = str(cluster.root / "source.bin")
        want = write_source(src_path, size, 1)
        t0 = time.perf_counter()
        with open(src_path, "rb") as f:
            s3.put_object(Bucket="mem", Key="big", Body=f, ContentLength=size)
        os.unlink(src_path)
        t_put = time.perf_counter() - t0
        peak_put, peak[0] = peak[0], rss_mib(pid)
        t0 = time.perf_counter()
        body = s3.get_object(Bucket="mem", Key="big")["Body"]
        sha = hashlib.sha256()
        got = 0
        while chunk := body.read(MIB):
            sha.update(chunk)
            got += len(chunk)
        t_get = time.perf_counter() - t0
        stop.set()
        ok = got == size and sha.digest() == want
        print(f"object {args.size_mib} MiB  byte-identical: {ok}")
        print(f"gateway RSS idle {idle:.0f} MiB, peak {max(peak_put, peak[0]):.0f} MiB "
              f"(PUT {peak_put:.0f}, GET {peak[0]:.0f})")
        print(f"PUT {size / t_put / 1e6:.0f} MB/s ({t_put:.1f} s), "
              f"GET {size / t_get / 1e6:.0f} MB/s ({t_get:.1f} s)")
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


if __name__ == "__main__":
    main()
