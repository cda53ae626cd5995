"""Listing at scale: a bucket of N keys (default 1,000,000), listed flat and by delimiter.

Writing a million objects through S3 would measure PUTs, not listings, and take an hour on
this machine; so the index records are bulk-loaded straight into the nodes' devices (the
same records, keys and replicas a gateway would write: gateway.catalog decides where, the
storage engine stores them) while the nodes are stopped. Then the cluster is restarted and
listed through the S3 API with a lean signed client:

    .venv/bin/python -m bench.list_bench --keys 1000000 --prefixes 1000

Prints keys/s for a full flat listing (1000-key pages), and the latency of a delimiter
listing at the root (1000 common prefixes) and inside one prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import re
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from gateway import sigv4
from gateway.catalog import Catalog
from gateway.hlc import Clock
from gateway.manifest import Manifest
from gateway.metastore import MetaStore
from ring.ringset import RingSet
from storage.device import Device
from tests.cluster.harness import Cluster, new_cluster

_KEY = re.compile(rb"<Key>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")


def _key(i: int, prefixes: int) -> str:
    return f"dataset-{i % prefixes:04d}/part-{i:08d}.parquet"


async def bulk_load(cluster: Cluster, bucket_name: str, keys: int, prefixes: int) -> float:
    rings = RingSet(cluster.config.rings_dir)
    store = MetaStore(rings, None, Clock())  # type: ignore[arg-type]  # placement only
    catalog = Catalog(store, 0)
    # The bucket record is read from a node device directly (the nodes are stopped).
    dev_dirs = {d.id: cluster.root / "nodes" / d.domain.split("/")[2] / d.domain.split("/")[3]
                for d in rings.meta.devices}
    pool = concurrent.futures.ThreadPoolExecutor(8)
    devices = {i: Device(i, Path(p), executor=pool) for i, p in dev_dirs.items()}
    for dev in devices.values():
        await dev.open()
    part = catalog._bucket_partition
    holder = rings.meta.slots(part)[0]
    entry = await devices[holder.id].get_meta(part, b"B" + bucket_name.encode())
    assert entry is not None and entry.value is not None
    from gateway.manifest import BucketRecord
    bucket = BucketRecord.decode(entry.value)
    value = Manifest(1, '"c4ca4238a0b923820dcc509a6f75849b"', int(time.time() * 1000),
                     {"Content-Type": "application/octet-stream"}, {}, inline=b"1").encode()
    clock = Clock()
    t0 = time.perf_counter()
    batch: list[asyncio.Future[bool]] = []
    for i in range(keys):
        kb = _key(i, prefixes).encode()
        partition = catalog.object_partition(bucket, kb)
        rec_key = catalog.object_record_key(bucket, kb)
        ts = clock.now()
        for dev in rings.meta.slots(partition):
            batch.append(asyncio.ensure_future(
                devices[dev.id].put_meta(partition, rec_key, ts, value)))
        if len(batch) >= 20_000:
            await asyncio.gather(*batch)
            batch.clear()
    await asyncio.gather(*batch)
    for dev in devices.values():
        await dev.close()
    pool.shutdown()
    return time.perf_counter() - t0


async def list_all(endpoint: str, cluster: Cluster, bucket: str, query: str) -> tuple[int, int]:
    """Follow continuation tokens; return (keys, pages)."""
    keys = pages = 0
    token = None
    async with aiohttp.ClientSession() as session:
        while True:
            q = f"list-type=2&{query}"
            if token:
                q += "&continuation-token=" + token
            url = f"{endpoint}/{bucket}?{q}"
            hdrs = sigv4.sign_request("GET", url, {}, cluster.key.access_key,
                                      cluster.key.secret_key, cluster.config.region,
                                      datetime.now(UTC))
            async with session.get(url, headers=hdrs) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:300]
            keys += len(_KEY.findall(body)) + body.count(b"<CommonPrefixes>")
            pages += 1
            m = _TOKEN.search(body)
            if not m:
                return keys, pages
            token = m.group(1).decode()


async def timed(coro):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = await coro
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--prefixes", type=int, default=1000)
    args = ap.parse_args()
    cluster = new_cluster()
    try:
        cluster.start()
        cluster.s3().create_bucket(Bucket="big")
        cluster.stop()
        load_s = asyncio.run(bulk_load(cluster, "big", args.keys, args.prefixes))
        print(f"bulk-loaded {args.keys} index records x 5 replicas in {load_s:.0f} s")
        cluster.start()
        ep = cluster.endpoint
        (n, pages), flat_s = asyncio.run(timed(list_all(ep, cluster, "big", "max-keys=1000")))
        assert n == args.keys, n
        print(f"flat listing: {n} keys in {pages} pages, {flat_s:.1f} s, {n / flat_s:,.0f} keys/s")
        for label, q in (("root delimiter page", "delimiter=/&max-keys=1000"),
                         ("one prefix, 1 page", "prefix=dataset-0007/&max-keys=1000")):
            best = float("inf")
            for _ in range(5):
                _, dt = asyncio.run(timed(_one_page(ep, cluster, q)))
                best = min(best, dt)
            print(f"{label}: best of 5 {best * 1000:.0f} ms")
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


async def _one_page(endpoint: str, cluster: Cluster, query: str) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"{endpoint}/big?list-type=2&{query}"
        hdrs = sigv4.sign_request("GET", url, {}, cluster.key.access_key,
                                  cluster.key.secret_key, cluster.config.region,
                                  datetime.now(UTC))
        async with session.get(url, headers=hdrs) as resp:
            await resp.read()
            assert resp.status == 200


if __name__ == "__main__":
    main()
