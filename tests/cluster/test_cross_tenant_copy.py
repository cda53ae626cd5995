"""Copies across tenants on a real cluster: CopyObject and UploadPartCopy read a source
that another tenant owns whenever the requester may GET it (an ACL grant, a bucket policy,
a public-read object), and are refused when it may not read the source or write the
destination. The copy belongs to the destination bucket's owner. Multipart uploads name
the tenant that initiated them apart from the bucket owner who will own the object."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster
from tests.cluster.test_tenants import new_tenant

BIG = 300 * 1024        # above the inline limit: the copy streams erasure-coded data
PART = 5 * 1024 * 1024  # S3's smallest part but the last


@pytest.fixture(scope="module")
def pair(cluster: Cluster) -> dict[str, Any]:
    """Two tenants, `main` and `alt`, with one bucket each."""
    _, main = new_tenant(cluster, "main")
    _, alt = new_tenant(cluster, "alt")
    main.create_bucket(Bucket="main-own")
    alt.create_bucket(Bucket="alt-own")
    alt.put_object(Bucket="alt-own", Key="mine", Body=b"alt's own")
    return {"main": main, "alt": alt}


def _error(call: Any, **kw: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call(**kw)
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def _source(src: str) -> dict[str, str]:
    bucket, _, key = src.partition("/")
    return {"Bucket": bucket, "Key": key}


def _copy(s3: Any, dst: str, key: str, src: str, **kw: Any) -> Any:
    return s3.copy_object(Bucket=dst, Key=key, CopySource=_source(src), **kw)


def _refused(s3: Any, dst: str, key: str, src: str) -> tuple[str, int]:
    """The error a copy gets; then that nothing was written."""
    err = _error(s3.copy_object, Bucket=dst, Key=key, CopySource=_source(src))
    assert _error(s3.head_object, Bucket=dst, Key=key)[1] in (403, 404)
    return err


def _body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _absent(s3: Any, bucket: str, key: str) -> bool:
    return _error(s3.head_object, Bucket=bucket, Key=key)[1] == 404


def _owner_of(s3: Any, bucket: str, key: str) -> str:
    return str(s3.get_object_acl(Bucket=bucket, Key=key)["Owner"]["ID"])


def _policy(s3: Any, bucket: str, *statements: dict[str, Any]) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))


def _allow(who: str | dict[str, str], actions: list[str], resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": who, "Action": actions,
            "Resource": f"arn:aws:s3:::{resource}"}


def test_a_grantee_copies_within_the_owners_bucket(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.create_bucket(Bucket="granted")
    main.put_bucket_acl(Bucket="granted", GrantFullControl="id=alt")
    small, big = b"small source", bytes(range(256)) * (BIG // 256)
    main.put_object(Bucket="granted", Key="small", Body=small, GrantFullControl="id=alt")
    main.put_object(Bucket="granted", Key="big", Body=big, GrantFullControl="id=alt")
    assert _body(alt, "granted", "small") == small      # the grant works for a GET
    for key, data in (("small", small), ("big", big)):
        _copy(alt, "granted", f"{key}-copy", f"granted/{key}")
        assert _body(main, "granted", f"{key}-copy") == data
        # Objects belong to their bucket's owner, whoever wrote them.
        assert _owner_of(main, "granted", f"{key}-copy") == "main"

    up = alt.create_multipart_upload(Bucket="granted", Key="assembled")["UploadId"]
    alt.upload_part(Bucket="granted", Key="assembled", UploadId=up, PartNumber=1,
                    Body=b"p" * PART)
    etag = alt.upload_part_copy(Bucket="granted", Key="assembled", UploadId=up, PartNumber=2,
                                CopySource={"Bucket": "granted", "Key": "big"},
                                CopySourceRange="bytes=100-199")["CopyPartResult"]["ETag"]
    alt.complete_multipart_upload(
        Bucket="granted", Key="assembled", UploadId=up, MultipartUpload={"Parts": [
            {"PartNumber": 1, "ETag": alt.list_parts(Bucket="granted", Key="assembled",
                                                     UploadId=up)["Parts"][0]["ETag"]},
            {"PartNumber": 2, "ETag": etag}]})
    assert _body(main, "granted", "assembled") == b"p" * PART + big[100:200]


def test_a_public_read_object_is_copied_by_another_tenant(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.put_object(Bucket="main-own", Key="open", Body=b"for anyone", ACL="public-read")
    main.put_object(Bucket="main-own", Key="closed", Body=b"for main")
    _copy(alt, "alt-own", "open-copy", "main-own/open")
    assert _body(alt, "alt-own", "open-copy") == b"for anyone"
    assert _owner_of(alt, "alt-own", "open-copy") == "alt"
    # The denials that stay: no read on the source...
    assert _refused(alt, "alt-own", "closed-copy", "main-own/closed") == ("AccessDenied", 403)
    up = alt.create_multipart_upload(Bucket="alt-own", Key="mp")["UploadId"]
    assert _error(alt.upload_part_copy, Bucket="alt-own", Key="mp", UploadId=up,
                  PartNumber=1, CopySource={"Bucket": "main-own", "Key": "closed"}) == \
        ("AccessDenied", 403)
    assert alt.list_parts(Bucket="alt-own", Key="mp", UploadId=up).get("Parts", []) == []
    alt.abort_multipart_upload(Bucket="alt-own", Key="mp", UploadId=up)
    # ...and no write on the destination, however readable the source.
    assert _refused(alt, "main-own", "pushed", "main-own/open") == ("AccessDenied", 403)
    assert _refused(alt, "main-own", "pushed", "alt-own/mine") == ("AccessDenied", 403)
    assert _absent(main, "main-own", "pushed")


def test_copies_under_a_bucket_policy(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.create_bucket(Bucket="by-policy")
    main.put_object(Bucket="by-policy", Key="src", Body=b"policy source")
    _policy(main, "by-policy", _allow("*", ["s3:GetObject"], "by-policy/*"),
            _allow({"AWS": "alt"}, ["s3:PutObject"], "by-policy/*"))
    assert _body(alt, "by-policy", "src") == b"policy source"
    _copy(alt, "by-policy", "dst", "by-policy/src")
    assert _body(main, "by-policy", "dst") == b"policy source"
    assert _owner_of(main, "by-policy", "dst") == "main"
    _copy(alt, "alt-own", "from-main", "by-policy/src")
    assert _body(alt, "alt-own", "from-main") == b"policy source"
    _copy(alt, "by-policy", "from-alt", "alt-own/mine")
    assert _body(main, "by-policy", "from-alt") == b"alt's own"
    assert _owner_of(main, "by-policy", "from-alt") == "main"
    # An explicit Deny on the source binds the copier, whatever else allows it.
    _policy(main, "by-policy", _allow("*", ["s3:GetObject"], "by-policy/*"),
            _allow({"AWS": "alt"}, ["s3:PutObject"], "by-policy/*"),
            {"Effect": "Deny", "Principal": {"AWS": "alt"}, "Action": "s3:GetObject",
             "Resource": "arn:aws:s3:::by-policy/src"})
    assert _refused(alt, "alt-own", "denied", "by-policy/src") == ("AccessDenied", 403)


def test_a_missing_source_key_is_told_only_to_who_may_list(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.create_bucket(Bucket="probe-src")
    _policy(main, "probe-src", _allow("*", ["s3:GetObject"], "probe-src/*"))

    assert _refused(alt, "alt-own", "probe", "probe-src/not-there") == ("AccessDenied", 403)
    _policy(main, "probe-src", _allow("*", ["s3:GetObject"], "probe-src/*"),
            _allow("*", ["s3:ListBucket"], "probe-src"))
    assert _refused(alt, "alt-own", "probe", "probe-src/not-there") == ("NoSuchKey", 404)
    assert _refused(alt, "alt-own", "probe", "no-such-source/k") == ("NoSuchBucket", 404)


def test_an_encrypted_source_of_another_tenant(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.create_bucket(Bucket="sealed-src")
    main.put_bucket_encryption(Bucket="sealed-src", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    big = b"encrypted source " * (BIG // 17)
    for key, data in (("tiny", b"tiny secret"), ("big", big)):
        main.put_object(Bucket="sealed-src", Key=key, Body=data, GrantRead="id=alt")
        plain = _copy(alt, "alt-own", f"sealed-{key}", f"sealed-src/{key}")
        assert "ServerSideEncryption" not in plain      # alt's bucket has no default
        assert _body(alt, "alt-own", f"sealed-{key}") == data
        again = _copy(alt, "alt-own", f"resealed-{key}", f"sealed-src/{key}",
                      ServerSideEncryption="AES256")
        assert again["ServerSideEncryption"] == "AES256"
        assert _body(alt, "alt-own", f"resealed-{key}") == data


def test_a_version_of_another_tenants_object(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.create_bucket(Bucket="versioned-src")
    main.put_bucket_versioning(Bucket="versioned-src",
                               VersioningConfiguration={"Status": "Enabled"})
    first = main.put_object(Bucket="versioned-src", Key="doc", Body=b"first")["VersionId"]
    main.put_object(Bucket="versioned-src", Key="doc", Body=b"second")
    _policy(main, "versioned-src", _allow({"AWS": "alt"}, ["s3:GetObject"],
                                          "versioned-src/*"))
    old = {"Bucket": "versioned-src", "Key": "doc", "VersionId": first}
    # s3:GetObject reads the current version only; an old one needs s3:GetObjectVersion.
    assert _error(alt.copy_object, Bucket="alt-own", Key="old", CopySource=old) == \
        ("AccessDenied", 403)
    _copy(alt, "alt-own", "current", "versioned-src/doc")
    assert _body(alt, "alt-own", "current") == b"second"
    _policy(main, "versioned-src", _allow({"AWS": "alt"}, ["s3:GetObject",
                                                           "s3:GetObjectVersion"],
                                          "versioned-src/*"))
    copied = alt.copy_object(Bucket="alt-own", Key="old", CopySource=old)
    assert copied["CopySourceVersionId"] == first
    assert _body(alt, "alt-own", "old") == b"first"


def test_uploads_name_their_initiator(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    main.create_bucket(Bucket="shared-uploads", ACL="public-read-write")
    by_main = main.create_multipart_upload(Bucket="shared-uploads", Key="a")["UploadId"]
    by_alt = alt.create_multipart_upload(Bucket="shared-uploads", Key="b")["UploadId"]
    listed = main.list_multipart_uploads(Bucket="shared-uploads")["Uploads"]
    seen = {u["UploadId"]: (u["Initiator"]["ID"], u["Initiator"]["DisplayName"],
                            u["Owner"]["ID"]) for u in listed}
    # The object will be the bucket owner's (Coffre's objects belong to their bucket's).
    assert seen == {by_main: ("main", "main", "main"), by_alt: ("alt", "alt", "main")}
    parts = alt.list_parts(Bucket="shared-uploads", Key="b", UploadId=by_alt)
    assert (parts["Initiator"]["ID"], parts["Owner"]["ID"]) == ("alt", "main")
    for key, up in (("a", by_main), ("b", by_alt)):
        main.abort_multipart_upload(Bucket="shared-uploads", Key=key, UploadId=up)
