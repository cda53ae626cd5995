"""Access configuration operations: ACLs, bucket policy, public access block, CORS.

Get/PutBucketAcl, Get/PutObjectAcl, Get/Put/DeleteBucketPolicy, GetBucketPolicyStatus,
Get/Put/DeletePublicAccessBlock, Get/Put/DeleteBucketCors, the OPTIONS preflight, and the
x-amz-acl / x-amz-grant-* headers of CreateBucket, PutObject and CopyObject (checked before
the handler runs, applied after it succeeds). Bucket settings live in the bucket record
(BucketRecord v2); an object's ACL lives in its manifest (Manifest v2).
Authorization already ran (gateway.access): these handlers only check what the settings
themselves forbid (a public ACL or policy under a public access block).
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import access, acl, cors, errors, ownership, policy, s3xml, versioned
from gateway.access import PREFLIGHT_OP, PublicAccessBlock
from gateway.body import declared_size
from gateway.handlers.bucket_config import BucketConfig
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import current_object, owned_bucket
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.state import Ctx, State

XML = "application/xml"
PREFLIGHT = PREFLIGHT_OP
# The request's slot for the Access-Control-* headers its answer carries.
CORS_HEADERS = web.RequestKey("coffre.cors_headers", dict[str, str])
_QUOTA_OPS = frozenset({"PutObject", "CopyObject", "UploadPart"})
_ACL_HEADER_OPS = frozenset({"CreateBucket", "PutObject", "CopyObject",
                             "CreateMultipartUpload"})
_PAB_FIELDS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
               "RestrictPublicBuckets")


class NoSuchBucketPolicy(errors.S3Error):
    code = "NoSuchBucketPolicy"
    status = 404
    default_message = "The bucket policy does not exist"


class NoSuchPublicAccessBlockConfiguration(errors.S3Error):
    code = "NoSuchPublicAccessBlockConfiguration"
    status = 404
    default_message = "The public access block configuration was not found"


class MissingSecurityHeader(errors.S3Error):
    code = "MissingSecurityHeader"
    status = 400
    default_message = "Your request was missing a required header"


# ---- ACLs --------------------------------------------------------------------------------


def _check_public_acl(bucket: BucketRecord, grants: acl.Grants) -> None:
    if PublicAccessBlock.of(bucket).block_public_acls and acl.is_public(grants):
        raise errors.AccessDenied("Access Denied: public ACLs are blocked on this bucket")


async def _requested_acl(ctx: Ctx, owner: str) -> acl.Grants:
    """An ACL set by headers or by an AccessControlPolicy body, not both."""
    from_headers = acl.from_headers(ctx.headers, owner)
    body = await read_xml_body(ctx)
    if from_headers is not None:
        if body.strip():
            raise errors.UnexpectedContent("This request does not support content")
        return await _known_grantees(ctx, from_headers, owner)
    if not body.strip():
        raise MissingSecurityHeader(MissingHeaderName="x-amz-acl")
    return await _known_grantees(ctx, acl.parse(body, owner), owner)


async def _known_grantees(ctx: Ctx, grants: acl.Grants, owner: str) -> acl.Grants:
    """As AWS: a grant to an id no account has is refused, not kept to match nobody."""
    directory = ctx.state.keys.directory
    if directory is None:       # no tenant store (a gateway on bootstrap keys only)
        return grants
    for name in sorted(acl.tenant_grantees(grants) - {owner}):
        if await directory.get_tenant(name) is None:
            raise errors.InvalidArgument("Invalid id", ArgumentName="CanonicalUser/ID",
                                         ArgumentValue=name)
    return grants


def _shown(bucket: BucketRecord, grants: acl.Grants) -> acl.Grants:
    """The grants an ACL read shows: none beyond the owner's when ACLs are off."""
    return () if bucket.ownership == ownership.ENFORCED else grants


