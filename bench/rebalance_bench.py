"""Rebalance benchmark: how fast a real cluster moves data when a node joins and leaves, at
several throttles, next to the disk's and the node's own ingest floors.

    .venv/bin/python bench/rebalance_bench.py [--objects N] [--mbps 0,10,2] [--seed N]

A 6-node cluster on loopback (tests/cluster/harness.py) gets `--objects` erasure-coded
objects of 1-3 MB; then, for each throttle (MB/s per node, 0 = unlimited), a 7th node is
added (ring add + rebalance + publish) and removed again (drain), each timed from the ring
change to `coffre rebalance status` saying done. Figures printed (never asserted):
- disk floor: 4 MiB writes + one fsync, MB/s, on the data directory's disk;
- node ingest: 4 MiB fragment PUTs to one node through NodeClient (network + disk), MB/s;
- per step: bytes moved, the optimum (bytes the new device ends up holding, or held before
  a drain), seconds, cluster MB/s, the busiest sender's MB/s and its ratio to the throttle.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from storage import rebalance_plan as plan  # noqa: E402
from storage.client import NodeClient  # noqa: E402
from tests.cluster import rebalance_helpers as rh  # noqa: E402
from tests.cluster.harness import Cluster, new_cluster  # noqa: E402

MIB = 1024 * 1024


def disk_floor(directory: Path, total_bytes: int = 64 * MIB) -> float:
    path = directory / "disk-floor.tmp"
    block = os.urandom(4 * MIB)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(total_bytes // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    took = time.perf_counter() - t0
    path.unlink()
    return total_bytes / took / plan.MB


async def node_ingest(addr: str, dev_id: int, count: int = 16) -> float:
    client = NodeClient()
    body = os.urandom(4 * MIB)

    async def one() -> Any:
        yield body

    t0 = time.perf_counter()
    try:
        for i in range(count):
            key = b"bench-ingest-" + i.to_bytes(4, "big") + b"\x00"
            await client.put_fragment(addr, dev_id, 0, key, len(body), one())
        took = time.perf_counter() - t0
        for i in range(count):
            key = b"bench-ingest-" + i.to_bytes(4, "big") + b"\x00"
            await client.delete_fragment(addr, dev_id, 0, key)
    finally:
        await client.close()
    return count * len(body) / took / plan.MB


def fill(cluster: Cluster, objects: int, seed: int) -> int:
    rng = random.Random(seed)
    s3: Any = cluster.s3()
    s3.create_bucket(Bucket="bench")
    total = 0
    for i in range(objects):
        body = rng.randbytes(rng.randrange(1_000_000, 3_000_000))
        s3.put_object(Bucket="bench", Key=f"o/{i}", Body=body)
        total += len(body)
    return total


def step(cluster: Cluster, edit: list[str], now: int) -> tuple[dict[str, Any], float]:
    """Apply a ring edit, wait until done; per-node bytes moved and the seconds taken."""
    before = rh.status(cluster)
    t0 = time.monotonic()
    rh.change_rings(cluster, edit, now=now)
    after = rh.wait_done(cluster, 3600)
    took = time.monotonic() - t0
    per = {a: {"nodes": {a: s}} for a, s in after["nodes"].items()}
    moved = {a: rh.moved_since(before, doc, "bytes_moved") for a, doc in per.items()}
    return {"bytes_moved": sum(moved.values()), "per_node": moved,
            "rebuilt": rh.moved_since(before, after, "fragments_rebuilt")}, took


def row(name: str, mbps: float, doc: dict[str, Any], optimal: int, took: float) -> str:
    moved = doc["bytes_moved"]
    senders = [n for n in doc["per_node"].values() if n]
    busiest = max(senders, default=0) / took / plan.MB
    ratio = f"{busiest / mbps:.2f}" if mbps else "-"
    return (f"| {name} | {mbps or 'unlimited'} | {moved / plan.MB:.1f} | "
            f"{optimal / plan.MB:.1f} | {moved / max(1, optimal):.3f} | {took:.1f} | "
            f"{moved / took / plan.MB:.1f} | {busiest:.1f} | {ratio} |")


def run(objects: int, throttles: list[float], seed: int) -> None:
    cluster = new_cluster()
    cluster.start()
    try:
        print(f"seed={seed} objects={objects}")
        print(f"disk floor: {disk_floor(cluster.root):.0f} MB/s (4 MiB writes + fsync)")
        addr0 = rh.ring_devices(cluster)[0]
        print(f"node ingest: {asyncio.run(node_ingest(addr0, 0)):.0f} MB/s "
              "(4 MiB fragment PUTs, one stream)")
        print(f"wrote {fill(cluster, objects, seed) / plan.MB:.0f} MB of objects")
        print("| step | throttle MB/s/node | moved MB | optimal MB | ratio | s | cluster MB/s "
              "| busiest node MB/s | busiest/throttle |")
        print("|---|---|---|---|---|---|---|---|---|")
        now = int(time.time())
        next_id = 6
        for mbps in throttles:
            # A fresh node per round: a removed device id may not come back while readers
            # may still look for old data there.
            name, addr = rh.add_node(cluster, next_id)
            # A node starts at the default rate: set the throttle on the newcomer too.
            nodes = ",".join([*rh.ring_devices(cluster).values(), addr])
            rh.rebalance("throttle", str(mbps), "--nodes", nodes)
            now += 3 * 3600  # past min_part_hours: every step may move what it needs
            doc, took = step(cluster, ["add", "--id", str(next_id), "--addr", addr, "--domain",
                                       f"local/z1/n{next_id}/d0", "--weight", "1"], now)
            held = rh.audit(cluster, rh.ring_devices(cluster)).bytes_by_device[next_id]
            print(row("add", mbps, doc, held, took), flush=True)
            now += 3 * 3600
            doc, took = step(cluster, ["remove", "--id", str(next_id)], now)
            print(row("drain", mbps, doc, held, took), flush=True)
            cluster.kill(name)
            next_id += 1
    finally:
        cluster.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--objects", type=int, default=60)
    ap.add_argument("--mbps", default="0,10,2", help="throttles to try, MB/s per node")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    run(args.objects, [float(x) for x in args.mbps.split(",")], seed)


if __name__ == "__main__":
    main()
