"""Degraded reads: large-object GET throughput with every node up, then with m=2 nodes
killed (SIGKILL), on a real local cluster; prints both and the ratio.

    .venv/bin/python -m bench.degraded_bench [--size-mib 64] [--reads 6]
"""

from __future__ import annotations

import argparse
import random
import shutil
import time

from tests.cluster.harness import Cluster, new_cluster

MIB = 1024 * 1024


def _read_rate(cluster: Cluster, keys: list[str], reads: int, size: int) -> float:
    s3 = cluster.s3()
    t0 = time.perf_counter()
    for i in range(reads):
        body = s3.get_object(Bucket="degraded", Key=keys[i % len(keys)])["Body"]
        got = 0
        while chunk := body.read(MIB):
            got += len(chunk)
        assert got == size
    return reads * size / (time.perf_counter() - t0) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--reads", type=int, default=6)
    args = ap.parse_args()
    size = args.size_mib * MIB
    cluster = new_cluster()
    cluster.start()
    try:
        s3 = cluster.s3()
        s3.create_bucket(Bucket="degraded")
        keys = [f"obj{i}" for i in range(3)]
        for k in keys:
            s3.put_object(Bucket="degraded", Key=k, Body=random.Random(k).randbytes(size))
        healthy = _read_rate(cluster, keys, args.reads, size)
        for name in cluster.node_names()[:2]:      # holders of data fragments for some
            cluster.kill(name)                     # objects, parity for others
        degraded = _read_rate(cluster, keys, args.reads, size)
        print(f"{args.size_mib} MiB GET, sequential: healthy {healthy:.0f} MB/s, "
              f"2 nodes down {degraded:.0f} MB/s, ratio {degraded / healthy:.2f}")
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


if __name__ == "__main__":
    main()
