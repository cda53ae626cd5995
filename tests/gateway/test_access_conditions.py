"""Bucket-policy conditions in the authorization decision: the request's keys reach the
policy (the s3-tests cases: ACL and grant headers, request and existing object tags,
encryption), the object's tags are fetched only when a statement that applies reads them,
a PutObjectTagging whose body tags the policy reads waits for its handler, and a bucket
without a policy builds no context at all."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any, cast

import pytest

from gateway import access, condition_keys, errors
from gateway.access import AccessRequest, Basis, authorize, decide
from gateway.catalog import Catalog
from gateway.condition_keys import RequestFacts
from gateway.manifest import BucketRecord, Manifest

OWNER, ALT = "main", "alt"
NAME = "pb"


def bucket(*statements: dict[str, Any]) -> BucketRecord:
    text = json.dumps({"Version": "2012-10-17", "Statement": list(statements)}) \
        if statements else ""
    return BucketRecord(NAME, b"\x02" * 8, OWNER, 1_700_000_000_000, 4, 2, 8, policy=text)


def rule(action: str, condition: dict[str, Any] | None = None, effect: str = "Allow",
         resource: str = f"arn:aws:s3:::{NAME}/*") -> dict[str, Any]:
    out = {"Effect": effect, "Principal": "*", "Action": action, "Resource": resource}
    return {**out, "Condition": condition} if condition else out


def req(op: str, who: str | None = ALT, headers: dict[str, str] | None = None,
        key: str = "k", **facts: Any) -> AccessRequest:
    return AccessRequest(op, NAME, key, who, "10.0.0.1",
                         facts=RequestFacts(headers or {}, **facts))


def allowed(r: AccessRequest, b: BucketRecord, tags: condition_keys.Tags | None = None
            ) -> bool:
    try:
        decide(r, b, None, tags)
    except errors.S3Error as exc:
        assert (exc.code, exc.status) == ("AccessDenied", 403)
        return False
    return True


def test_acl_header_deny() -> None:     # s3-tests test_bucket_policy_put_obj_acl
    b = bucket(rule("s3:PutObject"),
               rule("s3:PutObject", {"StringLike": {"s3:x-amz-acl": "public*"}}, "Deny"))
    assert allowed(req("PutObject"), b)
    assert not allowed(req("PutObject", headers={"x-amz-acl": "public-read"}), b)
    assert not allowed(req("PutObject", OWNER, {"x-amz-acl": "public-read"}), b)


def test_grant_header_allow() -> None:  # s3-tests test_bucket_policy_put_obj_grant
    b = bucket(rule("s3:PutObject",
                    {"StringEquals": {"s3:x-amz-grant-full-control": f"id={OWNER}"}}))
    assert allowed(req("PutObject", headers={"x-amz-grant-full-control": f"id={OWNER}"}), b)
    assert not allowed(req("PutObject"), b)
    assert not allowed(req("PutObject", headers={"x-amz-grant-full-control": "id=alt"}), b)


def test_request_tag_allow() -> None:   # s3-tests test_bucket_policy_put_obj_request_obj_tag
    b = bucket(rule("s3:PutObject", {"StringEquals": {"s3:RequestObjectTag/security":
                                                      "public"}}))
    assert allowed(req("PutObject", headers={"x-amz-tagging": "security=public"}), b)
    assert not allowed(req("PutObject", headers={"x-amz-tagging": "security=private"}), b)
    assert not allowed(req("PutObject"), b)


def test_existing_tag_allow() -> None:  # s3-tests test_bucket_policy_get_obj_acl_existing_tag
    b = bucket(rule("s3:GetObjectAcl", {"StringEquals": {"s3:ExistingObjectTag/security":
                                                         "public"}}))
    assert allowed(req("GetObjectAcl"), b, (("security", "public"),))
    assert not allowed(req("GetObjectAcl"), b, (("security", "private"),))
    assert not allowed(req("GetObjectAcl"), b, (("security1", "public"),))
    assert not allowed(req("GetObjectAcl"), b, None)


def test_encryption_denies() -> None:   # s3-tests test_bucket_policy_put_obj_s3_noenc
    b = bucket(rule("s3:PutObject", {"StringNotEquals": {"s3:x-amz-server-side-encryption":
                                                         "AES256"}}, "Deny"),
               rule("s3:PutObject", {"Null": {"s3:x-amz-server-side-encryption": "true"}},
                    "Deny"))
    aes = {"x-amz-server-side-encryption": "AES256"}
    assert allowed(req("PutObject", OWNER, aes), b)
    assert not allowed(req("PutObject", OWNER), b)
    assert not allowed(req("PutObject", OWNER, {"x-amz-server-side-encryption": "aws:kms"}),
                       b)


def test_no_policy_builds_no_context(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any, **_k: Any) -> condition_keys.Context:
        raise AssertionError("a context was built for a bucket without a policy")

    monkeypatch.setattr(condition_keys, "context", boom)
    b = dataclasses.replace(bucket(), acl=())
    assert decide(req("PutObject", OWNER, {"x-amz-acl": "private"}), b) is Basis.OWNER
    assert not access.needs_object_tags(req("GetObject"), b)
    assert not access.waits_for_body_tags(req("PutObjectTagging"), b)


class FakeCatalog:
    """The two lookups `authorize` makes, counted."""

    def __init__(self, b: BucketRecord, tags: tuple[tuple[str, str], ...]) -> None:
        self.b, self.tags, self.object_reads = b, tags, 0

    async def find_bucket(self, name: str) -> BucketRecord | None:
        return self.b if name == self.b.name else None

    async def get_object(self, _b: BucketRecord, _key: bytes) -> tuple[Manifest, int] | None:
        self.object_reads += 1
        return Manifest(1, '"e"', 0, tags=self.tags), 0


def run(b: BucketRecord, r: AccessRequest, tags: tuple[tuple[str, str], ...] = ()
        ) -> tuple[Basis | None, int]:
    fake = FakeCatalog(b, tags)
    try:
        basis: Basis | None = asyncio.run(authorize(cast(Catalog, fake), r)).basis
    except errors.S3Error:
        basis = None
    return basis, fake.object_reads


def test_object_tags_fetched_only_when_a_statement_that_applies_reads_them() -> None:
    reads_tags = rule("s3:GetObjectTagging", {"StringEquals": {
        "s3:ExistingObjectTag/security": "public"}}, resource=f"arn:aws:s3:::{NAME}/open/*")
    b = bucket(reads_tags, rule("s3:PutObject"))
    public = (("security", "public"),)
    assert run(b, req("GetObjectTagging", key="open/x"), public) == (Basis.POLICY, 1)
    assert run(b, req("GetObjectTagging", key="open/x"), ()) == (None, 1)
    # Another resource, another action, a plain PUT: no statement that applies reads them.
    assert run(b, req("GetObjectTagging", key="closed/x"), public) == (None, 0)
    assert run(b, req("PutObject", key="open/x"), public) == (Basis.POLICY, 0)
    assert run(b, req("PutObjectTagging", key="open/x"), public) == (None, 0)


def test_body_tags_make_put_object_tagging_wait_for_its_handler() -> None:
    b = bucket(rule("s3:PutObjectTagging", {"ForAllValues:StringEquals": {
        "s3:RequestObjectTagKeys": ["security"]}}))
    assert run(b, req("PutObjectTagging"))[0] is Basis.PENDING
    asked = req("PutObjectTagging", body_tags=(("security", "public"),))
    assert run(b, asked)[0] is Basis.POLICY
    assert run(b, req("PutObjectTagging", body_tags=(("other", "x"),)))[0] is None
    # A policy that reads no request tags decides at once.
    plain = bucket(rule("s3:PutObjectTagging"))
    assert run(plain, req("PutObjectTagging"))[0] is Basis.POLICY
