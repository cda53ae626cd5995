"""Object tagging: Get/Put/DeleteObjectTagging rewrite the manifest's tags, not its data."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import limits, s3xml
from gateway.handlers.buckets import check_tags, read_xml_body
from gateway.handlers.objects import current_object
from gateway.state import Ctx

XML = "application/xml"


async def get_object_tagging(ctx: Ctx) -> web.StreamResponse:
    _, _, m = await current_object(ctx)
    return web.Response(body=s3xml.tagging(m.tags), content_type=XML)


async def put_object_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await current_object(ctx)
    tags = s3xml.parse_tagging(await read_xml_body(ctx))
    check_tags(tags, limits.tags_per_object_max)
    await ctx.state.catalog.put_object(bucket, key, dataclasses.replace(m, tags=tuple(tags)))
    return web.Response(status=200)


async def delete_object_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await current_object(ctx)
    await ctx.state.catalog.put_object(bucket, key, dataclasses.replace(m, tags=()))
    return web.Response(status=204)
