"""Condition keys of bucket policies: which ones Coffre knows, and their values for one
request.

Pure: the request's facts (headers, query, signature, clock, tags) go in, a context comes
out. A context maps lower-cased key names (IAM's condition keys are case-insensitive) to the
tuple of the request's values for the key: one for a single-valued key, any number for the
multivalued s3:RequestObjectTagKeys. A key missing from the context is one the request does
not have, which makes IAM's positive operators false and its negated ones true, so each key
is filled for the operations AWS fills it for, and only there (Service Authorization
Reference, "Actions, resources, and condition keys for Amazon S3"; IAM User Guide, "AWS
global condition context keys"). A key Coffre never fills is refused when a policy is put
(`known`) rather than kept as a condition that silently never matches.

Tenants are accounts: a tenant's request is an account's own (aws:PrincipalType "Account",
aws:userid the tenant, aws:PrincipalArn arn:aws:iam::TENANT:root), an unsigned one is
"Anonymous" (aws:userid "anonymous"). There are no IAM users, so aws:username is not known.

Values follow what AWS puts there: the header as sent (x-amz-acl "public-read", a grant
"id=alice"), s3:x-amz-copy-source as "bucket/key" decoded without its leading slash or
?versionId, s3:signatureversion "AWS" (SigV2) or "AWS4-HMAC-SHA256", s3:authType
REST-HEADER / REST-QUERY-STRING / POST, aws:CurrentTime as ISO 8601 UTC and aws:EpochTime
as whole seconds.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from gateway import names

Context = dict[str, tuple[str, ...]]
Tags = Sequence[tuple[str, str]]

REQUEST_TAG_PREFIX = "s3:requestobjecttag/"
REQUEST_TAG_KEYS = "s3:requestobjecttagkeys"
EXISTING_TAG_PREFIX = "s3:existingobjecttag/"
MULTIVALUED = frozenset({REQUEST_TAG_KEYS})

SIGV2 = "AWS"
SIGV4 = "AWS4-HMAC-SHA256"
AUTH_HEADER = "REST-HEADER"
AUTH_QUERY = "REST-QUERY-STRING"
AUTH_POST = "POST"

# Operations (Coffre's names, AWS's API names) by the keys they carry.
OBJECT_WRITES = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload", "PostObject"})
_ACL_OPS = OBJECT_WRITES | {"PutObjectAcl", "PutBucketAcl"}
_LOCK_OPS = frozenset({"PutObject", "CopyObject", "CreateMultipartUpload"})
_COPY_OPS = frozenset({"CopyObject", "UploadPartCopy"})
# AWS: the object's tags speak for reads and for changes of its ACL and tags, never for
# PutObject or DeleteObject (an overwrite or delete cannot hang on the tags it replaces).
EXISTING_TAG_OPS = frozenset({
    "GetObject", "HeadObject", "GetObjectAcl", "PutObjectAcl", "GetObjectTagging",
    "PutObjectTagging", "DeleteObjectTagging", "GetObjectAttributes"})
# The tags an operation asks for: x-amz-tagging, or the body (PutObjectTagging's document, a
# form's tagging field), which only the handler reads.
REQUEST_TAG_OPS = OBJECT_WRITES | {"PutObjectTagging"}
BODY_TAG_OPS = frozenset({"PutObjectTagging", "PostObject"})
LIST_OPS = frozenset({"ListObjects", "ListObjectsV2", "ListObjectVersions"})

# Keys read straight from one request header, and the operations that have them.
_HEADER_KEYS: Mapping[str, tuple[str, frozenset[str] | None]] = {
    "s3:x-amz-acl": ("x-amz-acl", _ACL_OPS),
    "s3:x-amz-grant-read": ("x-amz-grant-read", _ACL_OPS),
    "s3:x-amz-grant-write": ("x-amz-grant-write", _ACL_OPS),
    "s3:x-amz-grant-read-acp": ("x-amz-grant-read-acp", _ACL_OPS),
    "s3:x-amz-grant-write-acp": ("x-amz-grant-write-acp", _ACL_OPS),
    "s3:x-amz-grant-full-control": ("x-amz-grant-full-control", _ACL_OPS),
    "s3:x-amz-server-side-encryption": ("x-amz-server-side-encryption", OBJECT_WRITES),
    "s3:x-amz-server-side-encryption-aws-kms-key-id": (
        "x-amz-server-side-encryption-aws-kms-key-id", OBJECT_WRITES),
    "s3:x-amz-server-side-encryption-customer-algorithm": (
        "x-amz-server-side-encryption-customer-algorithm", OBJECT_WRITES | {"UploadPart"}),
    "s3:x-amz-metadata-directive": ("x-amz-metadata-directive", frozenset({"CopyObject"})),
    "s3:x-amz-storage-class": ("x-amz-storage-class", OBJECT_WRITES),
    "s3:object-lock-mode": ("x-amz-object-lock-mode", _LOCK_OPS),
    "s3:object-lock-retain-until-date": ("x-amz-object-lock-retain-until-date", _LOCK_OPS),
    "s3:object-lock-legal-hold": ("x-amz-object-lock-legal-hold", _LOCK_OPS),
    "aws:referer": ("referer", None),
    "aws:useragent": ("user-agent", None),
}

_COMPUTED_KEYS = frozenset({
    "aws:sourceip", "aws:securetransport", "aws:currenttime", "aws:epochtime",
    "aws:principaltype", "aws:userid", "aws:principalaccount", "aws:principalarn",
    "s3:resourceaccount", "s3:x-amz-copy-source", "s3:object-lock-remaining-retention-days",
    "s3:prefix", "s3:delimiter", "s3:max-keys", "s3:versionid", "s3:signatureversion",
    "s3:authtype", "s3:signatureage", "s3:x-amz-content-sha256", REQUEST_TAG_KEYS,
})
_KNOWN = frozenset(_HEADER_KEYS) | _COMPUTED_KEYS
_TAG_PREFIXES = (REQUEST_TAG_PREFIX, EXISTING_TAG_PREFIX)
_DAY_S = 86_400


def known(key: str) -> bool:
    """Whether Coffre fills `key` (lower-cased) for some request."""
    if key in _KNOWN:
        return True
    return any(key.startswith(p) and len(key) > len(p) for p in _TAG_PREFIXES)


def is_request_tag_key(key: str) -> bool:
    return key == REQUEST_TAG_KEYS or key.startswith(REQUEST_TAG_PREFIX)


def is_existing_tag_key(key: str) -> bool:
    return key.startswith(EXISTING_TAG_PREFIX)


@dataclass(frozen=True)
class RequestFacts:
    """What of one HTTP request the condition keys are made of. `headers` names are
    lower-case (or the mapping case-insensitive); `body_tags` are the tags a body asks for,
    once a handler has read it (None: not read, or no such body)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    secure: bool = False
    signature_version: str | None = None    # SIGV2 or SIGV4; None: unsigned
    auth_type: str | None = None            # AUTH_HEADER, AUTH_QUERY or AUTH_POST
    signed_at_s: float | None = None        # a presigned URL's X-Amz-Date, epoch seconds
    now_s: float = field(default_factory=time.time)
    body_tags: Tags | None = None


