"""Edges that LocalStack's AWS-validated S3 tests recorded from AWS itself (their
`*.snapshot.json` files), checked on a real cluster: listings, ListBuckets paging, copies
and CORS answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from xml.etree import ElementTree

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster
from tests.cluster.test_raw_http import _send


def _error(call: Any, **kw: Any) -> tuple[int, dict[str, str]]:
    with pytest.raises(ClientError) as e:
        call(**kw)
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]


def test_list_objects_v2_refuses_an_empty_continuation_token(cluster: Cluster) -> None:
    # AWS (test_list_objects_v2_continuation_start_after): 400 InvalidArgument, where an
    # empty token used to list from the start.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="empty-token")
    s3.put_object(Bucket="empty-token", Key="k", Body=b"x")
    status, err = _error(s3.list_objects_v2, Bucket="empty-token", ContinuationToken="")
    assert (status, err["Code"], err["ArgumentName"]) == (400, "InvalidArgument",
                                                          "continuation-token")
    assert err["Message"] == "The continuation token provided is incorrect"
    page = s3.list_objects_v2(Bucket="empty-token", MaxKeys=1)
    assert page["KeyCount"] == 1 and not page["IsTruncated"]


def test_list_buckets_pages_by_max_buckets_prefix_and_region(cluster: Cluster) -> None:
    # AWS (TestS3ListBuckets): MaxBuckets pages with a ContinuationToken, Prefix filters
    # (case-sensitively) and is echoed, BucketRegion filters; these used to be ignored.
    s3 = cluster.s3()
    names = [f"lb-{i}" for i in range(5)]
    for name in names:
        s3.create_bucket(Bucket=name)
    first = s3.list_buckets(Prefix="lb-", MaxBuckets=2)
    assert [b["Name"] for b in first["Buckets"]] == names[:2]
    assert first["Prefix"] == "lb-" and first["ContinuationToken"]
    pages = s3.get_paginator("list_buckets").paginate(Prefix="lb-",
                                                      PaginationConfig={"PageSize": 2})
    assert [[b["Name"] for b in p["Buckets"]] for p in pages] == [names[:2], names[2:4],
                                                                   names[4:]]
    last = s3.list_buckets(Prefix="lb-", MaxBuckets=2,
                           ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in last["Buckets"]] == names[2:4]
    empty_token = s3.list_buckets(Prefix="lb-", MaxBuckets=1, ContinuationToken="")
    assert [b["Name"] for b in empty_token["Buckets"]] == names[:1]
    upper = s3.list_buckets(Prefix="LB-")
    assert upper["Buckets"] == [] and upper["Prefix"] == "LB-"
    assert "ContinuationToken" not in s3.list_buckets(Prefix="lb-")
    here = s3.list_buckets(BucketRegion=cluster.config.region, Prefix="lb-")["Buckets"]
    assert [b["Name"] for b in here] == names
    assert s3.list_buckets(BucketRegion="eu-west-3", Prefix="lb-")["Buckets"] == []
    everything = s3.list_buckets()
    assert {"Prefix", "ContinuationToken"}.isdisjoint(everything)
    assert set(names) <= {b["Name"] for b in everything["Buckets"]}


@pytest.mark.parametrize(("raw", "message"), [
    ("0", "Argument max-buckets must be an integer between 1 and 10000."),
    ("10001", "Argument max-buckets must be an integer between 1 and 10000."),
    ("many", "Provided max-buckets not an integer or within integer range"),
])
def test_list_buckets_refuses_a_bad_max_buckets(cluster: Cluster, raw: str,
                                                message: str) -> None:
    status, _, body = _send(cluster, "GET", f"/?max-buckets={raw}")
    root = ElementTree.fromstring(body)
    assert (status, root.findtext("Code"), root.findtext("Message")) == (
        400, "InvalidArgument", message)
    assert (root.findtext("ArgumentName"), root.findtext("ArgumentValue")) == (
        "max-buckets", raw)


def test_list_buckets_refuses_a_name_that_is_no_region(cluster: Cluster) -> None:
    # AWS (TestS3ListBuckets, LocalStack's provider): a bucket-region that is no AWS
    # region is 400 InvalidArgument naming the argument; a real region with no bucket of
    # ours, and the cluster's own, list as before.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="lb-region")
    status, err = _error(s3.list_buckets, BucketRegion="mars-north-1")
    assert (status, err) == (400, {
        "Code": "InvalidArgument",
        "Message": "Argument value mars-north-1 is not a valid AWS Region",
        "ArgumentName": "bucket-region"})
    assert s3.list_buckets(BucketRegion="ap-southeast-2")["Buckets"] == []
    here = s3.list_buckets(BucketRegion=cluster.config.region, Prefix="lb-region")
    assert [b["Name"] for b in here["Buckets"]] == ["lb-region"]


def test_copy_source_reads_plus_as_a_space(cluster: Cluster) -> None:
    # AWS (test_copy_object_special_character_plus_for_space): Go's form encoding of
    # "test key.txt" copies; a '+' of the key itself comes as %2B from the SDKs.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="plus-copy")
    s3.put_object(Bucket="plus-copy", Key="test key.txt", Body=b"spaced")
    s3.put_object(Bucket="plus-copy", Key="test+key", Body=b"plussed")
    status, _, body = _send(cluster, "PUT", "/plus-copy/dest",
                            headers={"x-amz-copy-source": "plus-copy%2Ftest+key.txt"})
    assert status == 200, body
    assert s3.get_object(Bucket="plus-copy", Key="dest")["Body"].read() == b"spaced"
    s3.copy_object(Bucket="plus-copy", Key="dest2", CopySource="plus-copy/test+key")
    assert s3.get_object(Bucket="plus-copy", Key="dest2")["Body"].read() == b"plussed"


def test_listings_name_the_bucket_region(cluster: Cluster) -> None:
    # AWS (test_region_header_exists): ListObjectsV2 answers x-amz-bucket-region, as
    # HeadBucket does.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="region-header")
    for answer in (s3.list_objects_v2(Bucket="region-header"),
                   s3.list_objects(Bucket="region-header"),
                   s3.list_object_versions(Bucket="region-header"),
                   s3.head_bucket(Bucket="region-header")):
        headers = answer["ResponseMetadata"]["HTTPHeaders"]
        assert headers["x-amz-bucket-region"] == cluster.config.region


def _unsigned(cluster: Cluster, method: str, path: str,
              headers: dict[str, str]) -> tuple[int, dict[str, str], ElementTree.Element | None]:
    status, got, body = _send(cluster, method, path, headers=headers, sign=False)
    return status, got, ElementTree.fromstring(body) if body.startswith(b"<?xml") else None


def _refusal(root: ElementTree.Element | None) -> tuple[str | None, ...]:
    assert root is not None
    return tuple(root.findtext(n) for n in ("Code", "Message", "Method", "ResourceType"))


NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the "
               "evalution of Origin, request method / Access-Control-Request-Method or "
               "Access-Control-Request-Headers are not whitelisted by the resource's CORS "
               "spec.")


def test_cors_answers_as_aws_recorded_them(cluster: Cluster) -> None:
    # AWS (test_s3_cors.py snapshots): what a refused preflight names, the order of its
    # checks, and an actual request matched as its preflight would be.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="cors-edges")
    s3.put_object(Bucket="cors-edges", Key="k", Body=b"test-cors")
    s3.put_bucket_acl(Bucket="cors-edges", ACL="public-read")
    s3.put_object_acl(Bucket="cors-edges", Key="k", ACL="public-read")
    origin = {"Origin": "whatever"}
    status, _, root = _unsigned(cluster, "OPTIONS", "/cors-edges/k", origin)
    assert (status, *_refusal(root)) == (
        403, "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.",
        "OPTIONS", "BUCKET")
    status, _, root = _unsigned(cluster, "OPTIONS", "/no-such-cors-bucket/k", origin)
    assert (status, *_refusal(root)) == (403, "AccessForbidden",
                                         "CORSResponse: Bucket not found", "OPTIONS", "BUCKET")
    allowed = "https://localhost:4200"
    s3.put_bucket_cors(Bucket="cors-edges", CORSConfiguration={"CORSRules": [{
        "AllowedOrigins": [allowed], "AllowedMethods": ["GET"], "MaxAgeSeconds": 3000,
        "AllowedHeaders": ["x-amz-expected-bucket-owner"]}]})
    put = {"Origin": allowed, "Access-Control-Request-Method": "PUT"}
    status, _, root = _unsigned(cluster, "OPTIONS", "/cors-edges/k", put)
    assert (status, *_refusal(root)) == (403, "AccessForbidden", NOT_ALLOWED, "PUT", "OBJECT")
    status, _, root = _unsigned(cluster, "OPTIONS", "/cors-edges", put)
    assert (status, *_refusal(root)) == (403, "AccessForbidden", NOT_ALLOWED, "PUT", "BUCKET")
    status, got, _ = _unsigned(cluster, "GET", "/cors-edges/k", {"Origin": allowed})
    assert status == 200 and got["access-control-allow-origin"] == allowed
    assert got["access-control-max-age"] == "3000"
    for odd in ({"Access-Control-Request-Method": "PUT"},
                {"Access-Control-Request-Headers": "x-amz-request-payer"}):
        status, got, _ = _unsigned(cluster, "GET", "/cors-edges/k", {"Origin": allowed, **odd})
        assert status == 200 and not any(h.startswith("access-control-") for h in got)


def test_list_object_versions_past_a_removed_marker_shows_the_new_latest(
        cluster: Cluster) -> None:
    # AWS (test_list_objects_versions_with_prefix_only_and_pagination): once the three
    # newest versions are deleted, the page after their markers starts with the key's new
    # latest version, IsLatest true (it was false, as if the marker's version still stood).
    s3 = cluster.s3()
    s3.create_bucket(Bucket="versions-after-delete")
    s3.put_bucket_versioning(Bucket="versions-after-delete",
                             VersioningConfiguration={"Status": "Enabled"})
    ids = [s3.put_object(Bucket="versions-after-delete", Key="prefixed_key")["VersionId"]
           for _ in range(5)][::-1]
    first = s3.list_object_versions(Bucket="versions-after-delete", Prefix="prefix",
                                    MaxKeys=3)
    assert [v["VersionId"] for v in first["Versions"]] == ids[:3]
    markers = {"KeyMarker": first["NextKeyMarker"],
               "VersionIdMarker": first["NextVersionIdMarker"]}
    before = s3.list_object_versions(Bucket="versions-after-delete", Prefix="prefix",
                                     MaxKeys=5, **markers)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in before] == [(ids[3], False),
                                                                  (ids[4], False)]
    s3.delete_objects(Bucket="versions-after-delete", Delete={"Objects": [
        {"Key": "prefixed_key", "VersionId": v} for v in ids[:3]]})
    after = s3.list_object_versions(Bucket="versions-after-delete", Prefix="prefix",
                                    MaxKeys=5, **markers)["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in after] == [(ids[3], True),
                                                                 (ids[4], False)]


def test_copy_preconditions_name_the_copy_source_header(cluster: Cluster) -> None:
    # AWS (test_s3_preconditions.py): every failed condition is 412 naming its
    # x-amz-copy-source-* header, checked If-Match, If-Unmodified-Since, If-None-Match, then
    # If-Modified-Since; a future If-Modified-Since is ignored and quotes are optional.
    s3 = cluster.s3()
    s3.create_bucket(Bucket="copy-conditions")
    etag = s3.put_object(Bucket="copy-conditions", Key="src", Body=b"data")["ETag"]
    mtime = s3.head_object(Bucket="copy-conditions", Key="src")["LastModified"]
    day = timedelta(days=1)
    copy = partial(s3.copy_object, Bucket="copy-conditions", Key="dest",
                   CopySource="copy-conditions/src")
    every = {"CopySourceIfModifiedSince": mtime, "CopySourceIfUnmodifiedSince": mtime - day,
             "CopySourceIfMatch": "etag123", "CopySourceIfNoneMatch": etag}
    for failing in ("If-Match", "If-Unmodified-Since", "If-None-Match", "If-Modified-Since"):
        status, err = _error(copy, **every)
        assert (status, err["Code"], err["Condition"]) == (
            412, "PreconditionFailed", f"x-amz-copy-source-{failing}")
        every.pop(f"CopySource{failing.replace('-', '')}")
    copy(CopySourceIfModifiedSince=datetime.now(UTC) + day)
    status, err = _error(copy, CopySourceIfNoneMatch=etag.strip('"'))
    assert err["Condition"] == "x-amz-copy-source-If-None-Match"
    copy(CopySourceIfMatch=etag.strip('"'), CopySourceIfNoneMatch="etag123",
         CopySourceIfModifiedSince=mtime - day, CopySourceIfUnmodifiedSince=mtime + day)
