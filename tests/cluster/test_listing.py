"""Listings through S3 on a real cluster: compact node pages, digests, and the exact merge
when replicas disagree (gateway/list_replicas.py)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from gateway.catalog import Catalog
from gateway.hlc import Clock
from gateway.manifest import Manifest
from gateway.metastore import MetaStore
from ring.ringset import RingSet
from storage.client import NodeClient
from tests.cluster.harness import Cluster, gateway_gauges, running_cluster


def _all(s3: Any, **kw: Any) -> tuple[list[str], list[str]]:
    keys: list[str] = []
    prefixes: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(**kw):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    return keys, prefixes


def test_listing_equals_the_model_in_every_shape(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="shapes")
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rnd = random.Random(seed)
    keys = sorted({rnd.choice([f"f{rnd.randrange(6)}/x{rnd.randrange(20)}",
                               f"f{rnd.randrange(6)}/s/y{rnd.randrange(5)}",
                               f"k{rnd.randrange(60):02d}", "a", "a/b", "a/b/c"])
                   for _ in range(120)})
    for k in keys:
        s3.put_object(Bucket="shapes", Key=k, Body=b"x")
    for gone in rnd.sample(keys, 15):
        s3.delete_object(Bucket="shapes", Key=gone)
        keys.remove(gone)
    assert _all(s3, Bucket="shapes", PaginationConfig={"PageSize": 7}) == (keys, [])
    folders = sorted({k[: k.index("/") + 1] for k in keys if "/" in k})
    flat = [k for k in keys if "/" not in k]
    for size in (3, 1000):
        got = _all(s3, Bucket="shapes", Delimiter="/", PaginationConfig={"PageSize": size})
        assert got == (flat, folders)
    inside = _all(s3, Bucket="shapes", Prefix="f1/", Delimiter="/")
    assert inside == ([k for k in keys if k.startswith("f1/") and "/" not in k[3:]],
                      sorted({k[: 5] for k in keys if k.startswith("f1/s/")}))
    after = s3.list_objects_v2(Bucket="shapes", Delimiter="/", StartAfter="f2/x")
    assert [p["Prefix"] for p in after.get("CommonPrefixes", [])] == [
        f for f in folders if f > "f2/x"]
    v1 = s3.list_objects(Bucket="shapes", Marker="k10", MaxKeys=5)
    assert [o["Key"] for o in v1.get("Contents", [])] == [k for k in keys if k > "k10"][:5]
    # max-keys=0: an empty page that is not truncated, as AWS answers (nothing to continue).
    for zero in (s3.list_objects(Bucket="shapes", MaxKeys=0),
                 s3.list_objects_v2(Bucket="shapes", MaxKeys=0)):
        assert "Contents" not in zero and zero["IsTruncated"] is False


async def _write_on_some_replicas(cluster: Cluster, bucket_name: str,
                                  writes: dict[bytes, Manifest | None]) -> None:
    """Write records on the last 3 of the 5 replicas only: acknowledged (W = 3), yet the
    first replicas, which listings ask first, do not have them: their digests differ."""
    client = NodeClient()
    try:
        store = MetaStore(RingSet(cluster.config.rings_dir), client, Clock())
        catalog = Catalog(store, 0)
        bucket = await catalog.bucket(bucket_name)
        for key, manifest in writes.items():
            partition = catalog.object_partition(bucket, key)
            ts = store.clock.now()
            value = None if manifest is None else manifest.encode()
            for dev in store.replicas(partition)[-3:]:
                await client.put_meta(dev.addr, dev.id, partition,
                                      catalog.object_record_key(bucket, key), ts, value)
    finally:
        await client.close()


def test_replicas_that_disagree_are_merged_and_the_newest_wins(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="disagree")
    for k in ["k1", "k2", "k3", "gone/only", "dir/a", "dir/b"]:
        s3.put_object(Bucket="disagree", Key=k, Body=b"old")
    log = cluster.root / "gateway.log"
    merges_before = log.read_text(errors="replace").count("replicas of partition")
    newer = Manifest(3, '"newer"', 1, {}, {}, inline=b"new")
    asyncio.run(_write_on_some_replicas(cluster, "disagree", {
        b"k2": None, b"gone/only": None, b"dir/a": None, b"k3": newer, b"k4": newer}))
    flat = s3.list_objects_v2(Bucket="disagree")["Contents"]
    assert [o["Key"] for o in flat] == ["dir/b", "k1", "k3", "k4"]
    etags = {o["Key"]: o["ETag"] for o in flat}
    assert etags["k3"] == etags["k4"] == '"newer"' and etags["k1"] != '"newer"'
    rolled = s3.list_objects_v2(Bucket="disagree", Delimiter="/")
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["dir/"]
    assert [o["Key"] for o in rolled["Contents"]] == ["k1", "k3", "k4"]
    merges = log.read_text(errors="replace").count("replicas of partition") - merges_before
    assert merges > 0, "the digests should have differed and the merge run"


def test_a_page_listed_ahead_is_served_only_while_it_is_current() -> None:
    """A paging client's next page is listed while it reads the current one
    (gateway/list_ahead.py); a write acknowledged in between makes the gateway list it
    afresh, so the page still shows the write (list-after-write). On a cluster of its own:
    replicas that another test left disagreeing share partitions with this bucket's shards,
    and a partition whose replicas disagree is never served from read-ahead."""
    with running_cluster() as cluster:
        _read_ahead_scenario(cluster)


def _read_ahead_scenario(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="ahead")
    keys = [f"k{i:02d}" for i in range(0, 40, 2)]
    for k in keys:
        s3.put_object(Bucket="ahead", Key=k, Body=b"x")

    def page(token: str | None) -> tuple[list[str], str | None]:
        kw: dict[str, Any] = {"ContinuationToken": token} if token else {}
        got = s3.list_objects_v2(Bucket="ahead", MaxKeys=5, **kw)
        return [o["Key"] for o in got.get("Contents", [])], got.get("NextContinuationToken")

    before = gateway_gauges(cluster)
    first, token = page(None)           # max-keys=5, no token: nothing listed ahead
    second, token = page(token)         # a continuation: the third page is listed ahead
    assert first + second == keys[:10]
    time.sleep(0.5)
    third, token = page(token)          # nothing changed: served from read-ahead
    assert third == keys[10:15]
    served = gateway_gauges(cluster)["coffre_gateway_list_ahead_served"]
    assert served == before["coffre_gateway_list_ahead_served"] + 1
    time.sleep(0.5)                     # the fourth page is listed ahead by now
    s3.put_object(Bucket="ahead", Key="k31", Body=b"x")
    s3.delete_object(Bucket="ahead", Key="k34")
    fourth, token = page(token)
    assert fourth == ["k30", "k31", "k32", "k36", "k38"]
    after = gateway_gauges(cluster)
    assert after["coffre_gateway_list_ahead_served"] == served
    assert after["coffre_gateway_list_ahead_stale"] >= before["coffre_gateway_list_ahead_stale"] + 1
    assert token is None
