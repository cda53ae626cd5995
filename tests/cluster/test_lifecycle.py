"""Bucket lifecycle on a real cluster: the configuration as boto3 speaks it, objects expired
and uploads aborted by the gateways' scans, with a lifecycle day of a few seconds."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gateway.catalog import Catalog
from gateway.hlc import Clock
from gateway.metastore import MetaStore
from ring.ringset import RingSet
from storage.client import NodeClient
from tests.cluster.harness import Cluster, new_cluster

DAY_S = "2"              # one lifecycle day of the test cluster's gateways, in seconds
SCAN_S = "1"             # their scan period
WAIT_S = 40.0            # bound for a due object to go (2 days + a scan, with margin)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    env = {"COFFRE_LIFECYCLE_DAY_S": DAY_S, "COFFRE_LIFECYCLE_SCAN_S": SCAN_S}
    os.environ.update(env)                  # inherited by the gateway processes
    c = new_cluster()
    try:
        c.start()
        yield c
    finally:
        c.stop()
        for name in env:
            os.environ.pop(name, None)
        shutil.rmtree(c.root, ignore_errors=True)


def _code(exc: ClientError) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


def _until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"lifecycle never got to: {what}"
        time.sleep(0.25)


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as exc:
        assert _code(exc) == ("404", 404)
        return False


def _usage(s3: Any, bucket: str) -> tuple[int, int]:
    hdrs = s3.head_bucket(Bucket=bucket)["ResponseMetadata"]["HTTPHeaders"]
    return int(hdrs["x-coffre-object-count"]), int(hdrs["x-coffre-bytes-used"])


RULES: list[dict[str, Any]] = [
    {"ID": "tmp", "Status": "Enabled", "Filter": {"Prefix": "tmp/"},
     "Expiration": {"Days": 1}},
    {"ID": "tagged", "Status": "Enabled",
     "Filter": {"And": {"Prefix": "tagged/", "Tags": [{"Key": "del", "Value": "yes"}]}},
     "Expiration": {"Days": 1}},
    {"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "keep/"},
     "Expiration": {"Days": 1}},
    {"ID": "uploads", "Status": "Enabled", "Filter": {"Prefix": "uploads/"},
     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    {"ID": "dated", "Status": "Enabled", "Filter": {"Prefix": "archive/"},
     "Expiration": {"Date": datetime(2099, 1, 1, tzinfo=UTC)}},
]


def test_configuration_round_trip_and_refusals(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="lc-config")
    with pytest.raises(ClientError) as info:
        s3.get_bucket_lifecycle_configuration(Bucket="lc-config")
    assert _code(info.value) == ("NoSuchLifecycleConfiguration", 404)
    s3.put_bucket_lifecycle_configuration(Bucket="lc-config",
                                          LifecycleConfiguration={"Rules": RULES})
    got = s3.get_bucket_lifecycle_configuration(Bucket="lc-config")["Rules"]
    assert got == RULES
    bad = [{"ID": "zero", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 0}}]
    with pytest.raises(ClientError) as info:
        s3.put_bucket_lifecycle_configuration(Bucket="lc-config",
                                              LifecycleConfiguration={"Rules": bad})
    assert _code(info.value) == ("InvalidArgument", 400)
    glacier = [{"ID": "cold", "Status": "Enabled", "Filter": {},
                "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}]
    with pytest.raises(ClientError) as info:
        s3.put_bucket_lifecycle_configuration(Bucket="lc-config",
                                              LifecycleConfiguration={"Rules": glacier})
    assert _code(info.value) == ("InvalidStorageClass", 400)
    # A refused configuration changes nothing.
    assert s3.get_bucket_lifecycle_configuration(Bucket="lc-config")["Rules"] == RULES
    s3.delete_bucket_lifecycle(Bucket="lc-config")
    with pytest.raises(ClientError) as info:
        s3.get_bucket_lifecycle_configuration(Bucket="lc-config")
    assert _code(info.value) == ("NoSuchLifecycleConfiguration", 404)


def test_rules_expire_matching_objects_and_abort_old_uploads(cluster: Cluster) -> None:
    s3 = cluster.s3()
    b = "lc-expire"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": RULES})
    big = os.urandom(300_000)                # erasure-coded, not inline
    doomed = {"tmp/a": b"a", "tmp/big": big, "tagged/x": b"x"}
    kept = {"keep/b": b"b", "tagged/y": b"y", "archive/z": b"z", "other": b"o"}
    for key, body in {**doomed, **kept}.items():
        extra = {"Tagging": "del=yes"} if key in ("tagged/x", "keep/b") else {}
        s3.put_object(Bucket=b, Key=key, Body=body, **extra)
    head = s3.head_object(Bucket=b, Key="tmp/big")["ResponseMetadata"]["HTTPHeaders"]
    assert 'rule-id="tmp"' in head["x-amz-expiration"]
    archived = s3.get_object(Bucket=b, Key="archive/z")["ResponseMetadata"]["HTTPHeaders"]
    assert archived["x-amz-expiration"] == \
        'expiry-date="Thu, 01 Jan 2099 00:00:00 GMT", rule-id="dated"'
    assert "x-amz-expiration" not in \
        s3.head_object(Bucket=b, Key="keep/b")["ResponseMetadata"]["HTTPHeaders"]
    up = s3.create_multipart_upload(Bucket=b, Key="uploads/u")
    assert up["AbortRuleId"] == "uploads" and up["AbortDate"] is not None
    s3.upload_part(Bucket=b, Key="uploads/u", UploadId=up["UploadId"], PartNumber=1,
                   Body=b"p" * 1000)
    spared = s3.create_multipart_upload(Bucket=b, Key="elsewhere/u")
    assert "AbortRuleId" not in spared

    _until("expire tmp/ and tagged/x", lambda: not any(_exists(s3, b, k) for k in doomed))
    _until("abort uploads/u", lambda: not s3.list_multipart_uploads(
        Bucket=b, Prefix="uploads/").get("Uploads"))
    for key, body in kept.items():
        assert s3.get_object(Bucket=b, Key=key)["Body"].read() == body
    assert _usage(s3, b) == (len(kept), sum(len(v) for v in kept.values()))
    with pytest.raises(ClientError) as info:
        s3.upload_part(Bucket=b, Key="uploads/u", UploadId=up["UploadId"], PartNumber=2,
                       Body=b"q")
    assert _code(info.value) == ("NoSuchUpload", 404)
    listed = s3.list_multipart_uploads(Bucket=b)["Uploads"]
    assert [u["Key"] for u in listed] == ["elsewhere/u"]


async def _catalog_call(cluster: Cluster, bucket_name: str, key: str,
                        seen: int | None) -> int:
    """The object's current stamp (seen None), or Catalog.expire_object on the stamp `seen`
    (1: removed, 0: not), as the gateways' scan calls it."""
    client = NodeClient()
    try:
        catalog = Catalog(MetaStore(RingSet(cluster.config.rings_dir), client, Clock()), 0)
        bucket = await catalog.bucket(bucket_name)
        if seen is not None:
            return int(await catalog.expire_object(bucket, key.encode(), seen))
        found = await catalog.get_object(bucket, key.encode())
        assert found is not None
        return found[1]
    finally:
        await client.close()


