"""The walking skeleton against real processes: round trips, listing, auth, restarts, a
killed node, and where the fragments land on disk."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

MIB = 1024 * 1024


def _body(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _code(exc: ClientError) -> str:
    return str(exc.response["Error"]["Code"])


@pytest.fixture(scope="module")
def s3(cluster: Cluster):  # type: ignore[no-untyped-def]
    client = cluster.s3()
    client.create_bucket(Bucket="skeleton")
    return client


@pytest.mark.parametrize("size", [0, 1024, 10 * MIB, 100 * MIB])
def test_round_trip(s3, size: int) -> None:  # type: ignore[no-untyped-def]
    body = _body(size, size)
    s3.put_object(Bucket="skeleton", Key=f"obj-{size}", Body=body)
    got = s3.get_object(Bucket="skeleton", Key=f"obj-{size}")
    data = got["Body"].read()
    assert len(data) == size
    assert hashlib.sha256(data).digest() == hashlib.sha256(body).digest()
    assert got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    head = s3.head_object(Bucket="skeleton", Key=f"obj-{size}")
    assert head["ContentLength"] == size


def test_ranges(s3) -> None:  # type: ignore[no-untyped-def]
    body = _body(3 * MIB + 17, 7)
    s3.put_object(Bucket="skeleton", Key="ranged", Body=body)
    for rng, want in [("bytes=0-0", body[:1]), ("bytes=100-2000000", body[100:2000001]),
                      ("bytes=-5", body[-5:]), ("bytes=3145000-", body[3145000:])]:
        got = s3.get_object(Bucket="skeleton", Key="ranged", Range=rng)
        assert got["Body"].read() == want, rng
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="skeleton", Key="ranged", Range=f"bytes={len(body)}-")
    assert _code(exc.value) == "InvalidRange"


def test_listing_with_delimiter(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="listing")
    keys = ["a", "a/b", "a/b/c", "b/1", "b/2", "c"]
    for k in keys:
        s3.put_object(Bucket="listing", Key=k, Body=k.encode())
    flat = s3.list_objects_v2(Bucket="listing")
    assert [o["Key"] for o in flat["Contents"]] == keys
    top = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a", "c"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "b/"]
    under = s3.list_objects_v2(Bucket="listing", Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in under["Contents"]] == ["a/b"]
    assert [p["Prefix"] for p in under["CommonPrefixes"]] == ["a/b/"]
    seen: list[str] = []
    kwargs: dict[str, object] = {"Bucket": "listing", "MaxKeys": 2}
    while True:
        page = s3.list_objects_v2(**kwargs)
        seen += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = page["NextContinuationToken"]
    assert seen == keys
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="listing")
    assert _code(exc.value) == "BucketNotEmpty"


def test_errors(cluster: Cluster) -> None:
    s3 = cluster.s3()
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="no-such-bucket", Key="x")
    assert _code(exc.value) == "NoSuchBucket"
    s3.create_bucket(Bucket="errors")
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="errors", Key="missing")
    assert _code(exc.value) == "NoSuchKey"
    s3.put_object(Bucket="errors", Key="kept", Body=b"k")
    s3.put_bucket_acl(Bucket="errors", ACL="public-read")
    # AWS's legacy answer in us-east-1 (this cluster's region): 200, the ACL reset, the
    # objects kept; in any other region BucketAlreadyOwnedByYou (tests/cluster/test_ops).
    s3.create_bucket(Bucket="errors")
    assert len(s3.get_bucket_acl(Bucket="errors")["Grants"]) == 1
    assert s3.get_object(Bucket="errors", Key="kept")["Body"].read() == b"k"
    with pytest.raises(ClientError) as exc:
        s3.create_bucket(Bucket="Bad_Name")
    assert _code(exc.value) == "InvalidBucketName"


def test_wrong_secret_refused(cluster: Cluster) -> None:
    bad = cluster.s3(secret="not-the-secret")
    with pytest.raises(ClientError) as exc:
        bad.list_buckets()
    assert _code(exc.value) == "SignatureDoesNotMatch"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _fragment_files(cluster: Cluster) -> dict[str, int]:
    """Bytes held in segment files per node directory."""
    out = {}
    for node in sorted((cluster.root / "nodes").iterdir()):
        out[node.name] = sum(p.stat().st_size for p in node.rglob("*.seg"))
    return out


def test_fragments_spread_over_nodes(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="spread")
    before = _fragment_files(cluster)
    size = 10 * MIB
    s3.put_object(Bucket="spread", Key="ten", Body=_body(size, 10))
    after = _fragment_files(cluster)
    grown = {n: after[n] - before.get(n, 0) for n in after}
    # One fragment per node, each about a quarter of the object (4+2).
    assert sorted(grown) == sorted(before)
    for node, delta in grown.items():
        assert size / 4 <= delta <= size / 4 * 1.1, (node, delta)


def test_survives_node_kill_and_full_restart(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="durable")
    bodies = {f"k{i}": _body(s, i) for i, s in enumerate([0, 100, 70_000, 3 * MIB + 1])}
    for k, b in bodies.items():
        s3.put_object(Bucket="durable", Key=k, Body=b)
    victim = random.Random(os.getpid()).choice(cluster.node_names())
    print("killing", victim)
    cluster.kill(victim)
    try:
        for k, b in bodies.items():
            assert s3.get_object(Bucket="durable", Key=k)["Body"].read() == b
    finally:
        cluster.start(victim)
    cluster.stop()
    cluster.start()
    s3 = cluster.s3()
    for k, b in bodies.items():
        assert s3.get_object(Bucket="durable", Key=k)["Body"].read() == b
    assert Path(cluster.config.credentials_path).stat().st_mode & 0o777 == 0o600
