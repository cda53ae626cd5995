"""Bucket website configuration: Get/Put/DeleteBucketWebsite. The website endpoint that
serves it is gateway.website_serve."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import errors, website
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import owned_bucket
from gateway.state import Ctx

XML = "application/xml"


class NoSuchWebsiteConfiguration(errors.S3Error):
    code = "NoSuchWebsiteConfiguration"
    status = 404
    default_message = "The specified bucket does not have a website configuration"


async def get_bucket_website(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if bucket.website is None:
        raise NoSuchWebsiteConfiguration(BucketName=bucket.name)
    return web.Response(body=website.render(bucket.website), content_type=XML)


async def put_bucket_website(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    config = website.parse(await read_xml_body(ctx))
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, website=config))
    return web.Response(status=200)


async def delete_bucket_website(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, website=None))
    return web.Response(status=204)
