"""ACLs (canned, grant headers, AccessControlPolicy XML), the authorization decision that
combines ownership, policy, ACLs and the public access block, CORS matching, and the
version-1 and version-2 bucket records and manifests."""

from __future__ import annotations

import dataclasses
import json

import msgpack
import pytest

from gateway import acl, cors, errors
from gateway.access import AccessRequest, Basis, decide, needs_object_acl
from gateway.acl import ALL_USERS_URI, AUTHENTICATED_URI, Grant, GranteeKind, Permission
from gateway.manifest import BucketRecord, Manifest

OWNER = "agency-a"
OTHER = "agency-b"


def bucket(**kw: object) -> BucketRecord:
    base = BucketRecord("open-data", b"\x01" * 8, OWNER, 1_700_000_000_000, 4, 2, 8)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


# ---- canned ACLs and headers -------------------------------------------------------------


def test_canned_acls() -> None:
    assert acl.canned("private", OWNER) == (
        Grant(GranteeKind.TENANT, OWNER, Permission.FULL_CONTROL),)
    public = acl.canned("public-read", OWNER)
    assert acl.allows(public, None, Permission.READ)
    assert not acl.allows(public, None, Permission.WRITE)
    assert acl.allows(acl.canned("public-read-write", OWNER), None, Permission.WRITE)
    auth = acl.canned("authenticated-read", OWNER)
    assert acl.allows(auth, OTHER, Permission.READ) and not acl.allows(auth, None,
                                                                       Permission.READ)
    assert acl.is_public(public) and not acl.is_public(acl.canned("private", OWNER))
    with pytest.raises(errors.S3Error) as exc:
        acl.canned("world-writable", OWNER)
    assert exc.value.code == "InvalidArgument"


def test_ignore_public_acls() -> None:
    public = acl.canned("public-read", OWNER)
    assert not acl.allows(public, None, Permission.READ, ignore_public=True)
    assert acl.allows(public, OWNER, Permission.READ, ignore_public=True)


def test_grant_headers() -> None:
    grants = acl.from_headers({
        "x-amz-grant-read": f'uri="{ALL_USERS_URI}", id="{OTHER}"',
        "x-amz-grant-full-control": f'id="{OWNER}"',
    }, OWNER)
    assert grants is not None
    assert acl.allows(grants, None, Permission.READ)
    assert acl.allows(grants, OTHER, Permission.READ)
    assert not acl.allows(grants, OTHER, Permission.WRITE)
    assert acl.from_headers({}, OWNER) is None
    with pytest.raises(errors.S3Error):
        acl.from_headers({"x-amz-acl": "private", "x-amz-grant-read": 'id="x"'}, OWNER)
    with pytest.raises(errors.UnresolvableGrantByEmailAddress):   # tenants have none
        acl.from_headers({"x-amz-grant-read": 'emailAddress="a@b.c"'}, OWNER)


def test_acl_xml_round_trip() -> None:
    grants = (*acl.canned("public-read", OWNER),
              Grant(GranteeKind.GROUP, AUTHENTICATED_URI, Permission.READ_ACP),
              Grant(GranteeKind.TENANT, OTHER, Permission.WRITE))
    xml = acl.render(grants, OWNER)
    assert xml.startswith(b"<?xml") and b"<AccessControlPolicy" in xml
    assert acl.parse(xml, OWNER) == grants
    # An empty stored ACL reads as the owner alone.
    assert acl.parse(acl.render((), OWNER), OWNER) == acl.canned("private", OWNER)


def test_acl_xml_refusals() -> None:
    with pytest.raises(errors.S3Error) as exc:
        acl.parse(acl.render((), OWNER), OTHER)      # claims another owner
    assert exc.value.code == "AccessDenied"
    for bad in (b"<AccessControlPolicy/>", b"not xml", b"<Other/>",
                b"<AccessControlPolicy><AccessControlList><Grant><Permission>READ"
                b"</Permission></Grant></AccessControlList></AccessControlPolicy>",
                b"<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x</ID>"
                b"</Grantee><Permission>EVERYTHING</Permission></Grant></AccessControlList>"
                b"</AccessControlPolicy>"):
        with pytest.raises(errors.S3Error) as exc:
            acl.parse(bad, OWNER)
        assert exc.value.status == 400


# ---- the decision ------------------------------------------------------------------------


