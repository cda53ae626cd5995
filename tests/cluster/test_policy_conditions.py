"""Bucket-policy conditions on a real cluster, with two tenants (`main` owns the buckets,
`alt` is another account): the cases of Ceph's s3-tests that Coffre used to decide wrongly
(ACL and grant headers, request and existing object tags, encryption headers with Null),
NotPrincipal and its public status, PutObjectTagging's body tags, a browser POST's fields,
the signature's keys, and an unknown condition key refused with MalformedPolicy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster
from tests.cluster.test_cross_tenant_copy import _error
from tests.cluster.test_tenants import _post_form, new_tenant


@pytest.fixture(scope="module")
def pair(cluster: Cluster) -> dict[str, Any]:
    _, main = new_tenant(cluster, "main")
    _, alt = new_tenant(cluster, "alt")
    return {"main": main, "alt": alt}


def _bucket(s3: Any, name: str, *statements: dict[str, Any]) -> None:
    s3.create_bucket(Bucket=name)
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps(
        {"Version": "2012-10-17", "Statement": list(statements)}))


def _rule(bucket: str, action: str, condition: dict[str, Any] | None = None,
          effect: str = "Allow", **kw: Any) -> dict[str, Any]:
    out = {"Effect": effect, "Principal": "*", "Action": action,
           "Resource": f"arn:aws:s3:::{bucket}/*", **kw}
    return {**out, "Condition": condition} if condition else out


def _absent(s3: Any, bucket: str, key: str) -> bool:
    return _error(s3.head_object, Bucket=bucket, Key=key)[1] == 404


def test_deny_on_a_public_acl_header(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    _bucket(main, "pc-acl", _rule("pc-acl", "s3:PutObject"),
            _rule("pc-acl", "s3:PutObject", {"StringLike": {"s3:x-amz-acl": "public*"}},
                  "Deny"))
    alt.put_object(Bucket="pc-acl", Key="private-key", Body=b"x")
    assert _error(alt.put_object, Bucket="pc-acl", Key="public-key", Body=b"x",
                  ACL="public-read") == ("AccessDenied", 403)
    assert _absent(main, "pc-acl", "public-key")
    # The Deny binds the owner too.
    assert _error(main.put_object, Bucket="pc-acl", Key="public-key", Body=b"x",
                  ACL="public-read") == ("AccessDenied", 403)


def test_allow_on_a_grant_header(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    _bucket(main, "pc-grant", _rule("pc-grant", "s3:PutObject", {
        "StringEquals": {"s3:x-amz-grant-full-control": "id=main"}}))
    alt.put_object(Bucket="pc-grant", Key="granted", Body=b"x", GrantFullControl="id=main")
    # Objects belong to their bucket's owner, whoever wrote them.
    assert main.get_object_acl(Bucket="pc-grant", Key="granted")["Owner"]["ID"] == "main"
    assert _error(alt.put_object, Bucket="pc-grant", Key="plain", Body=b"x") == \
        ("AccessDenied", 403)
    assert _absent(main, "pc-grant", "plain")


def test_allow_on_request_tags(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    _bucket(main, "pc-rtag", _rule("pc-rtag", "s3:PutObject", {
        "StringEquals": {"s3:RequestObjectTag/security": "public"}}))
    assert _error(alt.put_object, Bucket="pc-rtag", Key="untagged", Body=b"x") == \
        ("AccessDenied", 403)
    alt.put_object(Bucket="pc-rtag", Key="tagged", Body=b"x", Tagging="security=public")
    assert main.get_object_tagging(Bucket="pc-rtag", Key="tagged")["TagSet"] == [
        {"Key": "security", "Value": "public"}]


def test_allow_on_existing_tags(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    _bucket(main, "pc-etag", _rule("pc-etag", "s3:GetObjectAcl", {
        "StringEquals": {"s3:ExistingObjectTag/security": "public"}}))
    for key, tagging in (("publictag", "security=public"), ("privatetag", "security=private"),
                         ("invalidtag", "security1=public")):
        main.put_object(Bucket="pc-etag", Key=key, Body=key.encode(), Tagging=tagging)
    assert alt.get_object_acl(Bucket="pc-etag", Key="publictag")["Owner"]["ID"] == "main"
    for key in ("privatetag", "invalidtag"):
        assert _error(alt.get_object_acl, Bucket="pc-etag", Key=key) == ("AccessDenied", 403)
    # The tags grant GetObjectAcl only, not the object itself.
    assert _error(alt.get_object, Bucket="pc-etag", Key="publictag") == ("AccessDenied", 403)


def test_deny_without_sse_s3(pair: dict[str, Any]) -> None:
    main = pair["main"]
    _bucket(main, "pc-sse",
            _rule("pc-sse", "s3:PutObject", {"StringNotEquals": {
                "s3:x-amz-server-side-encryption": "AES256"}}, "Deny"),
            _rule("pc-sse", "s3:PutObject", {"Null": {
                "s3:x-amz-server-side-encryption": "true"}}, "Deny"))
    assert _error(main.put_object, Bucket="pc-sse", Key="testobj", Body=b"x") == \
        ("AccessDenied", 403)
    assert _error(main.put_object, Bucket="pc-sse", Key="testobj", Body=b"x",
                  ServerSideEncryption="aws:kms", SSEKMSKeyId="key") == ("AccessDenied", 403)
    got = main.put_object(Bucket="pc-sse", Key="testobj", Body=b"x",
                          ServerSideEncryption="AES256")
    assert got["ServerSideEncryption"] == "AES256"


def test_not_principal_and_its_public_status(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    _bucket(main, "pc-notp", {
        "Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::s3tenant1:root"},
        "Action": "s3:ListBucket", "Resource": ["arn:aws:s3:::pc-notp",
                                                "arn:aws:s3:::pc-notp/*"]})
    assert main.get_bucket_policy_status(Bucket="pc-notp")["PolicyStatus"]["IsPublic"]
    alt.list_objects_v2(Bucket="pc-notp")
    main.put_bucket_policy(Bucket="pc-notp", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
             "Resource": "arn:aws:s3:::pc-notp"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": "main"}, "Action": "s3:ListBucket",
             "Resource": "arn:aws:s3:::pc-notp"}]}))
    assert _error(alt.list_objects_v2, Bucket="pc-notp") == ("AccessDenied", 403)
    main.list_objects_v2(Bucket="pc-notp")


def test_unknown_condition_key_is_refused(pair: dict[str, Any]) -> None:
    main = pair["main"]
    _bucket(main, "pc-bad", _rule("pc-bad", "s3:GetObject"))
    before = main.get_bucket_policy(Bucket="pc-bad")["Policy"]
    bad = json.dumps({"Version": "2012-10-17", "Statement": [_rule(
        "pc-bad", "s3:GetObject", {"StringEquals": {"s3:no-such-key": "x"}})]})
    with pytest.raises(ClientError) as info:
        main.put_bucket_policy(Bucket="pc-bad", Policy=bad)
    err = info.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == \
        ("MalformedPolicy", 400)
    assert err["Error"]["Message"] == "Policy has an invalid condition key"
    assert main.get_bucket_policy(Bucket="pc-bad")["Policy"] == before


def test_put_object_tagging_decided_on_its_body(pair: dict[str, Any]) -> None:
    main, alt = pair["main"], pair["alt"]
    _bucket(main, "pc-ptag", _rule("pc-ptag", "s3:PutObjectTagging", {
        "ForAllValues:StringEquals": {"s3:RequestObjectTagKeys": ["team", "security"]}}))
    main.put_object(Bucket="pc-ptag", Key="k", Body=b"x", Tagging="team=a")
    alt.put_object_tagging(Bucket="pc-ptag", Key="k", Tagging={"TagSet": [
        {"Key": "security", "Value": "public"}]})
    assert main.get_object_tagging(Bucket="pc-ptag", Key="k")["TagSet"] == [
        {"Key": "security", "Value": "public"}]
    assert _error(alt.put_object_tagging, Bucket="pc-ptag", Key="k", Tagging={"TagSet": [
        {"Key": "owner", "Value": "alt"}]}) == ("AccessDenied", 403)
    assert main.get_object_tagging(Bucket="pc-ptag", Key="k")["TagSet"] == [
        {"Key": "security", "Value": "public"}]
    # Nothing is told of a missing key to one the policy refuses.
    assert _error(alt.put_object_tagging, Bucket="pc-ptag", Key="none", Tagging={"TagSet": [
        {"Key": "owner", "Value": "alt"}]}) == ("AccessDenied", 403)


def test_browser_post_fields_are_condition_keys(cluster: Cluster, pair: dict[str, Any]
                                                ) -> None:
    main = pair["main"]
    _bucket(main, "pc-post", _rule("pc-post", "s3:PutObject"),
            _rule("pc-post", "s3:PutObject", {"StringLike": {"s3:x-amz-acl": "public*"}},
                  "Deny"))
    url = f"{cluster.endpoint}/pc-post"
    assert _post_form(url, {"key": "open", "acl": "public-read"}, "f", b"x")[0] == 403
    assert _absent(main, "pc-post", "open")
    assert _post_form(url, {"key": "closed", "acl": "private"}, "f", b"x")[0] == 204


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def test_signature_and_transport_keys(pair: dict[str, Any]) -> None:
    main = pair["main"]
    _bucket(main, "pc-sig", _rule("pc-sig", "s3:GetObject", {
        "StringEquals": {"s3:authType": "REST-QUERY-STRING"}}, "Deny"))
    main.put_object(Bucket="pc-sig", Key="k", Body=b"x")
    assert main.get_object(Bucket="pc-sig", Key="k")["Body"].read() == b"x"
    url = main.generate_presigned_url("get_object", Params={"Bucket": "pc-sig", "Key": "k"})
    assert _status(url) == 403
    main.put_bucket_policy(Bucket="pc-sig", Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [_rule("pc-sig", "s3:GetObject", {
            "Bool": {"aws:SecureTransport": False}}, "Deny")]}))
    assert _error(main.get_object, Bucket="pc-sig", Key="k") == ("AccessDenied", 403)
    main.delete_bucket_policy(Bucket="pc-sig")
    assert _status(url) == 200