def _check_acls_allowed(ctx: Ctx, bucket: BucketRecord) -> None:
    if bucket.ownership == ownership.ENFORCED and ownership.sets_acl(ctx.headers):
        raise errors.AccessControlListNotSupported()


async def get_bucket_acl(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    return web.Response(body=acl.render(_shown(bucket, bucket.acl), bucket.owner),
                        content_type=XML)


async def put_bucket_acl(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    _check_acls_allowed(ctx, bucket)
    grants = await _requested_acl(ctx, bucket.owner)
    _check_public_acl(bucket, grants)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, acl=grants))
    return web.Response(status=200)


async def get_object_acl(ctx: Ctx) -> web.StreamResponse:
    bucket, _key, manifest = await current_object(ctx)
    return web.Response(body=acl.render(_shown(bucket, manifest.acl), bucket.owner),
                        content_type=XML)


async def put_object_acl(ctx: Ctx) -> web.StreamResponse:
    bucket, key, manifest = await current_object(ctx)
    _check_acls_allowed(ctx, bucket)
    grants = await _requested_acl(ctx, bucket.owner)
    _check_public_acl(bucket, grants)
    await _save_object_acl(ctx.state, bucket, key, manifest, grants)
    return web.Response(status=200)


async def _save_object_acl(state: State, bucket: BucketRecord, key: bytes,
                           manifest: Manifest, grants: acl.Grants) -> None:
    # Rewrites the same manifest (same data ids) with the new ACL: nothing to forget.
    await versioned.update_version(state.catalog, bucket, key, manifest,
                                   dataclasses.replace(manifest, acl=grants))


# ---- ACL headers on writes -----------------------------------------------------------------


async def check_acl_headers(ctx: Ctx) -> acl.Grants | None:
    """Before a CreateBucket/PutObject/CopyObject runs: parse its ACL headers (a bad one
    fails the request before anything is stored). None when it sets no ACL."""
    if ctx.endpoint.op not in _ACL_HEADER_OPS or ctx.tenant is None:
        return None
    grants = acl.from_headers(ctx.headers, ctx.tenant)
    if grants is None:
        return None
    grants = await _known_grantees(ctx, grants, ctx.tenant)
    if ctx.endpoint.op == "CreateBucket":
        return grants
    bucket = await ctx.state.catalog.find_bucket(ctx.bucket_name)
    if bucket is not None:
        _check_acls_allowed(ctx, bucket)
        _check_public_acl(bucket, grants)
    return grants


async def apply_acl_headers(ctx: Ctx, grants: acl.Grants | None,
                            response: web.StreamResponse) -> None:
    """After the write succeeded: store the ACL it asked for."""
    if grants is None or response.status != 200 or ctx.endpoint.op == "CreateMultipartUpload":
        return      # an upload keeps its ACL in its record until it completes (multipart)
    catalog = ctx.state.catalog
    bucket = await catalog.bucket(ctx.bucket_name)
    if ctx.endpoint.op == "CreateBucket":
        await catalog.save_bucket(dataclasses.replace(bucket, acl=grants))
        return
    key = check_key(ctx.key)
    found = await catalog.get_object(bucket, key)
    if found is not None:
        await _save_object_acl(ctx.state, bucket, key, found[0], grants)


# ---- bucket policy -----------------------------------------------------------------------


async def get_bucket_policy(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if not bucket.policy:
        raise NoSuchBucketPolicy(BucketName=bucket.name)
    return web.Response(body=bucket.policy.encode(), content_type="application/json")


async def put_bucket_policy(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    body = await read_xml_body(ctx)
    doc = policy.parse(body, bucket.name)
    if PublicAccessBlock.of(bucket).block_public_policy and policy.is_public(doc):
        raise errors.AccessDenied("Access Denied: public policies are blocked on this bucket")
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, policy=body.decode()))
    return web.Response(status=204)


async def delete_bucket_policy(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, policy=""))
    return web.Response(status=204)


