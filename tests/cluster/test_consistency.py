"""Read-after-write and list-after-write across two gateways, with a node killed and
restarted in the middle; and a stateful model test of S3's semantics (hypothesis)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import os
import random
import threading
import time

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from gateway.catalog import Catalog
from gateway.hlc import Clock
from gateway.manifest import Manifest
from gateway.metastore import MetaStore
from ring.ringset import RingSet
from storage.client import NodeClient
from tests.cluster.harness import Cluster

ROUNDS = int(os.environ.get("COFFRE_CONSISTENCY_ROUNDS", "150"))


@pytest.fixture(scope="module")
def two(cluster: Cluster):  # type: ignore[no-untyped-def]
    endpoint = cluster.add_gateway("gateway2")
    cluster.start("gateway2")
    return cluster.s3(), cluster.client_for(endpoint)


def test_write_one_gateway_read_other(cluster: Cluster, two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    a.create_bucket(Bucket="consistent")
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rnd = random.Random(seed)
    model: dict[str, bytes] = {}
    victim = rnd.choice(cluster.node_names())
    for i in range(ROUNDS):
        if i == ROUNDS // 3:
            cluster.kill(victim)
        if i == 2 * ROUNDS // 3:
            cluster.start(victim)
        writer, reader = (a, b) if i % 2 == 0 else (b, a)
        key = f"k{rnd.randrange(40):02d}"
        action = rnd.random()
        if action < 0.75:
            body = rnd.randbytes(rnd.choice([0, 10, 5000, 70_000, 300_000]))
            writer.put_object(Bucket="consistent", Key=key, Body=body)
            model[key] = body
            assert reader.get_object(Bucket="consistent", Key=key)["Body"].read() == body
        else:
            writer.delete_object(Bucket="consistent", Key=key)
            model.pop(key, None)
            with pytest.raises(ClientError) as exc:
                reader.head_object(Bucket="consistent", Key=key)
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        listed = reader.list_objects_v2(Bucket="consistent").get("Contents", [])
        assert [o["Key"] for o in listed] == sorted(model), f"round {i}"
    if victim not in cluster.procs:
        cluster.start(victim)


def test_paged_listing_sees_writes_made_between_its_pages(cluster: Cluster, two) -> None:  # type: ignore[no-untyped-def]
    """A reader pages through a bucket while the other gateway writes and deletes keys past
    the reader's position: every later page shows them (the reader's gateway lists pages
    ahead, gateway/list_ahead.py, and must not serve one listed before the write)."""
    a, b = two
    a.create_bucket(Bucket="paged")
    seed = random.randrange(1 << 30)
    print("seed", seed)
    rnd = random.Random(seed)
    model = {f"p{i:03d}" for i in range(0, 120, 3)}
    for key in model:
        a.put_object(Bucket="paged", Key=key, Body=b"x")
    for _ in range(max(8, ROUNDS // 10)):
        writer, reader = (a, b) if rnd.random() < 0.5 else (b, a)
        got: list[str] = []
        token = None
        for page_no in range(100):
            kw: dict[str, str] = {"ContinuationToken": token} if token else {}
            page = reader.list_objects_v2(Bucket="paged", MaxKeys=6, **kw)
            got += [o["Key"] for o in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if token is None:
                break
            if page_no >= 1:        # the page after the next is being listed ahead now
                key = f"p{rnd.randrange(120):03d}"
                if key > got[-1]:
                    if key in model and rnd.random() < 0.5:
                        writer.delete_object(Bucket="paged", Key=key)
                        model.discard(key)
                    else:
                        writer.put_object(Bucket="paged", Key=key, Body=b"y")
                        model.add(key)
        assert got == sorted(model)


async def _replica_records(cluster: Cluster, bucket_name: str, key: str
                           ) -> list[tuple[int, bytes | None] | None]:
    """(ts, value) of an object's record on each of its metadata replicas, read directly."""
    client = NodeClient()
    try:
        store = MetaStore(RingSet(cluster.config.rings_dir), client, Clock())
        catalog = Catalog(store, 0)
        bucket = await catalog.bucket(bucket_name)
        partition = catalog.object_partition(bucket, key.encode())
        record_key = catalog.object_record_key(bucket, key.encode())
        out: list[tuple[int, bytes | None] | None] = []
        for dev in store.replicas(partition):
            rec = await client.get_meta(dev.addr, dev.id, partition, record_key)
            out.append(None if rec is None else (rec.ts, rec.value))
        return out
    finally:
        await client.close()


