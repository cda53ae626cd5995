"""Object Lock: the bucket's configuration, and each version's retention and legal hold
(gateway/object_lock.py holds the documents and the rules)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import errors, object_lock, versioned, versions
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import (
    bypass_governance,
    current_object,
    now_ms,
    owned_bucket,
    version_headers,
)
from gateway.manifest import BucketRecord
from gateway.state import Ctx

XML = "application/xml"


async def get_object_lock_configuration(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if bucket.object_lock is None:
        raise errors.ObjectLockConfigurationNotFoundError(BucketName=bucket.name)
    return web.Response(body=object_lock.render_configuration(bucket.object_lock),
                        content_type=XML)


async def put_object_lock_configuration(ctx: Ctx) -> web.StreamResponse:
    """Sets the default retention; on a bucket without Object Lock, turns it on, which
    AWS allows once versioning is Enabled (and never undoes)."""
    bucket = await owned_bucket(ctx)
    cfg = object_lock.parse_configuration(await read_xml_body(ctx))
    if bucket.versioning != versions.ENABLED:
        raise errors.InvalidBucketState(
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration")
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, object_lock=cfg))
    return web.Response(status=200)


def _locked(bucket: BucketRecord) -> None:
    if bucket.object_lock is None:
        raise errors.InvalidRequest("Bucket is missing Object Lock Configuration")


async def get_object_retention(ctx: Ctx) -> web.StreamResponse:
    bucket, _, m = await current_object(ctx)
    _locked(bucket)
    if m.retention is None:
        raise errors.NoSuchObjectLockConfiguration()
    return web.Response(body=object_lock.render_retention(m.retention), content_type=XML)


async def put_object_retention(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await current_object(ctx)
    _locked(bucket)
    now = now_ms()
    new = object_lock.parse_retention(await read_xml_body(ctx), now)
    object_lock.check_change(m.retention, new, bypass_governance(ctx, bucket), now)
    await versioned.update_version(ctx.state.catalog, bucket, key, m, dataclasses.replace(
        m, lock_mode=new.mode if new else "", retain_until_ms=new.until_ms if new else 0))
    return web.Response(status=200, headers=version_headers(bucket, m))


async def get_object_legal_hold(ctx: Ctx) -> web.StreamResponse:
    bucket, _, m = await current_object(ctx)
    _locked(bucket)
    if m.legal_hold is None:    # never set, neither ON nor OFF: AWS has nothing to show
        raise errors.NoSuchObjectLockConfiguration()
    return web.Response(body=object_lock.render_legal_hold(m.legal_hold), content_type=XML)


async def put_object_legal_hold(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await current_object(ctx)
    _locked(bucket)
    on = object_lock.parse_legal_hold(await read_xml_body(ctx))
    await versioned.update_version(ctx.state.catalog, bucket, key, m,
                                   dataclasses.replace(m, legal_hold=on))
    return web.Response(status=200, headers=version_headers(bucket, m))
