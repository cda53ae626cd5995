"""A bucket sub-resource that is one configuration document kept in the bucket record —
CORS, lifecycle, website, ownership controls: Get answers it (or the sub-resource's 404),
Put parses and stores it whole, Delete clears it. One definition serves them all."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gateway import errors
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import owned_bucket
from gateway.state import Ctx

XML = "application/xml"


@dataclass(frozen=True)
class BucketConfig:
    attr: str                                   # the BucketRecord field that holds it
    empty: Any                                  # that field's value when none is set
    parse: Callable[[bytes], Any]               # a Put body -> the value (raises S3Error)
    render: Callable[[Any], bytes]              # the value -> a Get body
    missing: type[errors.S3Error]               # Get's answer when none is set
    headers: Mapping[str, str] = field(default_factory=dict)   # on Get and Put answers

    async def get(self, ctx: Ctx) -> web.StreamResponse:
        bucket = await owned_bucket(ctx)
        value = getattr(bucket, self.attr)
        if value == self.empty:
            raise self.missing(BucketName=bucket.name)
        return web.Response(body=self.render(value), content_type=XML, headers=self.headers)

    async def put(self, ctx: Ctx) -> web.StreamResponse:
        bucket = await owned_bucket(ctx)
        value = self.parse(await read_xml_body(ctx))
        await ctx.state.catalog.save_bucket(dataclasses.replace(bucket, **{self.attr: value}))
        return web.Response(status=200, headers=self.headers)

    async def delete(self, ctx: Ctx) -> web.StreamResponse:
        bucket = await owned_bucket(ctx)
        await ctx.state.catalog.save_bucket(
            dataclasses.replace(bucket, **{self.attr: self.empty}))
        return web.Response(status=204)