def _agreed_record(cluster: Cluster, bucket: str, key: str) -> bytes:
    """The one record every replica ends up holding (the writes to the slowest replicas
    may still be landing when the PUTs are answered: waited for, a few seconds at most)."""
    deadline = time.monotonic() + 5.0
    while True:
        records = asyncio.run(_replica_records(cluster, bucket, key))
        first = records[0]
        if first is not None and records.count(first) == len(records):
            assert first[1] is not None, "the winner is a tombstone"
            return first[1]
        assert time.monotonic() < deadline, f"replicas never agreed: {records}"
        time.sleep(0.1)


def _put_at(start: threading.Barrier, s3, bucket: str, key: str, body: bytes) -> None:  # type: ignore[no-untyped-def]
    start.wait()                # both writers leave together
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_concurrent_writers_of_one_key_end_with_one_winner(cluster: Cluster, two) -> None:  # type: ignore[no-untyped-def]
    """Two gateways PUT the same key at the same instant: every replica ends with the same
    record, both gateways serve the same body, and that body is one writer's, whole (its
    manifest never points at the other's data)."""
    a, b = two
    a.create_bucket(Bucket="racing")
    rnd = random.Random(7)
    winners = set()
    for i in range(24):
        size = rnd.choice([10, 70_000, 300_000, 1_100_000])   # inline and erasure-coded
        bodies = [rnd.randbytes(size), rnd.randbytes(size)]
        start = threading.Barrier(2)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            puts = [pool.submit(_put_at, start, gw, "racing", "k", body)
                    for gw, body in zip((a, b), bodies, strict=True)]
            for put in puts:
                put.result()        # both PUTs acknowledged (a failure fails the test)
        got_a = a.get_object(Bucket="racing", Key="k")["Body"].read()
        got_b = b.get_object(Bucket="racing", Key="k")["Body"].read()
        assert got_a == got_b, f"round {i}: the gateways serve different versions"
        assert got_a in bodies, f"round {i}: a body neither writer sent"
        manifest = Manifest.decode(_agreed_record(cluster, "racing", "k"))
        assert manifest.etag == f'"{hashlib.md5(got_a).hexdigest()}"', f"round {i}"
        winners.add(bodies.index(got_a))
    print("winners seen", winners)


