"""Bucket versioning on a real cluster, as boto3 and raw HTTP speak it: versions kept on
overwrite and delete, delete markers, reads and deletes of one version, suspended buckets'
null versions, objects from before versioning, and ListObjectVersions' pages."""

from __future__ import annotations

import concurrent.futures
import random
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def _status(exc: pytest.ExceptionInfo[ClientError]) -> int:
    return int(exc.value.response["ResponseMetadata"]["HTTPStatusCode"])


def _versioned(s3: Any, name: str, status: str = "Enabled") -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})


def _all_versions(s3: Any, bucket: str, **kw: Any) -> list[tuple[str, str, bool, bool]]:
    """(key, version id, is latest, delete marker) of every version, through the paginator."""
    out = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, **kw):
        rows = [(v["Key"], v["VersionId"], v["IsLatest"], False, v["LastModified"])
                for v in page.get("Versions", [])]
        rows += [(d["Key"], d["VersionId"], d["IsLatest"], True, d["LastModified"])
                 for d in page.get("DeleteMarkers", [])]
        # boto3 splits versions and markers into two lists: put them back in S3's order
        # (key, then newest first; within one millisecond the newer id: ids are stamps).
        rows.sort(key=lambda r: (r[0], -r[4].timestamp(),
                                 -int(r[1], 16) if r[1] != "null" else 0))
        out += [r[:4] for r in rows]
    return out


def test_status_round_trip(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="vstatus")
    assert "Status" not in s3.get_bucket_versioning(Bucket="vstatus")
    for status in ("Enabled", "Suspended", "Enabled"):
        s3.put_bucket_versioning(Bucket="vstatus", VersioningConfiguration={"Status": status})
        assert s3.get_bucket_versioning(Bucket="vstatus")["Status"] == status
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket="vstatus", VersioningConfiguration={"Status": "On"})
    assert _code(exc) == "MalformedXML"
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_versioning(Bucket="vstatus", MFA="dev 123456",
                                 VersioningConfiguration={"Status": "Enabled",
                                                          "MFADelete": "Enabled"})
    assert _status(exc) == 501
    assert s3.get_bucket_versioning(Bucket="vstatus")["Status"] == "Enabled"


def test_overwrite_keeps_every_version(cluster: Cluster) -> None:
    """Inline and erasure-coded versions of one key, each readable by its id; HEAD and
    GET name the version they return."""
    s3 = cluster.s3()
    _versioned(s3, "vkeep")
    bodies = [b"small", random.Random(1).randbytes(300_000), b"", b"last"]
    ids = [s3.put_object(Bucket="vkeep", Key="k", Body=b)["VersionId"] for b in bodies]
    assert len(set(ids)) == 4 and "null" not in ids
    for vid, body in zip(ids, bodies, strict=True):
        got = s3.get_object(Bucket="vkeep", Key="k", VersionId=vid)
        assert got["Body"].read() == body and got["VersionId"] == vid
        assert s3.head_object(Bucket="vkeep", Key="k", VersionId=vid)["ContentLength"] == \
            len(body)
    current = s3.get_object(Bucket="vkeep", Key="k")
    assert current["Body"].read() == b"last" and current["VersionId"] == ids[-1]
    ranged = s3.get_object(Bucket="vkeep", Key="k", VersionId=ids[1], Range="bytes=10-19")
    assert ranged["Body"].read() == bodies[1][10:20]
    assert _all_versions(s3, "vkeep") == [("k", v, v == ids[-1], False)
                                         for v in reversed(ids)]
    listed = s3.list_objects_v2(Bucket="vkeep")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("k", 4)]
    usage = s3.head_bucket(Bucket="vkeep")["ResponseMetadata"]["HTTPHeaders"]
    assert usage["x-coffre-object-count"] == "4"
    assert usage["x-coffre-bytes-used"] == str(sum(map(len, bodies)))


