"""Listing at scale: a bucket of N keys (default 1,000,000), listed flat and by delimiter.

Writing a million objects through S3 would measure PUTs, not listings, and take hours on
this machine; so the index records are bulk-loaded straight into the devices while the
nodes are stopped: the same records, keys and replicas a gateway would write (gateway.catalog
decides where), written with the storage engine's own record and index functions — one
segment region and one LMDB transaction per batch instead of one group commit per record.
Then the cluster is started and listed through the S3 API with a lean signed client:

    .venv/bin/python -m bench.list_bench --keys 1000000 --prefixes 1000

--data DIR keeps the cluster's data in DIR: a later run with the same --data, --keys and
--prefixes starts the nodes on it again (on the ports it was created with) instead of loading
a million keys anew (~6 min), so that before/after runs list the same bytes.

Prints keys/s for a full flat listing (1000-key pages; best of --repeat), and the latency
of a delimiter listing at the root (one page of common prefixes) and inside one prefix.
--spy FILE (--spy-node FILE) records the gateway (node0) with py-spy during the flat
listings (an SVG flame graph, or collapsed stacks when FILE ends in .txt).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import aiohttp

from gateway import config as config_mod
from gateway import sigv4_client
from gateway.catalog import Catalog
from gateway.hlc import Clock
from gateway.manifest import BucketRecord, Manifest
from gateway.metastore import MetaStore
from gateway.up import prepare, process_specs
from ring.ringset import RingSet
from storage import limits, wire
from storage.index import Index, Location, MetaEntry, PutMeta
from storage.kv import LmdbStore
from storage.record import RecordFlag, RecordHead, RecordKind, encode_record
from storage.segments import SegmentStore
from tests.cluster.harness import Cluster, new_cluster

_KEY = re.compile(rb"<Key>")
_TOKEN = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")
_BATCH_RECORDS = 20_000
T = TypeVar("T")


def _key(i: int, prefixes: int) -> str:
    return f"dataset-{i % prefixes:04d}/part-{i:08d}.parquet"


def _device_dirs(cluster: Cluster, rings: RingSet) -> dict[int, Path]:
    return {d.id: cluster.root / "nodes" / d.domain.split("/")[2] / d.domain.split("/")[3]
            for d in rings.meta.devices}


def _bucket(dirs: dict[int, Path], rings: RingSet, catalog: Catalog, name: str) -> BucketRecord:
    """The bucket record, read from a device's index (the nodes are stopped)."""
    part = catalog._bucket_partition
    holder = rings.meta.slots(part)[0]
    index = Index(LmdbStore(dirs[holder.id] / "index.lmdb"))
    try:
        entry = index.get_meta(part, b"B" + name.encode())
    finally:
        index.close()
    assert entry is not None and entry.value is not None
    return BucketRecord.decode(entry.value)


def _load_device(rings_dir: Path, path: Path, dev_id: int, bucket_raw: bytes, keys: int,
                 prefixes: int, ts0: int) -> int:
    """Write this device's share of the index records (runs in a worker process)."""
    rings = RingSet(rings_dir)
    catalog = Catalog(MetaStore(rings, None, Clock()), 0)   # type: ignore[arg-type]
    bucket = BucketRecord.decode(bucket_raw)
    value = Manifest(1, '"c4ca4238a0b923820dcc509a6f75849b"', int(time.time() * 1000),
                     {"Content-Type": "application/octet-stream"}, {}, inline=b"1").encode()
    segments = SegmentStore(path / "segments")
    segments.open()
    index = Index(LmdbStore(path / "index.lmdb"))
    written = 0
    batch: list[tuple[int, bytes, int]] = []
    for i in range(keys):
        kb = _key(i, prefixes).encode()
        partition = catalog.object_partition(bucket, kb)
        # Every replica of a record has the same stamp, as when a gateway writes it: the
        # next logical tick of one HLC reading per key.
        ts = ts0 + (i << 32)
        if any(d.id == dev_id for d in rings.meta.slots(partition)):
            batch.append((partition, catalog.object_record_key(bucket, kb), ts))
        if len(batch) >= _BATCH_RECORDS or (i == keys - 1 and batch):
            written += _write_batch(segments, index, batch, value)
            batch.clear()
    index.close()
    segments.close()
    return written


def _write_batch(segments: SegmentStore, index: Index, batch: list[tuple[int, bytes, int]],
                 value: bytes) -> int:
    """One segment region and one LMDB transaction for the whole batch."""
    heads = [RecordHead(RecordKind.META, RecordFlag.NONE, p, k, ts, len(value),
                        limits.chunk_size_bytes) for p, k, ts in batch]
    blobs = [encode_record(h, value) for h in heads]
    blob = b"".join(blobs)
    f, base = segments.reserve(len(blob), blob)
    segments.sync({f.id})
    segments.done_writing(f)
    ops: list[PutMeta] = []
    offset = base
    for h, b in zip(heads, blobs, strict=True):
        loc = Location(f.id, offset, h.head_bytes, len(value), h.chunk_size, len(b))
        ops.append(PutMeta(MetaEntry(h.partition, h.key, h.ts, value, loc)))
        offset += len(b)
    index.apply(ops)
    return len(ops)


