"""Object tagging: Get/Put/DeleteObjectTagging rewrite the manifest's tags, not its data."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import access, s3xml, tags, versioned
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import current_object, version_headers
from gateway.state import Ctx

XML = "application/xml"


async def get_object_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket, _, m = await current_object(ctx, marker_405=True)
    return web.Response(body=s3xml.tagging(m.tags), content_type=XML,
                        headers=version_headers(bucket, m))


async def put_object_tagging(ctx: Ctx) -> web.StreamResponse:
    if ctx.pending is not None:
        # The policy reads the tags asked for: read them, and only then decide (before
        # anything is told of the object).
        checked = await _tags_asked(ctx)
        pending = ctx.pending
        facts = dataclasses.replace(pending.facts, body_tags=checked)
        await access.authorize(ctx.state.catalog, dataclasses.replace(pending, facts=facts))
        bucket, key, m = await current_object(ctx, marker_405=True)
    else:
        bucket, key, m = await current_object(ctx, marker_405=True)
        checked = await _tags_asked(ctx)
    await versioned.update_version(ctx.state.catalog, bucket, key, m,
                                   dataclasses.replace(m, tags=checked))
    return web.Response(status=200, headers=version_headers(bucket, m))


async def _tags_asked(ctx: Ctx) -> tags.Tags:
    return tags.check(s3xml.parse_tagging(await read_xml_body(ctx)))


async def delete_object_tagging(ctx: Ctx) -> web.StreamResponse:
    bucket, key, m = await current_object(ctx, marker_405=True)
    await versioned.update_version(ctx.state.catalog, bucket, key, m,
                                   dataclasses.replace(m, tags=()))
    return web.Response(status=204, headers=version_headers(bucket, m))
