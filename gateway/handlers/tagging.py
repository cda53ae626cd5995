"""Object tagging: Get/Put/DeleteObjectTagging rewrite the manifest's tags, not its data."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import errors, limits, s3xml
from gateway.handlers.buckets import check_tags, read_xml_body
from gateway.handlers.objects import owned_bucket
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.state import Ctx

XML = "application/xml"


async def _current(ctx: Ctx) -> tuple[BucketRecord, bytes, Manifest]:
    bucket = await owned_bucket(ctx)
    key = check_key(ctx.key)
    found = await ctx.state.catalog.get_object(bucket, key)
    if found is None:
        raise errors.NoSuchKey(Key=ctx.key)
    return bucket, key, found[0]


async def get_object_tagging(ctx: Ctx) -> web.StreamResponse:
    _, _, m = await _current(ctx)
    return web.Response(body=s3xml.tagging(m.tags), content_type=XML)


async def put_object_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await _current(ctx)
    tags = s3xml.parse_tagging(await read_xml_body(ctx))
    check_tags(tags, limits.tags_per_object_max)
    await ctx.state.catalog.put_object(bucket, key, dataclasses.replace(m, tags=tuple(tags)))
    return web.Response(status=200)


async def delete_object_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await _current(ctx)
    await ctx.state.catalog.put_object(bucket, key, dataclasses.replace(m, tags=()))
    return web.Response(status=204)