def req(op: str, who: str | None, key: str | None = "k", **kw: object) -> AccessRequest:
    return AccessRequest(op, "open-data", key, who, "10.0.0.1", **kw)  # type: ignore[arg-type]


def denied(r: AccessRequest, b: BucketRecord, obj: acl.Grants | None = None) -> bool:
    try:
        decide(r, b, obj)
    except errors.S3Error as exc:
        assert exc.code == "AccessDenied"
        return True
    return False


OPS = ["GetObject", "HeadObject", "PutObject", "DeleteObject", "DeleteObjects", "CopyObject",
       "ListObjectsV2", "ListObjects", "HeadBucket", "DeleteBucket", "GetBucketAcl",
       "PutBucketAcl", "GetObjectAcl", "PutObjectAcl", "PutBucketPolicy", "GetBucketPolicy",
       "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "ListParts",
       "AbortMultipartUpload", "ListMultipartUploads", "GetObjectTagging",
       "PutObjectTagging", "PutBucketCors", "GetBucketTagging", "PutPublicAccessBlock"]


@pytest.mark.parametrize("op", OPS)
def test_private_bucket_owner_only(op: str) -> None:
    b = bucket()
    assert decide(req(op, OWNER), b, ()) is Basis.OWNER
    assert denied(req(op, OTHER), b, ())
    assert denied(req(op, None), b, ())


def test_public_read_acls() -> None:
    b = bucket(acl=acl.canned("public-read", OWNER))
    assert decide(req("ListObjectsV2", None, None), b) is Basis.ACL
    # A bucket's READ lists; reading an object needs the object's own grant.
    assert denied(req("GetObject", None), b, ())
    assert decide(req("GetObject", None), b, acl.canned("public-read", OWNER)) is Basis.ACL
    # No such object: whoever may list the bucket may be told so (the handler's NoSuchKey);
    # the object's own ACL is not there to say more, and nothing else is let through.
    assert decide(req("GetObject", None), b, None) is Basis.ABSENT
    assert decide(req("HeadObject", OTHER), b, None) is Basis.ABSENT
    assert denied(req("GetObjectAcl", None), b, None)
    assert denied(req("GetObject", None), bucket(), None)    # may not list: AccessDenied
    ignore_acls = dataclasses.replace(b, public_access_block=(False, True, False, False))
    assert denied(req("GetObject", None), ignore_acls, None)
    assert denied(req("PutObject", None), b)
    rw = bucket(acl=acl.canned("public-read-write", OWNER))
    assert decide(req("PutObject", OTHER), rw) is Basis.ACL
    ignore = dataclasses.replace(b, public_access_block=(False, True, False, False))
    assert denied(req("ListObjectsV2", None, None), ignore)