def test_an_expiry_never_deletes_a_newer_write(cluster: Cluster) -> None:
    """The scan reads a version, finds it due, then deletes: a PUT landing in between
    must survive. The tombstone is stamped just above the version read, so it loses."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="lc-race")
    s3.put_object(Bucket="lc-race", Key="k", Body=b"old")
    read = asyncio.run(_catalog_call(cluster, "lc-race", "k", None))
    s3.put_object(Bucket="lc-race", Key="k", Body=b"new")
    assert asyncio.run(_catalog_call(cluster, "lc-race", "k", read)) == 0
    assert s3.get_object(Bucket="lc-race", Key="k")["Body"].read() == b"new"
    current = asyncio.run(_catalog_call(cluster, "lc-race", "k", None))
    assert current > read
    assert asyncio.run(_catalog_call(cluster, "lc-race", "k", current)) == 1
    assert not _exists(s3, "lc-race", "k")


def _versions(s3: Any, bucket: str, key: str) -> list[tuple[str, bool]]:
    """(version id, delete marker) of a key's versions, newest first."""
    got = s3.list_object_versions(Bucket=bucket, Prefix=key)
    rows = [(v["VersionId"], False, v["LastModified"]) for v in got.get("Versions", [])
            if v["Key"] == key]
    rows += [(d["VersionId"], True, d["LastModified"]) for d in got.get("DeleteMarkers", [])
             if d["Key"] == key]
    return [(vid, marker) for vid, marker, _ in sorted(rows, key=lambda r: r[2],
                                                       reverse=True)]


VERSION_RULES: list[dict[str, Any]] = [
    {"ID": "current", "Status": "Enabled", "Filter": {"Prefix": "cur/"},
     "Expiration": {"Days": 1}},
    {"ID": "noncurrent", "Status": "Enabled", "Filter": {"Prefix": "old/"},
     "NoncurrentVersionExpiration": {"NoncurrentDays": 1, "NewerNoncurrentVersions": 1}},
    {"ID": "markers", "Status": "Enabled", "Filter": {"Prefix": "mark/"},
     "Expiration": {"ExpiredObjectDeleteMarker": True}},
]