@dataclass(frozen=True)
class Subject:
    """Who asks for what: the parts of an access request the keys speak of."""

    op: str
    principal: str | None
    source_ip: str
    bucket_owner: str
    prefix: str | None = None           # a listing's prefix ("" for none); None: no listing
    version_id: str | None = None


def context(subject: Subject, facts: RequestFacts, existing_tags: Tags | None = None) -> Context:
    """The condition keys of one request. `existing_tags`: the tags of the object the
    request acts on, when the caller fetched them (None: not fetched, or no object)."""
    ctx: Context = {}
    _global(ctx, subject, facts)
    _headers(ctx, subject.op, facts.headers, facts.now_s)
    _signature(ctx, facts)
    _object(ctx, subject, facts)
    _listing(ctx, subject, facts.query)
    if existing_tags is not None and subject.op in EXISTING_TAG_OPS:
        for k, v in existing_tags:
            ctx[EXISTING_TAG_PREFIX + k.lower()] = (v,)
    _request_tags(ctx, subject.op, facts)
    return ctx


def _global(ctx: Context, subject: Subject, facts: RequestFacts) -> None:
    ctx["aws:sourceip"] = (subject.source_ip,)
    ctx["aws:securetransport"] = ("true" if facts.secure else "false",)
    now = datetime.fromtimestamp(facts.now_s, UTC)
    ctx["aws:currenttime"] = (now.strftime("%Y-%m-%dT%H:%M:%SZ"),)
    ctx["aws:epochtime"] = (str(int(facts.now_s)),)
    ctx["s3:resourceaccount"] = (subject.bucket_owner,)
    if subject.principal is None:
        ctx["aws:principaltype"] = ("Anonymous",)
        ctx["aws:userid"] = ("anonymous",)
        return
    ctx["aws:principaltype"] = ("Account",)
    ctx["aws:userid"] = (subject.principal,)
    ctx["aws:principalaccount"] = (subject.principal,)
    ctx["aws:principalarn"] = (f"arn:aws:iam::{subject.principal}:root",)


