"""S3 Object Ownership: a bucket's OwnershipControls rule, and what BucketOwnerEnforced means.

Pure. Coffre's objects always belong to their bucket's owner, so BucketOwnerPreferred and
ObjectWriter change nothing here; they are kept and given back. BucketOwnerEnforced turns
ACLs off, as on AWS: they no longer grant anything (policies still do), requests that would
set one other than bucket-owner-full-control are refused with AccessControlListNotSupported,
and reading an ACL shows the owner's full control only.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway import errors, s3xml

ENFORCED = "BucketOwnerEnforced"
VALUES = ("BucketOwnerPreferred", "ObjectWriter", ENFORCED)
HEADER = "x-amz-object-ownership"


def parse(body: bytes) -> str:
    """The ObjectOwnership of a PutBucketOwnershipControls body (exactly one rule)."""
    root = s3xml.parse(body, "OwnershipControls")
    rules = s3xml.children(root, "Rule")
    if len(rules) != 1 or len(list(root)) != 1:
        raise errors.MalformedXML()
    value = (s3xml.child_text(rules[0], "ObjectOwnership") or "").strip()
    if value not in VALUES or len(list(rules[0])) != 1:
        raise errors.MalformedXML()
    return value


def render(value: str) -> bytes:
    return (f'{s3xml.HEAD}<OwnershipControls xmlns="{s3xml.NS}"><Rule><ObjectOwnership>'
            f"{value}</ObjectOwnership></Rule></OwnershipControls>").encode()


def from_header(headers: Mapping[str, str]) -> str:
    """CreateBucket's x-amz-object-ownership ("" when absent)."""
    value = headers.get(HEADER)
    if value is None:
        return ""
    if value not in VALUES:
        raise errors.InvalidArgument(f"Invalid x-amz-object-ownership header: {value}",
                                     ArgumentName=HEADER)
    return value


def sets_acl(headers: Mapping[str, str]) -> bool:
    """True when a request's headers set an ACL that a bucket with ACLs off refuses:
    any grant header, or a canned ACL other than bucket-owner-full-control (which only
    says what enforcement already makes true)."""
    canned = headers.get("x-amz-acl")
    grants = any(k.lower().startswith("x-amz-grant-") for k in headers)
    return grants or (canned is not None and canned != "bucket-owner-full-control")