def bulk_load(cluster: Cluster, bucket_name: str, keys: int, prefixes: int) -> tuple[float, int]:
    rings = RingSet(cluster.config.rings_dir)
    catalog = Catalog(MetaStore(rings, None, Clock()), 0)    # type: ignore[arg-type]
    dirs = _device_dirs(cluster, rings)
    bucket = _bucket(dirs, rings, catalog, bucket_name)
    t0, ts0 = time.perf_counter(), Clock().now()
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        jobs = [pool.submit(_load_device, cluster.config.rings_dir, p, d, bucket.encode(),
                            keys, prefixes, ts0) for d, p in dirs.items()]
        written = sum(j.result() for j in jobs)
    return time.perf_counter() - t0, written


def _signed(endpoint: str, cluster: Cluster, bucket: str, query: str) -> tuple[str, dict[str,
                                                                                       str]]:
    url = f"{endpoint}/{bucket}?{query}"
    return url, sigv4_client.sign_request("GET", url, {}, cluster.key.access_key,
                                          cluster.key.secret_key, cluster.config.region,
                                          datetime.now(UTC))


_KEY_TEXT = re.compile(rb"<Key>([^<]*)</Key>")


async def list_all(endpoint: str, cluster: Cluster, bucket: str, query: str) -> tuple[int, int]:
    """Follow continuation tokens; return (keys and prefixes, pages). Checks that the keys
    come out in order, each once (a wrong listing must not look like a fast one)."""
    keys = pages = 0
    token = None
    last = b""
    async with aiohttp.ClientSession() as session:
        while True:
            q = f"list-type=2&{query}" + (f"&continuation-token={token}" if token else "")
            url, hdrs = _signed(endpoint, cluster, bucket, q)
            async with session.get(url, headers=hdrs) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:300]
            keys += len(_KEY.findall(body)) + body.count(b"<CommonPrefixes>")
            for key in _KEY_TEXT.findall(body):
                if key <= last:
                    print(f"OUT OF ORDER on page {pages}: {key!r} after {last!r}")
                last = key
            pages += 1
            m = _TOKEN.search(body)
            if not m:
                return keys, pages
            token = m.group(1).decode()


async def one_page(endpoint: str, cluster: Cluster, bucket: str, query: str) -> int:
    async with aiohttp.ClientSession() as session:
        url, hdrs = _signed(endpoint, cluster, bucket, f"list-type=2&{query}")
        async with session.get(url, headers=hdrs) as resp:
            body = await resp.read()
            assert resp.status == 200
    return len(_KEY.findall(body)) + body.count(b"<CommonPrefixes>")


