"""Orphan collection against real processes: leave orphans the ways a cluster does (a node
down while objects are overwritten, deleted and uploads aborted; a gateway SIGKILLed
mid-PUT; fragments whose manifest never committed), then after the grace every fragment on
every device belongs to a data id that a committed record references, every such data id
has all k+m fragments, in-progress uploads keep their parts, and every object reads back."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import xxhash

from gateway.manifest import BucketRecord, Manifest
from gateway.uploads import Part
from ring.ringset import RingSet
from storage import dataid
from storage.client import NodeClient
from tests.cluster import rebalance_helpers as rh
from tests.cluster.harness import Cluster, new_cluster

MiB = 1024 * 1024


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    # Nodes inherit the environment: a grace of seconds instead of an hour.
    monkeypatch.setenv("COFFRE_ORPHAN_GRACE_S", "4")
    monkeypatch.setenv("COFFRE_ORPHAN_CONFIRM_S", "1")
    monkeypatch.setenv("COFFRE_ORPHAN_INTERVAL_S", "1")
    c = new_cluster()
    c.start()
    yield c
    c.stop()
    if not os.environ.get("COFFRE_KEEP"):
        shutil.rmtree(c.root, ignore_errors=True)


async def _records(cluster: Cluster) -> dict[bytes, bytes]:
    """Every live metadata record (newest of every replica): key -> value."""
    ring = RingSet(cluster.config.rings_dir).meta
    newest: dict[bytes, tuple[int, bytes | None]] = {}
    client = NodeClient(transport="http")
    try:
        for p in range(ring.partitions):
            for dev in ring.slots(p):
                for r in await client.list_meta(dev.addr, dev.id, p, b"", None, None, 10_000):
                    if r.ts > newest.get(r.key, (-1, None))[0]:
                        newest[r.key] = (r.ts, r.value)
    finally:
        await client.close()
    return {k: v for k, (_, v) in newest.items() if v is not None}


def referenced(records: dict[bytes, bytes]) -> set[bytes]:
    """Data ids named by object manifests and multipart part records."""
    out: set[bytes] = set()
    for key, value in records.items():
        if key[:1] == b"O":
            out.update(ref.data_id for ref in Manifest.decode(value).parts)
        elif key[:1] == b"P":
            part = Part.decode(value)
            if part.data is not None:
                out.add(part.data.data_id)
    return out


async def _fragments(cluster: Cluster) -> dict[bytes, set[int]]:
    """data id -> fragment indexes held on any device of the data ring."""
    ring = RingSet(cluster.config.rings_dir).data(6)
    out: dict[bytes, set[int]] = defaultdict(set)
    client = NodeClient(transport="http")
    try:
        for p in range(ring.partitions):
            for dev in ring.devices:
                for key, _ in await client.list_fragments(dev.addr, dev.id, p, b"", 10_000):
                    out[key[:-1]].add(key[-1])
    finally:
        await client.close()
    return dict(out)


async def _plant(cluster: Cluster, did: bytes, indexes: range) -> None:
    """Fragments written as a gateway does, whose manifest never commits."""
    ring = RingSet(cluster.config.rings_dir).data(6)
    part = ring.partition_of(did)
    client = NodeClient(transport="http")
    body = os.urandom(5000)

    async def one() -> AsyncIterator[bytes]:
        yield body

    try:
        for i in indexes:
            dev = ring.slots(part)[i]
            await client.put_fragment(dev.addr, dev.id, part, did + bytes([i]), len(body), one())
    finally:
        await client.close()


def _home(records: dict[bytes, bytes], bucket: str, key: bytes) -> bytes:
    """The home partition name the gateway gives `key`'s data (Catalog.object_home)."""
    rec = BucketRecord.decode(records[b"B" + bucket.encode()])
    shard = xxhash.xxh3_64_intdigest(key) % rec.shards
    return b"coffre:index:" + rec.bucket_id + shard.to_bytes(4)


def _multipart(s3: Any, key: str, parts: list[bytes]) -> tuple[str, list[dict[str, Any]]]:
    up = s3.create_multipart_upload(Bucket="orph", Key=key)["UploadId"]
    done = [{"PartNumber": i + 1, "ETag": s3.upload_part(
        Bucket="orph", Key=key, UploadId=up, PartNumber=i + 1, Body=b)["ETag"]}
        for i, b in enumerate(parts)]
    return up, done


