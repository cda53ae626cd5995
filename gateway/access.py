"""Authorization: may this principal (a tenant, or anonymous) do this operation here?

Runs after authentication and before the handler. The order is IAM's, narrowed to what
Coffre stores:
1. the bucket policy's explicit Deny refuses, the owner included (but never the owner's
   own policy management, so an owner cannot lock itself out);
2. the bucket owner may do anything;
3. operations only an owner may do (bucket configuration, deletion) stop here;
4. a policy Allow grants, unless RestrictPublicBuckets is set and the policy is public;
5. an ACL grant (the bucket's for listing and writes, the object's for reads and the
   object's ACL) grants, with group grants ignored under IgnorePublicAcls;
6. a GET or HEAD of a missing object by one who may list the bucket is let through as
   ABSENT, for the handler to answer NoSuchKey (and nothing else);
7. anything else is AccessDenied.
A granted non-owner acts as the bucket owner for the handler (Coffre's objects belong to
their bucket's owner), so the handlers keep one rule: the bucket must be the acting
tenant's. The one exception is a copy's source, which may be another tenant's: the copy is
let through only if the requester itself may GET the source (checked here, with the rules
of that GET), and the handler then reads it whoever owns it. Requests that name no bucket
(ListBuckets, CreateBucket) need a signature.

`decide` is pure; `authorize` fetches the bucket record (cached) and the object's manifest
only when the decision depends on it: a non-owner's read (the object's ACL), or a policy
statement that applies and reads the object's tags (s3:ExistingObjectTag/...). The policy's
condition keys (gateway/condition_keys.py) are worked out only for a bucket that has a
policy. When a statement that applies reads the tags a PutObjectTagging body asks for, the
decision waits for the handler (Basis.PENDING): it reads the body, then asks `decide` again
with the tags, as a browser POST's handler does with its form.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import parse_qsl

from gateway import acl, condition_keys, errors, names, ownership, policy, versioned
from gateway.acl import Permission
from gateway.catalog import Catalog
from gateway.condition_keys import RequestFacts, Tags
from gateway.manifest import BucketRecord, Manifest
from gateway.router import Endpoint


class Basis(Enum):
    """Why a request was let through (for the audit log and the tests)."""

    OWNER = "owner"
    POLICY = "policy"
    ACL = "acl"
    SIGNED = "signed"           # no bucket involved (or none exists): a signature suffices
    PREFLIGHT = "preflight"     # a CORS preflight: browsers never sign one; CORS rules decide
    FORM = "form"               # a browser POST: its signed form decides (handlers/post_object)
    ABSENT = "absent"           # a read of a missing object by one who may list the bucket:
    #                             the handler may only answer that it is missing (NoSuchKey)
    PENDING = "pending"         # the policy reads the tags in the body: the handler decides
    #                             once it has read them (access.decide with body_tags)


class Scope(Enum):
    BUCKET = "bucket"
    OBJECT = "object"


@dataclass(frozen=True)
class Rule:
    """What one operation needs: its IAM action, the resource it acts on, and which ACL
    permission (on the bucket's or the object's ACL) grants it, if any."""

    action: str
    resource: Scope
    acl_perm: Permission | None = None
    acl_on: Scope = Scope.BUCKET
    owner_only: bool = False
    manages_policy: bool = False


_READ_OBJ = Rule("s3:GetObject", Scope.OBJECT, Permission.READ, Scope.OBJECT)
_WRITE_OBJ = Rule("s3:PutObject", Scope.OBJECT, Permission.WRITE)
_LIST = Rule("s3:ListBucket", Scope.BUCKET, Permission.READ)


def _owner(action: str, manages_policy: bool = False) -> Rule:
    return Rule(action, Scope.BUCKET, owner_only=True, manages_policy=manages_policy)


RULES: Mapping[str, Rule] = {
    "HeadBucket": _LIST,
    "ListObjects": _LIST,
    "ListObjectsV2": _LIST,
    "ListObjectVersions": Rule("s3:ListBucketVersions", Scope.BUCKET, Permission.READ),
    "ListMultipartUploads": Rule("s3:ListBucketMultipartUploads", Scope.BUCKET,
                                 Permission.READ),
    "GetObject": _READ_OBJ,
    "HeadObject": _READ_OBJ,
    "GetObjectAttributes": Rule("s3:GetObjectAttributes", Scope.OBJECT, Permission.READ,
                                Scope.OBJECT),
    "GetObjectTagging": Rule("s3:GetObjectTagging", Scope.OBJECT),
    "PutObjectTagging": Rule("s3:PutObjectTagging", Scope.OBJECT),
    "DeleteObjectTagging": Rule("s3:DeleteObjectTagging", Scope.OBJECT),
    "PutObject": _WRITE_OBJ,
    "CopyObject": _WRITE_OBJ,
    "PostObject": _WRITE_OBJ,
    "CreateMultipartUpload": _WRITE_OBJ,
    "UploadPart": _WRITE_OBJ,
    "UploadPartCopy": _WRITE_OBJ,
    "CompleteMultipartUpload": _WRITE_OBJ,
    "AbortMultipartUpload": Rule("s3:AbortMultipartUpload", Scope.OBJECT, Permission.WRITE),
    "ListParts": Rule("s3:ListMultipartUploadParts", Scope.OBJECT, Permission.READ),
    "DeleteObject": Rule("s3:DeleteObject", Scope.OBJECT, Permission.WRITE),
    "DeleteObjects": Rule("s3:DeleteObject", Scope.OBJECT, Permission.WRITE),
    "GetObjectRetention": Rule("s3:GetObjectRetention", Scope.OBJECT),
    "PutObjectRetention": Rule("s3:PutObjectRetention", Scope.OBJECT),
    "GetObjectLegalHold": Rule("s3:GetObjectLegalHold", Scope.OBJECT),
    "PutObjectLegalHold": Rule("s3:PutObjectLegalHold", Scope.OBJECT),
    "GetObjectAcl": Rule("s3:GetObjectAcl", Scope.OBJECT, Permission.READ_ACP, Scope.OBJECT),
    "PutObjectAcl": Rule("s3:PutObjectAcl", Scope.OBJECT, Permission.WRITE_ACP, Scope.OBJECT),
    "GetBucketAcl": Rule("s3:GetBucketAcl", Scope.BUCKET, Permission.READ_ACP),
    "PutBucketAcl": Rule("s3:PutBucketAcl", Scope.BUCKET, Permission.WRITE_ACP),
    "GetBucketLocation": Rule("s3:GetBucketLocation", Scope.BUCKET),
    "GetBucketPolicy": _owner("s3:GetBucketPolicy", manages_policy=True),
    "PutBucketPolicy": _owner("s3:PutBucketPolicy", manages_policy=True),
    "DeleteBucketPolicy": _owner("s3:DeleteBucketPolicy", manages_policy=True),
    "GetBucketPolicyStatus": _owner("s3:GetBucketPolicyStatus", manages_policy=True),
    "GetBucketLogging": _owner("s3:GetBucketLogging"),
    "PutBucketLogging": _owner("s3:PutBucketLogging"),
    "GetBucketAccelerateConfiguration": _owner("s3:GetAccelerateConfiguration"),
    "PutBucketAccelerateConfiguration": _owner("s3:PutAccelerateConfiguration"),
}
_DEFAULT = _owner("s3:*")            # every other bucket operation: the owner's alone
_NO_BUCKET_OPS = frozenset({"ListBuckets", "CreateBucket"})
# AWS: a GET or HEAD of a missing key is NoSuchKey (404) to whoever may list the bucket.
_MISSING_TOLD_OPS = frozenset({"GetObject", "HeadObject"})
PREFLIGHT_OP = "PreflightRequest"
POST_OBJECT_OP = "PostObject"
_LIST_OPS = condition_keys.LIST_OPS
_OBJECT_ACL_OPS = frozenset(op for op, r in RULES.items() if r.acl_on is Scope.OBJECT
                            and r.acl_perm is not None)


@dataclass(frozen=True)
class AccessRequest:
    op: str
    bucket: str | None
    key: str | None
    principal: str | None          # the authenticated tenant; None = anonymous
    source_ip: str = ""
    prefix: str | None = None      # ListObjects' prefix: the s3:prefix condition key
    copy_source: str | None = None  # x-amz-copy-source, raw
    version_id: str | None = None   # ?versionId=: the action is then its *Version* form
    facts: RequestFacts = dataclasses.field(default_factory=RequestFacts)  # for conditions


@dataclass(frozen=True)
class Decision:
    acting_tenant: str | None      # whom the handler acts for
    basis: Basis
    bucket: BucketRecord | None


@dataclass(frozen=True)
class PublicAccessBlock:
    block_public_acls: bool = False
    ignore_public_acls: bool = False
    block_public_policy: bool = False
    restrict_public_buckets: bool = False

    @classmethod
    def of(cls, bucket: BucketRecord) -> PublicAccessBlock:
        pab = bucket.public_access_block
        return cls() if pab is None else cls(*pab)

    def as_tuple(self) -> tuple[bool, bool, bool, bool]:
        return (self.block_public_acls, self.ignore_public_acls, self.block_public_policy,
                self.restrict_public_buckets)


# Headers naming the account a request expects to own the bucket it is for.
EXPECTED_OWNER = "x-amz-expected-bucket-owner"
SOURCE_EXPECTED_OWNER = "x-amz-source-expected-bucket-owner"


def request_for(endpoint: Endpoint, principal: str | None, source_ip: str,
                query: Mapping[str, str], headers: Mapping[str, str],
                facts: RequestFacts | None = None) -> AccessRequest:
    """What authorization needs from one HTTP request (`facts`: its headers, query and
    signature, for the policy's conditions)."""
    prefix = query.get("prefix", "") if endpoint.op in _LIST_OPS else None
    version_id = query.get("versionId") if endpoint.key else None
    if facts is None:
        facts = RequestFacts(headers, query)
    return AccessRequest(endpoint.op, endpoint.bucket, endpoint.key, principal, source_ip,
                         prefix, headers.get("x-amz-copy-source"), version_id, facts)


def rule_of(op: str, version_id: str | None = None) -> Rule:
    """The operation's rule; on one named version, with that version's IAM action (a
    policy granting s3:GetObject does not grant reading old versions, as on AWS)."""
    rule = RULES.get(op, _DEFAULT)
    if version_id is not None and rule.action in _VERSION_ACTIONS:
        return dataclasses.replace(rule, action=_VERSION_ACTIONS[rule.action])
    return rule


_VERSION_ACTIONS = {
    "s3:GetObject": "s3:GetObjectVersion",
    "s3:DeleteObject": "s3:DeleteObjectVersion",
    "s3:GetObjectAcl": "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl": "s3:PutObjectVersionAcl",
    "s3:GetObjectTagging": "s3:GetObjectVersionTagging",
    "s3:PutObjectTagging": "s3:PutObjectVersionTagging",
    "s3:DeleteObjectTagging": "s3:DeleteObjectVersionTagging",
    "s3:GetObjectAttributes": "s3:GetObjectVersionAttributes",
}


def _context(req: AccessRequest, bucket: BucketRecord,
             object_tags: Tags | None) -> condition_keys.Context:
    subject = condition_keys.Subject(req.op, req.principal, req.source_ip, bucket.owner,
                                     req.prefix, req.version_id)
    return condition_keys.context(subject, req.facts, object_tags)


def _resource(req: AccessRequest, rule: Rule, bucket: BucketRecord) -> str:
    if rule.resource is Scope.BUCKET:
        return policy.bucket_arn(bucket.name)
    # DeleteObjects names its keys in the body: it is checked against the whole bucket.
    key = "*" if req.op == "DeleteObjects" else (req.key or "")
    return policy.object_arn(bucket.name, key)


def _policy_verdict(req: AccessRequest, rule: Rule, bucket: BucketRecord,
                    doc: policy.Policy | None, object_tags: Tags | None) -> policy.Verdict:
    if doc is None:
        return policy.Verdict.NONE
    ctx = _context(req, bucket, object_tags)
    if req.op == "DeleteObjects" and policy.denies_somewhere(doc, req.principal,
                                                             rule.action, ctx):
        return policy.Verdict.DENY
    return policy.evaluate(doc, req.principal, rule.action, _resource(req, rule, bucket), ctx)


def needs_object_acl(req: AccessRequest, bucket: BucketRecord) -> bool:
    """True when the decision may hang on the object's own ACL (a non-owner's read)."""
    return req.principal != bucket.owner and req.op in _OBJECT_ACL_OPS and req.key is not None


def _policy_of(bucket: BucketRecord) -> policy.Policy | None:
    return policy.parse_cached(bucket.policy, bucket.name) if bucket.policy else None


def _reads(req: AccessRequest, bucket: BucketRecord, doc: policy.Policy | None,
           wanted: Callable[[str], bool]) -> bool:
    """Whether a statement that applies to this request has a condition on a `wanted` key."""
    if doc is None:
        return False
    rule = rule_of(req.op, req.version_id)
    resource = None if req.op == "DeleteObjects" else _resource(req, rule, bucket)
    return policy.references(doc, req.principal, rule.action, resource, wanted)


def needs_object_tags(req: AccessRequest, bucket: BucketRecord) -> bool:
    """True when the policy reads the tags of the object this request acts on."""
    return req.op in condition_keys.EXISTING_TAG_OPS and req.key is not None and \
        _reads(req, bucket, _policy_of(bucket), condition_keys.is_existing_tag_key)


def waits_for_body_tags(req: AccessRequest, bucket: BucketRecord) -> bool:
    """True when the policy reads the tags this request's body asks for, which only its
    handler reads (PutObjectTagging's document)."""
    return req.op == "PutObjectTagging" and req.facts.body_tags is None and \
        _reads(req, bucket, _policy_of(bucket), condition_keys.is_request_tag_key)


def decide(req: AccessRequest, bucket: BucketRecord, object_acl: acl.Grants | None = None,
           object_tags: Tags | None = None) -> Basis:
    """Allow (with its basis) or raise AccessDenied. `object_acl` None: no such object;
    `object_tags`: the object's tags, when the policy reads them (needs_object_tags)."""
    rule = rule_of(req.op, req.version_id)
    owner = req.principal is not None and req.principal == bucket.owner
    doc = _policy_of(bucket)
    verdict = policy.Verdict.NONE
    if not (owner and rule.manages_policy):
        verdict = _policy_verdict(req, rule, bucket, doc, object_tags)
    if verdict is policy.Verdict.DENY:
        raise errors.AccessDenied()
    if owner:
        return Basis.OWNER
    if rule.owner_only:
        raise errors.AccessDenied()
    pab = PublicAccessBlock.of(bucket)
    if verdict is policy.Verdict.ALLOW and not (
            pab.restrict_public_buckets and doc is not None and policy.is_public(doc)):
        return Basis.POLICY
    if rule.acl_perm is not None and bucket.ownership != ownership.ENFORCED:
        grants = bucket.acl if rule.acl_on is Scope.BUCKET else object_acl
        if grants is not None and acl.allows(acl.effective(grants, bucket.owner),
                                             req.principal, rule.acl_perm,
                                             ignore_public=pab.ignore_public_acls):
            return Basis.ACL
    if object_acl is None and req.op in _MISSING_TOLD_OPS and req.key is not None:
        decide(dataclasses.replace(req, op="ListObjects", key=None, version_id=None), bucket)
        return Basis.ABSENT
    raise errors.AccessDenied()


@dataclass(frozen=True)
class CopySourceName:
    """What an x-amz-copy-source names: bucket/key (URL-encoded), optionally ?versionId=."""

    bucket: str
    key: str
    version_id: str | None = None


def copy_source_of(raw: str) -> CopySourceName | None:
    """The copy source an x-amz-copy-source value names; None when it names no bucket and
    key (the handler answers InvalidArgument)."""
    bucket, _, key = names.copy_source_path(raw).partition("/")
    if not bucket or not key:
        return None
    query = raw.partition("?")[2]
    version_id = dict(parse_qsl(query, keep_blank_values=True)).get("versionId")
    return CopySourceName(bucket, key, version_id)


def source_read(req: AccessRequest, source: CopySourceName) -> AccessRequest:
    """The read a copy makes of its source, asked for the requester itself (not for the
    tenant it acts as on the destination): the GetObject the requester would have to be
    allowed to make of the same object, or of the same version."""
    return AccessRequest("GetObject", source.bucket, source.key, req.principal,
                         req.source_ip, version_id=source.version_id, facts=req.facts)


async def _object(catalog: Catalog, bucket: BucketRecord, key: str,
                  version_id: str | None) -> Manifest | None:
    """The object (the version named) a decision is about; None: none."""
    try:
        raw = key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return None
    if version_id is not None:
        try:
            hit = await versioned.find_version(catalog, bucket, raw, version_id)
        except errors.S3Error:      # a malformed id: the handler answers it
            return None
        return None if hit is None or hit.manifest.marker else hit.manifest
    found = await catalog.get_object(bucket, raw)
    return None if found is None else found[0]


async def _decide_on(catalog: Catalog, req: AccessRequest, bucket: BucketRecord) -> Basis:
    if waits_for_body_tags(req, bucket):
        return Basis.PENDING
    wants_acl, wants_tags = needs_object_acl(req, bucket), needs_object_tags(req, bucket)
    if not (wants_acl or wants_tags):
        return decide(req, bucket)
    assert req.key is not None
    found = await _object(catalog, bucket, req.key, req.version_id)
    return decide(req, bucket, None if found is None else found.acl,
                  None if found is None else found.tags)


def _check_expected_owner(expected: str | None, bucket: BucketRecord) -> None:
    """x-amz-expected-bucket-owner (x-amz-source-expected-bucket-owner for a copy's source):
    a request meant for a bucket of another account is refused, 403 whoever asks, as on
    AWS; the account is the owning tenant."""
    if expected is not None and expected != bucket.owner:
        raise errors.AccessDenied()


async def _check_copy_source(catalog: Catalog, req: AccessRequest) -> None:
    """A copy reads its source: the requester must be allowed to GET it too, by any basis
    a GET would have (ownership, a policy, an ACL grant, public-read)."""
    assert req.copy_source is not None
    source = copy_source_of(req.copy_source)
    if source is None:
        return      # the handler answers the malformed header with its own error
    # A missing bucket is answered now: the handler must never read a source unchecked.
    src = await catalog.bucket(source.bucket)
    _check_expected_owner(req.facts.headers.get(SOURCE_EXPECTED_OWNER), src)
    if await _decide_on(catalog, source_read(req, source), src) is Basis.ABSENT:
        # Missing, to one who may list it: told now, for the handler must not copy what
        # might appear meanwhile (nothing else lets this requester read it).
        if source.version_id is not None:
            raise errors.NoSuchVersion(Key=source.key, VersionId=source.version_id)
        raise errors.NoSuchKey(Key=source.key)


async def authorize(catalog: Catalog, req: AccessRequest) -> Decision:
    if req.op == PREFLIGHT_OP:
        return Decision(req.principal, Basis.PREFLIGHT, None)
    if req.op == POST_OBJECT_OP:
        # The HTTP request is unsigned; the form's signature and policy are checked, and
        # then `decide` is asked, by the handler once it has read the form.
        found = await catalog.find_bucket(req.bucket) if req.bucket else None
        return Decision(None, Basis.FORM, found)
    if req.bucket is None or req.op in _NO_BUCKET_OPS:
        if req.principal is None:
            raise errors.AccessDenied()
        return Decision(req.principal, Basis.SIGNED, None)
    bucket = await catalog.find_bucket(req.bucket)
    if bucket is None:
        # The handler answers NoSuchBucket, as S3 does to anyone.
        return Decision(req.principal, Basis.SIGNED, None)
    _check_expected_owner(req.facts.headers.get(EXPECTED_OWNER), bucket)
    basis = await _decide_on(catalog, req, bucket)
    if req.copy_source is not None and req.op in ("CopyObject", "UploadPartCopy"):
        await _check_copy_source(catalog, req)
    acting = req.principal if basis is Basis.OWNER else bucket.owner
    return Decision(acting, basis, bucket)