def _headers(ctx: Context, op: str, headers: Mapping[str, str], now_s: float) -> None:
    for key, (header, ops) in _HEADER_KEYS.items():
        value = headers.get(header)
        if value is not None and (ops is None or op in ops):
            ctx[key] = (value,)
    until = headers.get("x-amz-object-lock-retain-until-date")
    if until is not None and op in _LOCK_OPS:
        days = _days_until(until, now_s)
        if days is not None:
            ctx["s3:object-lock-remaining-retention-days"] = (str(days),)


def _days_until(text: str, now_s: float) -> int | None:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None     # the handler answers the malformed date
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0, math.ceil((when.timestamp() - now_s) / _DAY_S))


def _signature(ctx: Context, facts: RequestFacts) -> None:
    if facts.signature_version is None or facts.auth_type is None:
        return
    ctx["s3:signatureversion"] = (facts.signature_version,)
    ctx["s3:authtype"] = (facts.auth_type,)
    if facts.auth_type == AUTH_QUERY:
        # AWS: a presigned URL's age; always 0 with Signature Version 2.
        age = 0 if facts.signed_at_s is None else (facts.now_s - facts.signed_at_s) * 1000
        ctx["s3:signatureage"] = (str(max(0, int(age))),)
    sha = facts.headers.get("x-amz-content-sha256")
    if sha is not None and facts.auth_type == AUTH_HEADER:
        ctx["s3:x-amz-content-sha256"] = (sha,)


def _object(ctx: Context, subject: Subject, facts: RequestFacts) -> None:
    if subject.version_id is not None:
        ctx["s3:versionid"] = (subject.version_id,)
    raw = facts.headers.get("x-amz-copy-source")
    if raw is not None and subject.op in _COPY_OPS:
        ctx["s3:x-amz-copy-source"] = (names.copy_source_path(raw),)


def _listing(ctx: Context, subject: Subject, query: Mapping[str, str]) -> None:
    if subject.prefix is None or subject.op not in LIST_OPS:
        return
    ctx["s3:prefix"] = (subject.prefix,)
    for key, param in (("s3:delimiter", "delimiter"), ("s3:max-keys", "max-keys")):
        if param in query:
            ctx[key] = (query[param],)


def _request_tags(ctx: Context, op: str, facts: RequestFacts) -> None:
    if op not in REQUEST_TAG_OPS:
        return
    tags = facts.body_tags if op in BODY_TAG_OPS else _header_tags(op, facts.headers)
    if tags is None:
        return
    for k, v in tags:
        ctx[REQUEST_TAG_PREFIX + k.lower()] = (v,)
    ctx[REQUEST_TAG_KEYS] = tuple(k for k, _ in tags)


def _header_tags(op: str, headers: Mapping[str, str]) -> Tags | None:
    raw = headers.get("x-amz-tagging")
    if raw is None:
        return None
    # A copy takes the header's tags only when told to; else the source's are kept, and
    # the header asks for nothing.
    if op == "CopyObject" and \
            headers.get("x-amz-tagging-directive", "COPY").upper() != "REPLACE":
        return None
    return parse_qsl(raw, keep_blank_values=True)
