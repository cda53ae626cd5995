"""Bucket lifecycle: Get/Put/DeleteBucketLifecycle(Configuration). The rules act in
gateway.expiry, which also gives the headers that say when they will."""

from __future__ import annotations

import dataclasses
import secrets

from aiohttp import web

from gateway import errors, lifecycle
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import owned_bucket
from gateway.state import Ctx

XML = "application/xml"
# Sent back as AWS does since transitions got a minimum object size; Coffre has no
# transitions (one storage class), so it only tells SDKs what they expect to read.
_MIN_SIZE = {"x-amz-transition-default-minimum-object-size": "all_storage_classes_128K"}


class NoSuchLifecycleConfiguration(errors.S3Error):
    code = "NoSuchLifecycleConfiguration"
    status = 404
    default_message = "The lifecycle configuration does not exist"


def _new_rule_id() -> str:
    # AWS names a rule put without an ID with a random string of its own.
    return secrets.token_urlsafe(24)


async def get_bucket_lifecycle(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    if not bucket.lifecycle:
        raise NoSuchLifecycleConfiguration(BucketName=bucket.name)
    return web.Response(body=lifecycle.render(bucket.lifecycle), content_type=XML,
                        headers=_MIN_SIZE)


async def put_bucket_lifecycle(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    rules = lifecycle.parse(await read_xml_body(ctx), _new_rule_id)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, lifecycle=rules))
    return web.Response(status=200, headers=_MIN_SIZE)


async def delete_bucket_lifecycle(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, lifecycle=()))
    return web.Response(status=204)