def test_delete_marker_and_its_removal(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _versioned(s3, "vmark")
    v1 = s3.put_object(Bucket="vmark", Key="doc", Body=b"v1")["VersionId"]
    v2 = s3.put_object(Bucket="vmark", Key="doc", Body=b"v2" * 50_000)["VersionId"]
    gone = s3.delete_object(Bucket="vmark", Key="doc")
    assert gone["DeleteMarker"] is True
    marker = gone["VersionId"]
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="vmark", Key="doc")
    assert _code(exc) == "NoSuchKey"
    hdrs = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert hdrs["x-amz-delete-marker"] == "true" and hdrs["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as exc:
        s3.head_object(Bucket="vmark", Key="doc", VersionId=marker)
    assert _status(exc) == 405
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="vmark", Key="doc", VersionId=marker)
    assert _code(exc) == "MethodNotAllowed"
    assert "Contents" not in s3.list_objects_v2(Bucket="vmark")
    assert _all_versions(s3, "vmark") == [("doc", marker, True, True),
                                         ("doc", v2, False, False), ("doc", v1, False, False)]
    # Older versions stay readable behind the marker.
    assert s3.get_object(Bucket="vmark", Key="doc", VersionId=v1)["Body"].read() == b"v1"
    # Removing the marker brings the newest version back.
    removed = s3.delete_object(Bucket="vmark", Key="doc", VersionId=marker)
    assert removed["DeleteMarker"] is True and removed["VersionId"] == marker
    assert s3.get_object(Bucket="vmark", Key="doc")["Body"].read() == b"v2" * 50_000
    # Removing the current version for good makes the one before it current.
    assert s3.delete_object(Bucket="vmark", Key="doc", VersionId=v2)["VersionId"] == v2
    assert s3.get_object(Bucket="vmark", Key="doc")["Body"].read() == b"v1"
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="vmark", Key="doc", VersionId=v2)
    assert _code(exc) == "NoSuchVersion"
    assert _all_versions(s3, "vmark") == [("doc", v1, True, False)]
    # A bucket is empty only when no version is left.
    s3.delete_object(Bucket="vmark", Key="doc")
    with pytest.raises(ClientError) as exc:
        s3.delete_bucket(Bucket="vmark")
    assert _code(exc) == "BucketNotEmpty"
    for key, vid, _, _ in _all_versions(s3, "vmark"):
        s3.delete_object(Bucket="vmark", Key=key, VersionId=vid)
    s3.delete_bucket(Bucket="vmark")


def test_bad_version_ids(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _versioned(s3, "vbad")
    s3.put_object(Bucket="vbad", Key="k", Body=b"x")
    for vid in ("nope", "0" * 24, "g" * 24):
        with pytest.raises(ClientError) as exc:
            s3.get_object(Bucket="vbad", Key="k", VersionId=vid)
        assert _code(exc) == "InvalidArgument", vid
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="vbad", Key="k", VersionId="0" * 23 + "1")
    assert _code(exc) == "NoSuchVersion"
    # Deleting a version that is not there is a success that changes nothing.
    s3.delete_object(Bucket="vbad", Key="k", VersionId="0" * 23 + "1")
    assert s3.get_object(Bucket="vbad", Key="k")["Body"].read() == b"x"
    with pytest.raises(ClientError) as exc:
        s3.list_object_versions(Bucket="vbad", VersionIdMarker="null")
    assert _code(exc) == "InvalidArgument"


def test_objects_from_before_versioning_are_null_versions(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="vlegacy")
    s3.put_object(Bucket="vlegacy", Key="a", Body=b"old a")
    s3.put_object(Bucket="vlegacy", Key="b", Body=b"old b")
    assert "VersionId" not in s3.put_object(Bucket="vlegacy", Key="c", Body=b"c")
    s3.put_bucket_versioning(Bucket="vlegacy", VersioningConfiguration={"Status": "Enabled"})
    got = s3.get_object(Bucket="vlegacy", Key="a")
    assert got["VersionId"] == "null"
    new = s3.put_object(Bucket="vlegacy", Key="a", Body=b"new a")["VersionId"]
    assert s3.get_object(Bucket="vlegacy", Key="a", VersionId="null")["Body"].read() == \
        b"old a"
    marker = s3.delete_object(Bucket="vlegacy", Key="b")["VersionId"]
    assert _all_versions(s3, "vlegacy") == [
        ("a", new, True, False), ("a", "null", False, False),
        ("b", marker, True, True), ("b", "null", False, False), ("c", "null", True, False)]
    # Deleting the null version by id removes it for good.
    s3.delete_object(Bucket="vlegacy", Key="c", VersionId="null")
    with pytest.raises(ClientError):
        s3.get_object(Bucket="vlegacy", Key="c")
    assert [r[0] for r in _all_versions(s3, "vlegacy")] == ["a", "a", "b", "b"]