def test_deleted_bucket_not_served_long(cluster: Cluster, two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    a.create_bucket(Bucket="short-lived")
    b.head_bucket(Bucket="short-lived")      # gateway 2 caches the bucket record
    a.delete_bucket(Bucket="short-lived")
    time.sleep(cluster.config.bucket_cache_s + 0.5)
    with pytest.raises(ClientError) as exc:
        b.head_bucket(Bucket="short-lived")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


class S3Model(RuleBasedStateMachine):
    """Random put/overwrite/delete/list/multipart sequences against a real cluster, checked
    against a dict of what S3 would hold."""

    client: object = None
    bucket = "stateful"

    def __init__(self) -> None:
        super().__init__()
        self.s3 = type(self).client
        self.model: dict[str, bytes] = {}
        for obj in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", []):  # type: ignore[attr-defined]
            self.s3.delete_object(Bucket=self.bucket, Key=obj["Key"])  # type: ignore[attr-defined]

    keys = st.sampled_from(["a", "a/b", "a/b/c", "b", "d/e", "d/f", "z" * 300])
    bodies = st.sampled_from([0, 1, 4096, 65_536, 65_537, 1_048_577]).flatmap(
        lambda n: st.binary(min_size=n, max_size=n) if n < 10 else st.just(os.urandom(n)))

    @rule(key=keys, body=bodies)
    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)  # type: ignore[attr-defined]
        self.model[key] = body

    @rule(key=keys)
    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=key)  # type: ignore[attr-defined]
        self.model.pop(key, None)

    @rule(key=keys, tail=st.binary(min_size=0, max_size=100))
    def multipart(self, key: str, tail: bytes) -> None:
        s3 = self.s3
        uid = s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]  # type: ignore[attr-defined]
        first = os.urandom(5 * 1024 * 1024)
        e1 = s3.upload_part(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=1,  # type: ignore[attr-defined]
                            Body=first)["ETag"]
        e2 = s3.upload_part(Bucket=self.bucket, Key=key, UploadId=uid, PartNumber=2,  # type: ignore[attr-defined]
                            Body=tail)["ETag"]
        s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=uid,  # type: ignore[attr-defined]
                                     MultipartUpload={"Parts": [
                                         {"PartNumber": 1, "ETag": e1},
                                         {"PartNumber": 2, "ETag": e2}]})
        self.model[key] = first + tail

    @rule(key=keys)
    def get(self, key: str) -> None:
        if key in self.model:
            got = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
            assert got == self.model[key]
        else:
            with pytest.raises(ClientError):
                self.s3.get_object(Bucket=self.bucket, Key=key)  # type: ignore[attr-defined]

    @invariant()
    def listing_matches(self) -> None:
        got = self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])  # type: ignore[attr-defined]
        assert [(o["Key"], o["Size"]) for o in got] == [
            (k, len(v)) for k, v in sorted(self.model.items())]
        top = self.s3.list_objects_v2(Bucket=self.bucket, Delimiter="/")  # type: ignore[attr-defined]
        want_keys = sorted(k for k in self.model if "/" not in k)
        want_prefixes = sorted({k.split("/")[0] + "/" for k in self.model if "/" in k})
        assert [o["Key"] for o in top.get("Contents", [])] == want_keys
        assert [p["Prefix"] for p in top.get("CommonPrefixes", [])] == want_prefixes


def test_stateful_model(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket=S3Model.bucket)
    S3Model.client = s3
    run_state_machine_as_test(S3Model, settings=settings(
        max_examples=8, stateful_step_count=12, deadline=None,
        suppress_health_check=list(HealthCheck)))


def _usage(s3, bucket: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    hdrs = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    return int(hdrs["x-coffre-object-count"]), int(hdrs["x-coffre-bytes-used"])


def test_bucket_counters_exact_across_gateways(cluster: Cluster, two) -> None:  # type: ignore[no-untyped-def]
    a, b = two
    a.create_bucket(Bucket="counted")
    rnd = random.Random(11)
    model: dict[str, int] = {}
    for i in range(60):
        gw = a if i % 2 else b
        key = f"k{rnd.randrange(20)}"
        if rnd.random() < 0.7:
            size = rnd.choice([0, 10, 70_000, 200_000])
            gw.put_object(Bucket="counted", Key=key, Body=b"x" * size)
            model[key] = size
        else:
            gw.delete_object(Bucket="counted", Key=key)
            model.pop(key, None)
    want = (len(model), sum(model.values()))
    # Each gateway reads its own counts at once and the other's once its usage journal
    # was flushed (usage_flush_s, 1 s): exact within a few flushes.
    assert _usage_settles(a, "counted", want) == want
    # A gateway killed with SIGKILL keeps its acknowledged counts: durable in its journal
    # before the ack, and written to the store by the survivor or by its own restart.
    cluster.kill("gateway2")
    cluster.start("gateway2")
    assert _usage_settles(b, "counted", want) == want


def _usage_settles(s3, bucket: str, want: tuple[int, int]) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 15
    while (got := _usage(s3, bucket)) != want and time.monotonic() < deadline:
        time.sleep(0.3)
    return got
