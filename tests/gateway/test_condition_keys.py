"""The request context of bucket-policy conditions (gateway/condition_keys.py): each key
filled for the operations AWS fills it for, with AWS's values, and only there; which keys
a policy may name."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import condition_keys as ck
from gateway.condition_keys import RequestFacts, Subject

NOW = 1_700_000_000.0       # 2023-11-14T22:13:20Z


def ctx(op: str, headers: dict[str, str] | None = None, principal: str | None = "agency-b",
        existing: ck.Tags | None = None, **kw: Any) -> ck.Context:
    subject_kw = {k: kw.pop(k) for k in ("prefix", "version_id") if k in kw}
    facts = RequestFacts(headers or {}, now_s=NOW, **kw)
    return ck.context(Subject(op, principal, "10.0.0.1", "agency-a", **subject_kw), facts,
                      existing)


def test_global_and_principal_keys() -> None:
    c = ctx("GetObject", {"user-agent": "boto3/1.0", "referer": "https://x.example/"},
            secure=True)
    assert c["aws:sourceip"] == ("10.0.0.1",)
    assert c["aws:securetransport"] == ("true",)
    assert c["aws:currenttime"] == ("2023-11-14T22:13:20Z",)
    assert c["aws:epochtime"] == ("1700000000",)
    assert c["aws:useragent"] == ("boto3/1.0",) and c["aws:referer"] == ("https://x.example/",)
    assert c["aws:principaltype"] == ("Account",) and c["aws:userid"] == ("agency-b",)
    assert c["aws:principalaccount"] == ("agency-b",)
    assert c["aws:principalarn"] == ("arn:aws:iam::agency-b:root",)
    assert c["s3:resourceaccount"] == ("agency-a",)
    anon = ctx("GetObject", principal=None)
    assert anon["aws:principaltype"] == ("Anonymous",) and anon["aws:userid"] == ("anonymous",)
    assert "aws:principalarn" not in anon and "aws:principalaccount" not in anon
    assert anon["aws:securetransport"] == ("false",)
    assert "aws:useragent" not in anon


ACL_HEADERS = {"x-amz-acl": "public-read", "x-amz-grant-read": "id=x",
               "x-amz-grant-write": "id=w", "x-amz-grant-read-acp": "id=r",
               "x-amz-grant-write-acp": "id=wa", "x-amz-grant-full-control": "id=admin"}


@pytest.mark.parametrize("op", ["PutObject", "CopyObject", "CreateMultipartUpload",
                                "PutObjectAcl", "PutBucketAcl"])
def test_acl_headers_where_they_ask_for_an_acl(op: str) -> None:
    c = ctx(op, ACL_HEADERS)
    for header, value in ACL_HEADERS.items():
        assert c["s3:" + header] == (value,)


@pytest.mark.parametrize("op", ["GetObject", "UploadPart", "DeleteObject", "ListObjects"])
def test_acl_headers_mean_nothing_elsewhere(op: str) -> None:
    c = ctx(op, ACL_HEADERS)
    assert not any(k.startswith("s3:x-amz-") for k in c)


def test_write_headers() -> None:
    headers = {"x-amz-server-side-encryption": "aws:kms",
               "x-amz-server-side-encryption-aws-kms-key-id": "key-1",
               "x-amz-storage-class": "STANDARD_IA", "x-amz-metadata-directive": "REPLACE",
               "x-amz-copy-source": "/src/dir%2Fa%20b.csv?versionId=v1",
               "x-amz-object-lock-mode": "GOVERNANCE",
               "x-amz-object-lock-retain-until-date": "2023-11-20T00:00:00Z",
               "x-amz-object-lock-legal-hold": "ON"}
    c = ctx("CopyObject", headers)
    assert c["s3:x-amz-server-side-encryption"] == ("aws:kms",)
    assert c["s3:x-amz-server-side-encryption-aws-kms-key-id"] == ("key-1",)
    assert c["s3:x-amz-storage-class"] == ("STANDARD_IA",)
    assert c["s3:x-amz-metadata-directive"] == ("REPLACE",)
    assert c["s3:x-amz-copy-source"] == ("src/dir/a b.csv",)
    assert c["s3:object-lock-mode"] == ("GOVERNANCE",)
    assert c["s3:object-lock-legal-hold"] == ("ON",)
    assert c["s3:object-lock-retain-until-date"] == ("2023-11-20T00:00:00Z",)
    assert c["s3:object-lock-remaining-retention-days"] == ("6",)
    put = ctx("PutObject", headers)
    assert "s3:x-amz-copy-source" not in put and "s3:x-amz-metadata-directive" not in put
    assert ctx("UploadPartCopy", headers)["s3:x-amz-copy-source"] == ("src/dir/a b.csv",)
    assert "s3:x-amz-server-side-encryption" not in ctx("GetObject", headers)


def test_request_tags_from_the_header_or_the_body() -> None:
    c = ctx("PutObject", {"x-amz-tagging": "security=public&Project=a%20b"})
    assert c["s3:requestobjecttag/security"] == ("public",)
    assert c["s3:requestobjecttag/project"] == ("a b",)      # key names: case-insensitive
    assert c["s3:requestobjecttagkeys"] == ("security", "Project")
    assert "s3:requestobjecttagkeys" not in ctx("PutObject")
    # A copy takes the header's tags only with the REPLACE directive.
    assert "s3:requestobjecttagkeys" not in ctx("CopyObject", {"x-amz-tagging": "a=b"})
    assert ctx("CopyObject", {"x-amz-tagging": "a=b", "x-amz-tagging-directive": "REPLACE"})[
        "s3:requestobjecttag/a"] == ("b",)
    # PutObjectTagging's tags are in its body, which only the handler reads.
    assert "s3:requestobjecttagkeys" not in ctx("PutObjectTagging", {"x-amz-tagging": "a=b"})
    body = ctx("PutObjectTagging", body_tags=(("security", "public"),))
    assert body["s3:requestobjecttag/security"] == ("public",)
    assert ctx("PutObjectTagging", body_tags=())["s3:requestobjecttagkeys"] == ()
    assert "s3:requestobjecttagkeys" not in ctx("GetObject", body_tags=(("a", "b"),))


def test_existing_tags_only_for_the_actions_aws_names() -> None:
    tags = (("security", "public"), ("Team", "x"))
    for op in ("GetObject", "HeadObject", "GetObjectAcl", "PutObjectAcl", "GetObjectTagging",
               "PutObjectTagging", "DeleteObjectTagging"):
        c = ctx(op, existing=tags)
        assert c["s3:existingobjecttag/security"] == ("public",), op
        assert c["s3:existingobjecttag/team"] == ("x",), op
    for op in ("PutObject", "DeleteObject", "CopyObject"):
        assert not any(k.startswith("s3:existingobjecttag/") for k in ctx(op, existing=tags))


def test_listing_keys() -> None:
    query = {"prefix": "logs/", "delimiter": "/", "max-keys": "5"}
    c = ctx("ListObjectsV2", query=query, prefix="logs/")
    assert (c["s3:prefix"], c["s3:delimiter"], c["s3:max-keys"]) == \
        (("logs/",), ("/",), ("5",))
    bare = ctx("ListObjects", prefix="")
    assert bare["s3:prefix"] == ("",) and "s3:delimiter" not in bare
    assert "s3:prefix" not in ctx("ListObjects")        # the prefix was not asked about
    assert "s3:prefix" not in ctx("GetObject", query=query, prefix="x")
    assert ctx("GetObject", version_id="v1")["s3:versionid"] == ("v1",)
    assert "s3:versionid" not in ctx("GetObject")


def test_signature_keys() -> None:
    assert "s3:authtype" not in ctx("GetObject")         # unsigned
    header = ctx("PutObject", {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
                 signature_version=ck.SIGV4, auth_type=ck.AUTH_HEADER)
    assert header["s3:signatureversion"] == ("AWS4-HMAC-SHA256",)
    assert header["s3:authtype"] == ("REST-HEADER",)
    assert header["s3:x-amz-content-sha256"] == ("UNSIGNED-PAYLOAD",)
    assert "s3:signatureage" not in header
    query = ctx("GetObject", signature_version=ck.SIGV4, auth_type=ck.AUTH_QUERY,
                signed_at_s=NOW - 90)
    assert query["s3:authtype"] == ("REST-QUERY-STRING",)
    assert query["s3:signatureage"] == ("90000",)
    v2 = ctx("GetObject", signature_version=ck.SIGV2, auth_type=ck.AUTH_QUERY)
    assert v2["s3:signatureversion"] == ("AWS",) and v2["s3:signatureage"] == ("0",)


def test_known_keys() -> None:
    for key in ("aws:sourceip", "s3:x-amz-acl", "s3:existingobjecttag/security",
                "s3:requestobjecttag/a/b", "s3:requestobjecttagkeys", "s3:max-keys",
                "s3:object-lock-remaining-retention-days", "aws:currenttime"):
        assert ck.known(key), key
    for key in ("aws:sourcevpc", "s3:existingobjecttag/", "s3:x-amz-made-up", "aws:username",
                "s3:locationconstraint", "S3:X-AMZ-ACL"):
        assert not ck.known(key), key