async def timed(aw: Awaitable[T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    out = await aw
    return out, time.perf_counter() - t0


def _spy(cluster: Cluster, out: str | None, name: str) -> subprocess.Popen[bytes] | None:
    if not out:
        return None
    pid = cluster.procs[name].pid
    spy = Path(sys.executable).with_name("py-spy")
    fmt = "raw" if out.endswith(".txt") else "flamegraph"     # raw: collapsed stacks
    return subprocess.Popen([str(spy), "record", "-o", out, "-f", fmt, "--pid", str(pid),
                             "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_s(cluster: Cluster) -> dict[str, float]:
    """CPU seconds (user + system) each cluster process used so far: on a machine shared
    with other work, CPU per key is steadier than keys per second."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, proc in cluster.procs.items():
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        out[name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _idle_nodes_cpu(cluster: Cluster, seconds: float) -> float:
    """CPU s/s the nodes spend on their own (rebalancer pass, scrubber) with no request."""
    before = cpu_s(cluster)
    time.sleep(seconds)
    after = cpu_s(cluster)
    return sum(after[k] - before[k] for k in after if k != "gateway") / seconds


def pause_rebalancers(cluster: Cluster) -> None:
    """Pause each node's rebalancer: its metadata pass pulls every record of every replica
    into the node's event loop (minutes at a million keys, while listings wait behind it),
    which is not what this bench measures."""
    for name in cluster.node_names():
        url = f"http://127.0.0.1:{cluster.specs[name].port}{wire.REBALANCE_PATH}/pause"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30):
            pass


def _settle(cluster: Cluster, quiet: float = 0.2, wait_s: float = 120.0) -> float:
    """Wait until the nodes' start-up work (the rebalancer's first pass over every record)
    is over, so that it is not counted as listing work; return the last idle rate."""
    deadline = time.monotonic() + wait_s
    while True:
        idle = _idle_nodes_cpu(cluster, 2.0)
        if idle < quiet or time.monotonic() > deadline:
            return idle


def measure(cluster: Cluster, keys: int, repeat: int, spy_out: str | None,
            spy_node: str | None) -> None:
    ep = cluster.endpoint
    spies = [_spy(cluster, spy_out, "gateway"), _spy(cluster, spy_node, "node0")]
    rates = []
    idle = _settle(cluster)
    print(f"nodes' background work before listing: {idle:.3f} CPU s/s", flush=True)
    for _ in range(repeat):
        before = cpu_s(cluster)
        (n, pages), flat_s = asyncio.run(timed(list_all(ep, cluster, "big", "max-keys=1000")))
        after = cpu_s(cluster)
        if n != keys:
            print(f"WRONG COUNT: {n} listed, {keys} stored")
        rates.append(n / flat_s)
        gw = after["gateway"] - before["gateway"]
        nodes = sum(after[k] - before[k] for k in after if k != "gateway")
        print(f"flat listing: {n} keys in {pages} pages, {flat_s:.2f} s, "
              f"{n / flat_s:,.0f} keys/s; CPU per key: gateway {gw / n * 1e6:.1f} us, "
              f"nodes {nodes / n * 1e6:.1f} us", flush=True)
    for spy in spies:
        if spy is not None:
            spy.send_signal(2)
            spy.wait()
    print(f"flat listing best of {repeat}: {max(rates):,.0f} keys/s, "
          f"median {statistics.median(rates):,.0f} keys/s")
    for label, q in (("root delimiter page", "delimiter=/&max-keys=1000"),
                     ("one prefix, 1 page", "prefix=dataset-0007/&max-keys=1000")):
        times, rows = [], 0
        before = cpu_s(cluster)
        for _ in range(7):
            rows, dt = asyncio.run(timed(one_page(ep, cluster, "big", q)))
            times.append(dt)
        after = cpu_s(cluster)
        gw = (after["gateway"] - before["gateway"]) / 7
        nodes = sum(after[k] - before[k] for k in after if k != "gateway") / 7
        times.sort()
        print(f"{label} ({rows} rows): best {times[0] * 1000:.0f} ms, "
              f"median of 7 {times[3] * 1000:.0f} ms; CPU per page: gateway "
              f"{gw * 1000:.0f} ms, nodes {nodes * 1000:.0f} ms")
    # The scrubber's first pass starts a minute after the nodes: by now it runs.
    print(f"nodes' background work after listing: {_idle_nodes_cpu(cluster, 10.0):.3f} "
          "CPU s/s", flush=True)


class _ReusedCluster(Cluster):
    """A cluster whose data dir and config (ports included: the rings name them) exist."""

    def __post_init__(self) -> None:
        self.config = config_mod.load(self.config_path, str(self.root))
        self.key = prepare(self.config)
        self.specs = {s.name: s for s in process_specs(self.config, str(self.config_path))}
        self.endpoint = f"http://{self.config.listen}"


def _loaded_mark(root: Path, keys: int, prefixes: int) -> Path:
    return root / f"bench-loaded-{keys}-{prefixes}"


def _cluster_with_data(data: str | None, keys: int, prefixes: int) -> tuple[Cluster, bool]:
    """The cluster to measure and whether its bucket is loaded already (a reused --data)."""
    if data is None:
        return new_cluster(), False
    root = Path(data).resolve()
    if _loaded_mark(root, keys, prefixes).exists():
        return _ReusedCluster(root, root / "cluster.toml"), True
    if root.exists() and any(root.iterdir()):
        raise SystemExit(f"{root} holds something else than a bucket of {keys} keys in "
                         f"{prefixes} prefixes: give an empty or a new directory")
    root.mkdir(parents=True, exist_ok=True)
    os.environ.pop("COFFRE_DATA", None)
    return Cluster(root, root / "cluster.toml"), False


def _load(cluster: Cluster, keys: int, prefixes: int) -> None:
    cluster.start()
    cluster.s3().create_bucket(Bucket="big")
    cluster.stop()
    load_s, written = bulk_load(cluster, "big", keys, prefixes)
    print(f"bulk-loaded {keys} keys ({written} index records with their replicas) "
          f"in {load_s:.1f} s", flush=True)
    _loaded_mark(cluster.root, keys, prefixes).touch()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--prefixes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="flat listings (best is kept)")
    ap.add_argument("--spy", help="py-spy flame graph of the gateway during flat listings")
    ap.add_argument("--spy-node", help="the same for node0")
    ap.add_argument("--rebalance", action="store_true",
                    help="leave the nodes' rebalancers running (paused by default)")
    ap.add_argument("--data", help="keep the loaded cluster in this dir and reuse it later")
    args = ap.parse_args()
    cluster, loaded = _cluster_with_data(args.data, args.keys, args.prefixes)
    try:
        if not loaded:
            _load(cluster, args.keys, args.prefixes)
        cluster.start()
        if not args.rebalance:
            pause_rebalancers(cluster)
        measure(cluster, args.keys, args.repeat, args.spy, args.spy_node)
        log = (cluster.root / "gateway.log").read_text(errors="replace")
        print(f"shard pages merged from replicas (digests differed): "
              f"{log.count('replicas of partition')}")
    finally:
        cluster.stop()
        if args.data is None:
            shutil.rmtree(cluster.root, ignore_errors=True)


if __name__ == "__main__":
    main()
