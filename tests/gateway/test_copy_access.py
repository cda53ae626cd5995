"""What a copy must be allowed on its source: the GET of it by the requester itself, with
every basis a GET has (ownership, a policy, an ACL grant), and the version form of the
action when the copy names a version. Also the parsing of x-amz-copy-source."""

from __future__ import annotations

import dataclasses
import json

import pytest

from gateway import acl, errors
from gateway.access import (
    AccessRequest,
    Basis,
    CopySourceName,
    copy_source_of,
    decide,
    source_read,
)
from gateway.manifest import BucketRecord

OWNER = "agency-a"
COPIER = "agency-b"


def _bucket(**kw: object) -> BucketRecord:
    base = BucketRecord("src", b"\x03" * 8, OWNER, 1_700_000_000_000, 4, 2, 8)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def _copy(who: str | None, raw: str = "src/data.csv") -> AccessRequest:
    # The copy is signed by `who`; it may act as another tenant on its destination.
    return AccessRequest("CopyObject", "dst", "out", who, "10.0.0.9", copy_source=raw)


def _read_basis(who: str | None, bucket: BucketRecord, grants: acl.Grants | None = (),
                raw: str = "src/data.csv") -> Basis | None:
    source = copy_source_of(raw)
    assert source is not None
    try:
        return decide(source_read(_copy(who, raw), source), bucket, grants)
    except errors.S3Error as exc:
        assert (exc.code, exc.status) == ("AccessDenied", 403)
        return None


@pytest.mark.parametrize("raw, want", [
    ("src/data.csv", CopySourceName("src", "data.csv")),
    ("/src/data.csv", CopySourceName("src", "data.csv")),
    ("src/dir%2Fa%20b.csv", CopySourceName("src", "dir/a b.csv")),
    ("/src/k?versionId=3HL4kqtJvjVBH40Nrjfkd", CopySourceName("src", "k",
                                                              "3HL4kqtJvjVBH40Nrjfkd")),
    ("src/k?versionId=", CopySourceName("src", "k", "")),
    ("src", None), ("src/", None), ("/", None), ("", None), ("//src/k", None),
])
def test_copy_source_header(raw: str, want: CopySourceName | None) -> None:
    assert copy_source_of(raw) == want


def test_the_source_read_is_the_requesters_own_get() -> None:
    source = CopySourceName("src", "data.csv", "v1")
    read = source_read(_copy(COPIER), source)
    assert (read.op, read.bucket, read.key, read.principal, read.source_ip, read.version_id) \
        == ("GetObject", "src", "data.csv", COPIER, "10.0.0.9", "v1")


def test_another_tenants_source_is_readable_by_grant_or_policy() -> None:
    private = _bucket()
    assert _read_basis(OWNER, private) is Basis.OWNER
    assert _read_basis(COPIER, private) is None
    assert _read_basis(None, private) is None
    granted = acl.parse(
        f"<AccessControlPolicy><Owner><ID>{OWNER}</ID></Owner><AccessControlList><Grant>"
        '<Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:type="CanonicalUser"><ID>{COPIER}</ID></Grantee>'
        "<Permission>FULL_CONTROL</Permission></Grant></AccessControlList>"
        "</AccessControlPolicy>".encode(), OWNER)
    assert _read_basis(COPIER, private, granted) is Basis.ACL
    assert _read_basis(COPIER, private, acl.canned("public-read", OWNER)) is Basis.ACL
    assert _read_basis(COPIER, private, None) is None      # no such object, no grant
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::src/*"}]})
    open_data = _bucket(policy=policy)
    assert _read_basis(COPIER, open_data) is Basis.POLICY
    assert _read_basis(None, open_data) is Basis.POLICY
    # A named version needs s3:GetObjectVersion, which that policy does not grant.
    assert _read_basis(COPIER, open_data, raw="src/data.csv?versionId=v1") is None
    assert _read_basis(OWNER, open_data, raw="src/data.csv?versionId=v1") is Basis.OWNER


def test_a_deny_on_the_source_binds_the_copier() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::src/*"},
        {"Effect": "Deny", "Principal": {"AWS": COPIER}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::src/secret/*"}]})
    b = _bucket(policy=policy)
    assert _read_basis(COPIER, b, acl.canned("public-read", OWNER),
                       raw="src/secret/x") is None
    assert _read_basis(COPIER, b, raw="src/open/x") is Basis.POLICY