def test_suspended_bucket_keeps_one_null_version(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _versioned(s3, "vsusp")
    kept = s3.put_object(Bucket="vsusp", Key="k", Body=b"enabled")["VersionId"]
    s3.put_bucket_versioning(Bucket="vsusp", VersioningConfiguration={"Status": "Suspended"})
    # AWS answers a write of the null version without x-amz-version-id; reads name it.
    assert "VersionId" not in s3.put_object(Bucket="vsusp", Key="k", Body=b"n1")
    assert "VersionId" not in s3.put_object(Bucket="vsusp", Key="k", Body=b"n2" * 40_000)
    got = s3.get_object(Bucket="vsusp", Key="k")
    assert got["Body"].read() == b"n2" * 40_000 and got["VersionId"] == "null"
    assert _all_versions(s3, "vsusp") == [("k", "null", True, False),
                                         ("k", kept, False, False)]
    # A delete adds a null delete marker in place of the null version.
    gone = s3.delete_object(Bucket="vsusp", Key="k")
    assert gone["DeleteMarker"] is True and gone["VersionId"] == "null"
    assert _all_versions(s3, "vsusp") == [("k", "null", True, True),
                                         ("k", kept, False, False)]
    assert s3.get_object(Bucket="vsusp", Key="k", VersionId=kept)["Body"].read() == b"enabled"
    usage = s3.head_bucket(Bucket="vsusp")["ResponseMetadata"]["HTTPHeaders"]
    assert (usage["x-coffre-object-count"], usage["x-coffre-bytes-used"]) == ("1", "7")


def test_delete_objects_with_versions(cluster: Cluster) -> None:
    s3 = cluster.s3()
    _versioned(s3, "vbatch")
    v1 = s3.put_object(Bucket="vbatch", Key="x", Body=b"1")["VersionId"]
    s3.put_object(Bucket="vbatch", Key="x", Body=b"2")
    s3.put_object(Bucket="vbatch", Key="y", Body=b"y")
    got = s3.delete_objects(Bucket="vbatch", Delete={"Objects": [
        {"Key": "x", "VersionId": v1}, {"Key": "y"}, {"Key": "z", "VersionId": "bad"}]})
    deleted = {d["Key"]: d for d in got["Deleted"]}
    assert deleted["x"] == {"Key": "x", "VersionId": v1}
    assert deleted["y"]["DeleteMarker"] is True and deleted["y"]["DeleteMarkerVersionId"]
    # AWS's DeleteObjects takes a malformed id for one it has not got (LocalStack's
    # AWS-validated test_delete_objects_versioned); DeleteObject alone says InvalidArgument.
    assert [(e["Key"], e["VersionId"], e["Code"], e["Message"]) for e in got["Errors"]] == [
        ("z", "bad", "NoSuchVersion", "The specified version does not exist.")]
    assert [(k, m) for k, _, _, m in _all_versions(s3, "vbatch")] == [
        ("x", False), ("y", True), ("y", False)]
    fake = "HPniJFCxqTsMuIH9KX8K8wEjNUgmABCD"
    s3.create_bucket(Bucket="vbatch-plain")
    s3.put_object(Bucket="vbatch-plain", Key="k", Body=b"k")
    for bucket, key in (("vbatch", "y"), ("vbatch", "never"), ("vbatch-plain", "k")):
        got = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
            {"Key": key, "VersionId": fake}]})
        assert "Deleted" not in got
        assert [(e["Key"], e["VersionId"], e["Code"]) for e in got["Errors"]] == [
            (key, fake, "NoSuchVersion")]
        with pytest.raises(ClientError) as exc:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=fake)
        assert (_status(exc), _code(exc)) == (400, "InvalidArgument")
    assert s3.get_object(Bucket="vbatch-plain", Key="k")["Body"].read() == b"k"


