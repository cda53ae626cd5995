"""Server access logging: Get/PutBucketLogging (gateway/bucket_logging.py holds the
configuration; gateway/access_log.py writes the lines, gateway/log_delivery.py the objects).

As on AWS, the target bucket must exist and belong to the source bucket's owner (AWS also
takes another account's bucket whose policy lets its log delivery service write; Coffre has
no such service principal, so a target is always the same tenant's), and target grants are
refused when the target's Object Ownership turns ACLs off.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from gateway import bucket_logging, errors, ownership
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import owned_bucket
from gateway.manifest import BucketRecord
from gateway.state import Ctx

XML = "application/xml"


async def get_bucket_logging(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    return web.Response(body=bucket_logging.render(bucket.logging), content_type=XML)


async def put_bucket_logging(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    cfg = bucket_logging.parse(await read_xml_body(ctx))
    if cfg is not None:
        await _check_target(ctx, bucket, cfg)
    await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, logging=cfg))
    return web.Response(status=200)


async def _check_target(ctx: Ctx, bucket: BucketRecord,
                        cfg: bucket_logging.LoggingConfig) -> None:
    target = await ctx.state.catalog.find_bucket(cfg.target_bucket) if cfg.target_bucket \
        else None
    if target is None:
        raise errors.InvalidTargetBucketForLogging(TargetBucket=cfg.target_bucket)
    if target.owner != bucket.owner:
        raise errors.InvalidTargetBucketForLogging(
            "The owner for the bucket to be logged and the target bucket must be the same.",
            TargetBucket=cfg.target_bucket)
    if cfg.grants and target.ownership == ownership.ENFORCED:
        raise errors.AccessControlListNotSupported(
            "Target grants not allowed for bucket owner enforced buckets")
    bucket_logging.check_key_room(cfg, bucket.owner, ctx.state.config.region, bucket.name)