async def get_bucket_policy_status(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if not bucket.policy:
        raise NoSuchBucketPolicy(BucketName=bucket.name)
    public = policy.is_public(policy.parse_cached(bucket.policy, bucket.name))
    body = s3xml.simple("PolicyStatus", [("IsPublic", public)])
    return web.Response(body=body, content_type=XML)


# ---- public access block -------------------------------------------------------------------


async def get_public_access_block(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if bucket.public_access_block is None:
        raise NoSuchPublicAccessBlockConfiguration(BucketName=bucket.name)
    fields = list(zip(_PAB_FIELDS, bucket.public_access_block, strict=True))
    body = s3xml.simple("PublicAccessBlockConfiguration", fields)
    return web.Response(body=body, content_type=XML)


def _parse_pab(body: bytes) -> tuple[bool, bool, bool, bool]:
    root = s3xml.parse(body, "PublicAccessBlockConfiguration")
    values = []
    for name in _PAB_FIELDS:
        text = (s3xml.child_text(root, name) or "false").strip().lower()
        if text not in ("true", "false"):
            raise errors.MalformedXML()
        values.append(text == "true")
    return values[0], values[1], values[2], values[3]


async def put_public_access_block(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    pab = _parse_pab(await read_xml_body(ctx))
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, public_access_block=pab))
    return web.Response(status=200)


async def delete_public_access_block(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, public_access_block=None))
    return web.Response(status=204)


# ---- configuration documents ---------------------------------------------------------------

OWNERSHIP = BucketConfig("ownership", "", ownership.parse, ownership.render,
                         errors.OwnershipControlsNotFoundError)
CORS = BucketConfig("cors", (), cors.parse, cors.render, cors.NoSuchCORSConfiguration)


async def preflight(ctx: Ctx) -> web.StreamResponse:
    """OPTIONS: unauthenticated by design (browsers never sign a preflight)."""
    name = ctx.endpoint.bucket
    bucket = await ctx.state.catalog.find_bucket(name) if name else None
    if bucket is None:
        raise cors.no_bucket(ctx.headers)
    answer = cors.preflight(bucket.cors, ctx.headers, ctx.endpoint.key is not None)
    return web.Response(status=200, headers=answer)


# ---- quotas ------------------------------------------------------------------------------


async def _copy_source_size(ctx: Ctx) -> int:
    source = access.copy_source_of(ctx.headers.get("x-amz-copy-source", ""))
    if source is None:
        return 0
    src = await ctx.state.catalog.find_bucket(source.bucket)
    found = await ctx.state.catalog.get_object(src, check_key(source.key)) if src else None
    return found[0].size if found else 0     # the handler answers a missing source


async def check_quota(ctx: Ctx, bucket: BucketRecord | None) -> None:
    """Before a write reads its body: refuse it if it would break a quota (PutObject,
    CopyObject, UploadPart; PostObject checks once its form is read)."""
    quotas, op = ctx.state.quotas, ctx.endpoint.op
    if quotas is None or bucket is None or op not in _QUOTA_OPS:
        return
    if op == "CopyObject":
        await quotas.check(bucket, await _copy_source_size(ctx), check_key(ctx.key))
    elif op == "UploadPart":
        # Parts become an object at completion; their bytes count against the quota now.
        await quotas.check(bucket, declared_size(ctx.request, ctx.auth), None)
    else:
        await quotas.check(bucket, declared_size(ctx.request, ctx.auth), check_key(ctx.key))


def actual_headers(request: web.Request, bucket: BucketRecord | None) -> dict[str, str]:
    """Access-Control-* headers for a non-preflight request from a browser origin."""
    if bucket is None or not bucket.cors:
        return {}
    return cors.actual(bucket.cors, request.headers, request.method)


async def add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: handlers that stream (GetObject) prepare their own responses,
    so the CORS headers chosen at dispatch are added here, just before headers go out."""
    for name, value in request.get(CORS_HEADERS, {}).items():
        response.headers.setdefault(name, value)