def test_concurrent_deletes_of_every_version_leave_no_current(cluster: Cluster) -> None:
    """Several DeleteObjects, at once, each removing every version of the same keys (as
    s3-tests' test_versioning_concurrent_multi_object_delete): every version gone and no
    current object left. A delete that had chosen the next version before another delete
    removed it wrote it back as current: HEAD and ListObjects showed an object that no
    version listing had. (A race: a few rounds make it show without the fix.)"""
    s3 = cluster.s3()
    _versioned(s3, "vconcurrent")
    keys = [f"key_{i}" for i in range(8)]
    for _ in range(4):
        for _ in range(3):
            for key in keys:
                s3.put_object(Bucket="vconcurrent", Key=key, Body=key.encode())
        listed = s3.list_object_versions(Bucket="vconcurrent")["Versions"]
        batch = {"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in listed]}
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda b: s3.delete_objects(Bucket="vconcurrent", Delete=b),
                                    [batch] * 6))
        assert all(len(a["Deleted"]) == 24 and "Errors" not in a for a in answers)
        assert _all_versions(s3, "vconcurrent") == []
        assert "Contents" not in s3.list_objects(Bucket="vconcurrent")
    s3.delete_bucket(Bucket="vconcurrent")


def test_tagging_a_key_behind_a_delete_marker(cluster: Cluster) -> None:
    """Get/Put/DeleteObjectTagging without a versionId on a key whose newest version is a
    delete marker: 405 MethodNotAllowed, as with the marker's id (LocalStack's
    AWS-validated test_object_tagging_versioned); GET of the key stays 404 NoSuchKey."""
    s3 = cluster.s3()
    _versioned(s3, "vtagmark")
    kept = s3.put_object(Bucket="vtagmark", Key="t", Body=b"t", Tagging="a=1")["VersionId"]
    marker = s3.delete_object(Bucket="vtagmark", Key="t")["VersionId"]
    tag_set = {"TagSet": [{"Key": "b", "Value": "2"}]}
    calls = {"PUT": lambda **kw: s3.put_object_tagging(Tagging=tag_set, **kw),
             "GET": s3.get_object_tagging, "DELETE": s3.delete_object_tagging}
    for method, call in calls.items():
        for by_id in ({}, {"VersionId": marker}):
            with pytest.raises(ClientError) as exc:
                call(Bucket="vtagmark", Key="t", **by_id)
            err = exc.value.response["Error"]
            assert (_status(exc), err["Code"], err["Method"], err["ResourceType"]) == \
                (405, "MethodNotAllowed", method, "DeleteMarker"), (method, by_id)
            sent = exc.value.response["ResponseMetadata"]["HTTPHeaders"]
            assert sent["allow"] == "DELETE" and sent["x-amz-delete-marker"] == "true"
            assert sent["x-amz-version-id"] == marker
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket="vtagmark", Key="t")
    assert (_status(exc), _code(exc)) == (404, "NoSuchKey")
    assert s3.get_object_tagging(Bucket="vtagmark", Key="t", VersionId=kept)["TagSet"] == \
        [{"Key": "a", "Value": "1"}]
    with pytest.raises(ClientError) as exc:     # no version at all: still NoSuchKey
        s3.get_object_tagging(Bucket="vtagmark", Key="never")
    assert (_status(exc), _code(exc)) == (404, "NoSuchKey")