def _kill_gateway_mid_put(cluster: Cluster, size: int) -> None:
    s3 = cluster.s3()
    body = os.urandom(size)

    def put() -> None:
        try:
            s3.put_object(Bucket="orph", Key="interrupted", Body=body)
        except Exception:  # the gateway dies under it: expected
            pass

    t = threading.Thread(target=put, daemon=True)
    t.start()
    time.sleep(0.6)
    cluster.kill("gateway")
    t.join(30)
    cluster.start("gateway")


def test_orphans_collected_live_data_kept(cluster: Cluster) -> None:
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    s3 = cluster.s3()
    s3.create_bucket(Bucket="orph")
    bodies = {f"k{i}": rng.randbytes(rng.randrange(100_000, 900_000)) for i in range(8)}
    for key, body in bodies.items():
        s3.put_object(Bucket="orph", Key=key, Body=body)
    five = [rng.randbytes(5 * MiB), rng.randbytes(300_000)]
    kept_up, kept_parts = _multipart(s3, "in-progress", five)  # never completed: kept
    abort_up, _ = _multipart(s3, "aborted", [rng.randbytes(400_000)])
    done_up, done_parts = _multipart(s3, "completed", [five[0], rng.randbytes(200_000),
                                                       five[1]])

    first = referenced(asyncio.run(_records(cluster)))
    cluster.kill("node3")  # the gateway's clean-up cannot reach it: its copies are orphans
    for key in ("k0", "k1", "k2"):
        bodies[key] = rng.randbytes(500_000)
        s3.put_object(Bucket="orph", Key=key, Body=bodies[key])
    for key in ("k3", "k4"):
        s3.delete_object(Bucket="orph", Key=key)
        del bodies[key]
    s3.abort_multipart_upload(Bucket="orph", Key="aborted", UploadId=abort_up)
    s3.complete_multipart_upload(  # part 2 is left out: its data is an orphan
        Bucket="orph", Key="completed", UploadId=done_up,
        MultipartUpload={"Parts": [done_parts[0], done_parts[2]]})
    bodies["completed"] = five[0] + five[1]
    cluster.start("node3")
    _kill_gateway_mid_put(cluster, 40 * MiB)
    s3 = cluster.s3()

    records = asyncio.run(_records(cluster))
    home = _home(records, "orph", b"k5")
    now_ms = int(time.time() * 1000)
    planted = [dataid.new_data_id(4, 2, home, now_ms) for _ in range(2)]
    asyncio.run(_plant(cluster, planted[0], range(6)))  # all six, nothing references them
    asyncio.run(_plant(cluster, planted[1], range(3)))  # a write that never reached quorum
    legacy = os.urandom(16)  # an id of earlier releases: never collected
    asyncio.run(_plant(cluster, legacy, range(6)))
    before = asyncio.run(_fragments(cluster))
    assert all(d in before for d in planted)

    deadline = time.monotonic() + 90
    while True:
        records = asyncio.run(_records(cluster))
        live = referenced(records)
        held = asyncio.run(_fragments(cluster))
        extra = set(held) - live - {legacy}
        short = {d.hex(): sorted(held.get(d, ())) for d in live if held.get(d) != set(range(6))}
        if not extra and not short:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(extra)} orphans left, incomplete: {short}")
        time.sleep(1)
    assert held[legacy] == set(range(6))
    dropped = first - live  # 3 overwritten, 2 deleted, 1 aborted part, 1 part left out
    assert len(dropped) == 7 and not dropped & set(held)

    for key, body in bodies.items():
        got = s3.get_object(Bucket="orph", Key=key)["Body"].read()
        assert hashlib.md5(got).digest() == hashlib.md5(body).digest(), key
    s3.complete_multipart_upload(Bucket="orph", Key="in-progress", UploadId=kept_up,
                                 MultipartUpload={"Parts": kept_parts})
    assert s3.get_object(Bucket="orph", Key="in-progress")["Body"].read() == b"".join(five)

    doc = rh.status(cluster)
    print(f"orphans: {len(dropped) + len(planted)} data ids, {doc['orphans_collected']} "
          f"fragments, {doc['orphan_bytes_collected']} bytes collected")
    # node3's copy of each dropped id, and every planted fragment
    assert doc["orphans_collected"] >= len(dropped) + 6 + 3
    node = next(iter(doc["nodes"]))
    text = urllib.request.urlopen(f"http://{node}/metrics", timeout=10).read().decode()
    assert "coffre_rebalance_orphans_collected" in text