def test_policy_grants_and_deny_beats_owner() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::open-data", "arn:aws:s3:::open-data/*"]},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": "arn:aws:s3:::open-data/embargo/*"},
    ]})
    b = bucket(policy=policy)
    assert decide(req("GetObject", None, "data.csv"), b) is Basis.POLICY
    assert decide(req("ListObjectsV2", None, None), b) is Basis.POLICY
    assert denied(req("GetObject", None, "embargo/x"), b)
    assert denied(req("GetObject", OWNER, "embargo/x"), b)   # a Deny binds the owner too
    assert denied(req("PutObject", OTHER, "data.csv"), b)
    # ...but never its policy management, or it could lock itself out.
    assert decide(req("DeleteBucketPolicy", OWNER, None), b) is Basis.OWNER
    assert denied(req("DeleteBucketPolicy", OTHER, None), b)
    restricted = dataclasses.replace(b, public_access_block=(False, False, False, True))
    assert denied(req("GetObject", None, "data.csv"), restricted)
    assert decide(req("GetObject", OWNER, "data.csv"), restricted) is Basis.OWNER


def test_batch_delete_refused_under_any_matching_deny() -> None:
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::open-data/*"},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject",
         "Resource": "arn:aws:s3:::open-data/keep/*"},
    ]})
    b = bucket(policy=policy)
    assert decide(req("DeleteObject", OTHER, "tmp/x"), b) is Basis.POLICY
    assert denied(req("DeleteObjects", OTHER, None), b)


def test_object_acl_is_fetched_only_when_it_matters() -> None:
    b = bucket()
    assert needs_object_acl(req("GetObject", None), b)
    assert not needs_object_acl(req("GetObject", OWNER), b)
    assert not needs_object_acl(req("PutObject", None), b)


# ---- CORS --------------------------------------------------------------------------------


CORS_XML = b"""<CORSConfiguration><CORSRule><AllowedOrigin>https://portal.example.org
</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod>
<AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>
<MaxAgeSeconds>600</MaxAgeSeconds></CORSRule><CORSRule><AllowedOrigin>*</AllowedOrigin>
<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"""


def test_cors_rules_round_trip_and_preflight() -> None:
    rules = cors.parse(CORS_XML)
    assert cors.parse(cors.render(rules)) == rules
    ok = cors.preflight(rules, {"Origin": "https://portal.example.org",
                                "Access-Control-Request-Method": "GET",
                                "Access-Control-Request-Headers": "X-Amz-Date, x-amz-meta-a"})
    assert ok["Access-Control-Allow-Origin"] == "https://portal.example.org"
    assert ok["Access-Control-Max-Age"] == "600"
    assert ok["Access-Control-Expose-Headers"] == "ETag"
    anyone = cors.preflight(rules, {"Origin": "https://elsewhere.example",
                                    "Access-Control-Request-Method": "GET"})
    assert anyone["Access-Control-Allow-Origin"] == "*"
    for refused in ({"Origin": "https://elsewhere.example",
                     "Access-Control-Request-Method": "PUT"},
                    {"Origin": "https://elsewhere.example",
                     "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}):
        with pytest.raises(cors.AccessForbidden):
            cors.preflight(rules, refused)
    with pytest.raises(errors.S3Error) as exc:
        cors.preflight(rules, {"Access-Control-Request-Method": "GET"})
    assert exc.value.status == 400
    with pytest.raises(cors.AccessForbidden):
        cors.preflight((), {"Origin": "o", "Access-Control-Request-Method": "GET"})
    assert cors.actual(rules, {"Origin": "https://portal.example.org"}, "HEAD")[
        "Access-Control-Allow-Origin"] == "https://portal.example.org"
    assert cors.actual(rules, {"Origin": "https://x.example"}, "DELETE") == {}
    assert cors.actual(rules, {}, "GET") == {}


def test_cors_refusals() -> None:
    for bad in (b"<CORSConfiguration/>",
                b"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin>"
                b"<AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>",
                b"<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin>"
                b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>",
                b"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
                b"</CORSRule></CORSConfiguration>"):
        with pytest.raises(errors.S3Error) as exc:
            cors.parse(bad)
        assert exc.value.status == 400


# ---- record versions ---------------------------------------------------------------------

# Version-1 records exactly as the gateway wrote them before ACLs existed.
BUCKET_V1_HEX = ("9901a96f70656e2d64617461c4080101010101010101a86167656e63792d61cf0000018b"
                 "cfe568000402089192a3656e76a470726f64")
MANIFEST_V1_HEX = ("9b0103a82231323334353622ce075bcd1581ac636f6e74656e742d74797065aa746578742f"
                   "706c61696e80c40361626390908090")


def test_version1_records_still_read() -> None:
    b = BucketRecord.decode(bytes.fromhex(BUCKET_V1_HEX))
    assert (b.name, b.owner, b.k, b.m, b.shards, b.tags) == (
        "open-data", OWNER, 4, 2, 8, (("env", "prod"),))
    assert b.acl == () and b.policy == "" and b.cors == () and b.public_access_block is None
    m = Manifest.decode(bytes.fromhex(MANIFEST_V1_HEX))
    assert (m.size, m.inline, m.acl) == (3, b"abc", ())


def test_version1_fixtures_are_version1() -> None:
    assert msgpack.unpackb(bytes.fromhex(BUCKET_V1_HEX))[0] == 1
    assert msgpack.unpackb(bytes.fromhex(MANIFEST_V1_HEX))[0] == 1


def test_version2_round_trip() -> None:
    b = bucket(acl=acl.canned("public-read", OWNER), policy='{"Version":"2012-10-17"}',
               cors=cors.parse(CORS_XML), public_access_block=(True, False, True, False))
    assert BucketRecord.decode(b.encode()) == b
    m = Manifest(3, '"x"', 1, inline=b"abc", acl=acl.canned("authenticated-read", OWNER))
    assert Manifest.decode(m.encode()) == m