def test_version_listing_pages_and_folders(cluster: Cluster) -> None:
    """Pages of every size over keys with many versions, markers among them, and a
    delimiter: the same versions in the same order as one big page."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="vpages")
    s3.put_object(Bucket="vpages", Key="d/old", Body=b"o")       # a null version
    s3.put_bucket_versioning(Bucket="vpages", VersioningConfiguration={"Status": "Enabled"})
    rnd = random.Random(7)
    keys = ["a", "b", "d/x", "d/y", "e"]
    for _ in range(25):
        key = rnd.choice(keys)
        if rnd.random() < 0.2:
            s3.delete_object(Bucket="vpages", Key=key)
        else:
            s3.put_object(Bucket="vpages", Key=key, Body=rnd.randbytes(rnd.randrange(9)))
    whole = _all_versions(s3, "vpages")
    assert len(whole) == 26
    assert [r[0] for r in whole] == sorted(r[0] for r in whole)
    assert [r[0] for r in whole if r[2]] == sorted({r[0] for r in whole})   # one latest each
    for size in (1, 2, 3, 7):
        assert _all_versions(s3, "vpages", MaxKeys=size) == whole, size
    top = s3.list_object_versions(Bucket="vpages", Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["d/"]
    assert all(not v["Key"].startswith("d/") for v in top.get("Versions", []))
    owner = s3.get_bucket_acl(Bucket="vpages")["Owner"]      # one owner, shown alike
    assert all(v["Owner"] == owner for v in top.get("Versions", []) + top.get(
        "DeleteMarkers", [])) and "DisplayName" in owner
    inside = _all_versions(s3, "vpages", Prefix="d/")
    assert inside == [r for r in whole if r[0].startswith("d/")]
    assert ("d/old", "null") in [r[:2] for r in inside]           # the pre-versioning one
    # Resuming from a key marker alone starts after all of that key's versions.
    after_b = _all_versions(s3, "vpages", KeyMarker="b")
    assert after_b == [r for r in whole if r[0] > "b"]


def test_raw_http_headers_and_copy_of_a_version(cluster: Cluster) -> None:
    """x-amz-version-id on a raw PUT answer, and CopyObject from an older version."""
    s3 = cluster.s3()
    _versioned(s3, "vcopy")
    first = s3.put_object(Bucket="vcopy", Key="src", Body=b"first")["VersionId"]
    s3.put_object(Bucket="vcopy", Key="src", Body=b"second")
    copied = s3.copy_object(Bucket="vcopy", Key="dst",
                            CopySource={"Bucket": "vcopy", "Key": "src", "VersionId": first})
    assert copied["CopySourceVersionId"] == first and copied["VersionId"] not in (first, "null")
    assert s3.get_object(Bucket="vcopy", Key="dst")["Body"].read() == b"first"
    s3.put_bucket_policy(Bucket="vcopy", Policy=(
        '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject",'
        '"Resource":"arn:aws:s3:::vcopy/*"}]}'))
    with urllib.request.urlopen(f"{cluster.endpoint}/vcopy/src") as resp:
        assert resp.read() == b"second" and resp.headers["x-amz-version-id"] not in (None,
                                                                                   "null")


def test_version_policies_and_awkward_keys(cluster: Cluster) -> None:
    """A policy's s3:GetObject reads the current version only; s3:GetObjectVersion reads
    one by id (as on AWS). A key with NUL is refused in a versioned bucket."""
    s3 = cluster.s3()
    _versioned(s3, "vpolicy")
    old = s3.put_object(Bucket="vpolicy", Key="k", Body=b"old")["VersionId"]
    s3.put_object(Bucket="vpolicy", Key="k", Body=b"new")

    def anonymous(path: str) -> int:
        try:
            with urllib.request.urlopen(f"{cluster.endpoint}/vpolicy/{path}") as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)

    def allow(action: str) -> None:
        s3.put_bucket_policy(Bucket="vpolicy", Policy=(
            '{"Statement":[{"Effect":"Allow","Principal":"*","Action":"' + action + '",'
            '"Resource":"arn:aws:s3:::vpolicy/*"}]}'))

    allow("s3:GetObject")
    assert anonymous("k") == 200
    assert anonymous(f"k?versionId={old}") == 403
    allow("s3:GetObjectVersion")
    assert anonymous(f"k?versionId={old}") == 200
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="vpolicy", Key="a\x00b", Body=b"x")
    assert _code(exc) == "InvalidArgument"
