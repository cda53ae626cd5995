"""Bucket operations: Create, Head, Delete, ListBuckets, location, tagging, versioning,
transfer acceleration."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import accelerate, bucket_pages, errors, limits, ownership, s3xml, tags, versions
from gateway.body import BodyReader, declared_size
from gateway.config import policy_from_header
from gateway.handlers.objects import owned_bucket
from gateway.listing import bucket_is_empty
from gateway.names import check_bucket_name
from gateway.state import Ctx

XML = "application/xml"
POLICY_HEADER = "x-coffre-storage-policy"


async def read_xml_body(ctx: Ctx) -> bytes:
    size = declared_size(ctx.request, ctx.auth)
    if size > limits.xml_body_bytes_max:
        raise errors.MalformedXML()
    return await BodyReader(ctx.request, ctx.auth, size).read_all(limits.xml_body_bytes_max)


def _configuration(body: bytes, region: str) -> tags.Tags:
    """A CreateBucketConfiguration's checked location and its Tags (applied as
    PutBucketTagging would apply them; AWS has taken them at creation since 2025)."""
    if not body.strip():
        return ()
    root = s3xml.parse(body, "CreateBucketConfiguration")
    _location_constraint(s3xml.child_text(root, "LocationConstraint"), region)
    sets = s3xml.children(root, "Tags")
    if len(sets) > 1:
        raise errors.MalformedXML()
    return tags.check(s3xml.tag_list(sets[0]), bucket=True) if sets else ()


def _location_constraint(wanted: str | None, region: str) -> None:
    if wanted is None or (wanted == region and region != "us-east-1"):
        return
    if wanted == "" and region == "us-east-1":
        return
    if wanted == "us-east-1" or wanted == "":
        raise errors.InvalidLocationConstraint(LocationConstraint=wanted)
    raise errors.IllegalLocationConstraintException(
        f"The {wanted} location constraint is incompatible for the region specific endpoint "
        "this request was sent to.")


# Re-creating a bucket one owns answers 200 there, BucketAlreadyOwnedByYou elsewhere.
LEGACY_REGION = "us-east-1"


async def create_bucket(ctx: Ctx) -> web.StreamResponse:
    state = ctx.state
    name = ctx.bucket_name
    check_bucket_name(name)
    tag_set = _configuration(await read_xml_body(ctx), state.config.region)
    raw_policy = ctx.headers.get(POLICY_HEADER)
    policy = policy_from_header(raw_policy) if raw_policy else state.config.default_policy
    if policy.width not in state.rings.widths:
        raise errors.InvalidArgument(
            f"Storage policy '{policy.name}' needs {policy.width} devices per partition; "
            "this cluster has no ring of that width",
            ArgumentName=POLICY_HEADER, ArgumentValue=raw_policy or policy.name)
    assert ctx.tenant is not None
    owning = ownership.from_header(ctx.headers)
    if owning == ownership.ENFORCED and ownership.sets_acl(ctx.headers):
        raise errors.InvalidBucketAclWithObjectOwnership()
    locked = ctx.headers.get("x-amz-bucket-object-lock-enabled", "").lower() == "true"
    try:
        await state.catalog.create_bucket(name, ctx.tenant, policy.k, policy.m,
                                          state.config.index_shards, owning, locked, tag_set)
    except errors.BucketAlreadyOwnedByYou:
        if state.config.region != LEGACY_REGION:
            raise
        # AWS, for legacy clients, in North Virginia only: 200, and the bucket's ACL reset
        # (to the one this request sets, if it sets one: applied after the handler).
        bucket = await state.catalog.bucket(name)
        await state.catalog.save_bucket(dataclasses.replace(bucket, acl=()))
    return web.Response(status=200, headers={"Location": f"/{name}"})


async def head_bucket(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    usage = await ctx.state.counters.usage(bucket)
    return web.Response(status=200, headers={
        "x-amz-bucket-region": ctx.state.config.region,
        # Coffre's own: what the bucket holds, for quotas and usage reports.
        "x-coffre-object-count": str(usage.objects), "x-coffre-bytes-used": str(usage.bytes)})


async def delete_bucket(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    catalog = ctx.state.catalog
    if not await bucket_is_empty(catalog, bucket) or await catalog.has_versions(bucket):
        raise errors.BucketNotEmpty(
            "The bucket you tried to delete is not empty. You must delete all versions in "
            "the bucket." if bucket.versioning else None, BucketName=bucket.name)
    await ctx.state.catalog.delete_bucket(bucket)
    return web.Response(status=204)


async def list_buckets(ctx: Ctx) -> web.StreamResponse:
    region = ctx.state.config.region
    query = bucket_pages.parse(ctx.request.query, region)
    records = await ctx.state.catalog.list_buckets()
    mine = [(b.name, b.created_ms) for b in records if b.owner == ctx.tenant]
    assert ctx.tenant is not None
    shown = bucket_pages.page(mine, query, region)
    body = s3xml.list_buckets(ctx.tenant, shown.buckets, region, shown.next_token,
                              query.prefix)
    return web.Response(body=body, content_type=XML)


async def get_bucket_location(ctx: Ctx) -> web.StreamResponse:
    await owned_bucket(ctx)
    return web.Response(body=s3xml.location(ctx.state.config.region), content_type=XML)


async def get_bucket_versioning(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    # A bucket never versioned: AWS answers an empty document.
    fields = [("Status", bucket.versioning)] if bucket.versioning else []
    return web.Response(body=s3xml.simple("VersioningConfiguration", fields), content_type=XML)


async def put_bucket_versioning(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    status, mfa = versions.parse_status(await read_xml_body(ctx))
    if mfa == versions.ENABLED:
        raise errors.NotImplementedError_("MFA delete is not supported")
    if bucket.object_lock is not None and status == versions.SUSPENDED:
        raise errors.InvalidBucketState(
            "An Object Lock configuration is present on this bucket, so the versioning "
            "state cannot be changed.")
    if status and status != bucket.versioning:
        await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, versioning=status))
    return web.Response(status=200)


async def get_bucket_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if not bucket.tags:
        raise errors.NoSuchTagSet(BucketName=bucket.name)
    return web.Response(body=s3xml.tagging(bucket.tags), content_type=XML)


async def put_bucket_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    checked = tags.check(s3xml.parse_tagging(await read_xml_body(ctx)), bucket=True)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, tags=checked))
    return web.Response(status=204)


async def delete_bucket_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, tags=()))
    return web.Response(status=204)


async def get_bucket_accelerate_configuration(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    return web.Response(body=accelerate.render(bucket.accelerate), content_type=XML)


async def put_bucket_accelerate_configuration(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    accelerate.check_bucket(bucket.name)
    status = accelerate.parse(await read_xml_body(ctx))
    if status != bucket.accelerate:
        await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, accelerate=status))
    return web.Response(status=200)