def test_rules_in_a_versioned_bucket(cluster: Cluster) -> None:
    """Expiring a current version adds a delete marker (the version stays, readable by
    id); noncurrent versions go, but for the newest one kept; a delete marker left as a
    key's only version goes. Other keys are untouched."""
    s3 = cluster.s3()
    b = "lc-versions"
    s3.create_bucket(Bucket=b)
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=b,
                                          LifecycleConfiguration={"Rules": VERSION_RULES})
    cur = s3.put_object(Bucket=b, Key="cur/a", Body=os.urandom(200_000))["VersionId"]
    old = [s3.put_object(Bucket=b, Key="old/k", Body=f"v{i}".encode())["VersionId"]
           for i in range(3)]
    s3.put_object(Bucket=b, Key="mark/m", Body=b"m")
    marker = s3.delete_object(Bucket=b, Key="mark/m")["VersionId"]
    s3.put_object(Bucket=b, Key="mark/kept", Body=b"k")
    s3.delete_object(Bucket=b, Key="mark/kept")       # a marker with a version behind it
    for v in s3.list_object_versions(Bucket=b, Prefix="mark/m")["Versions"]:
        s3.delete_object(Bucket=b, Key="mark/m", VersionId=v["VersionId"])
    assert _versions(s3, b, "mark/m") == [(marker, True)]
    s3.put_object(Bucket=b, Key="other", Body=b"o")

    _until("a marker on cur/a", lambda: _versions(s3, b, "cur/a")[0][1])
    _until("old/k's oldest version gone", lambda: len(_versions(s3, b, "old/k")) == 2)
    _until("mark/m's lone marker gone", lambda: _versions(s3, b, "mark/m") == [])
    assert _versions(s3, b, "cur/a")[1] == (cur, False)
    assert s3.get_object(Bucket=b, Key="cur/a", VersionId=cur)["ContentLength"] == 200_000
    assert _versions(s3, b, "old/k") == [(old[2], False), (old[1], False)]
    assert s3.get_object(Bucket=b, Key="old/k")["Body"].read() == b"v2"
    assert [m for _, m in _versions(s3, b, "mark/kept")] == [True, False]
    assert s3.get_object(Bucket=b, Key="other")["Body"].read() == b"o"
    # Counters: cur/a's version, old/k's two, mark/kept's one, other.
    assert _usage(s3, b) == (5, 200_000 + 2 + 2 + 1 + 1)


def test_empty_prefix_kept_and_expiry_shown_for_current_versions_only(cluster: Cluster
                                                                       ) -> None:
    """A <Filter><Prefix></Prefix></Filter> reads back with its empty Prefix, as on AWS;
    in a versioned bucket an Expiration rule's x-amz-expiration is on the current version
    only (read by key or by its id), not on the noncurrent versions it does not expire."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="lc-current")
    s3.put_bucket_versioning(Bucket="lc-current", VersioningConfiguration={"Status": "Enabled"})
    rules = [{"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""},
              "Expiration": {"Days": 100_000}},
             {"ID": "and", "Status": "Enabled",
              "Filter": {"And": {"Prefix": "", "Tags": [{"Key": "k", "Value": "v"}]}},
              "NoncurrentVersionExpiration": {"NoncurrentDays": 100_000}}]
    s3.put_bucket_lifecycle_configuration(Bucket="lc-current",
                                          LifecycleConfiguration={"Rules": rules})
    got = s3.get_bucket_lifecycle_configuration(Bucket="lc-current")["Rules"]
    assert [r["Filter"] for r in got] == [r["Filter"] for r in rules]
    old = s3.put_object(Bucket="lc-current", Key="k", Body=b"1")["VersionId"]
    new = s3.put_object(Bucket="lc-current", Key="k", Body=b"2")
    assert 'rule-id="all"' in new["Expiration"]
    for read in (s3.head_object, s3.get_object):
        assert read(Bucket="lc-current", Key="k")["Expiration"] == new["Expiration"]
        assert read(Bucket="lc-current", Key="k", VersionId=new["VersionId"])[
            "Expiration"] == new["Expiration"]
        assert "Expiration" not in read(Bucket="lc-current", Key="k", VersionId=old)
    s3.delete_object(Bucket="lc-current", Key="k")      # the marker is current now
    assert "Expiration" not in s3.head_object(Bucket="lc-current", Key="k",
                                              VersionId=new["VersionId"])
