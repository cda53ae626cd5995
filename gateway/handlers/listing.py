"""ListObjects (V1), ListObjectsV2 and ListObjectVersions: parameters in, gateway/listing.py
or list_versions.py, list_xml.py out."""

from __future__ import annotations

from aiohttp import web

from gateway import errors, limits, list_tokens, list_versions, list_xml
from gateway.handlers.objects import owned_bucket
from gateway.listing import list_page
from gateway.state import Ctx

XML = "application/xml"


def max_keys_param(raw: str | None) -> int:
    if raw is None:
        return limits.list_keys_max
    try:
        value = int(raw)
    except ValueError:
        raise errors.InvalidArgument("Provided max-keys not an integer or within integer range",
                                     ArgumentName="max-keys", ArgumentValue=raw) from None
    if value < 0:
        raise errors.InvalidArgument("Argument maxKeys must be an integer between 0 and "
                                     "2147483647", ArgumentName="maxKeys",
                                     ArgumentValue=raw)
    return min(value, limits.list_keys_max)


def encoding_param(raw: str | None) -> bool:
    if raw is None:
        return False
    if raw.lower() != "url":
        raise errors.InvalidArgument("Invalid Encoding Method specified in Request",
                                     ArgumentName="encoding-type", ArgumentValue=raw)
    return True


def _listed(ctx: Ctx, body: bytes) -> web.Response:
    # AWS names the bucket's region on every listing (test_region_header_exists); SDKs
    # that find a bucket's region from its answers read it there.
    return web.Response(body=body, content_type=XML,
                        headers={"x-amz-bucket-region": ctx.state.config.region})


async def list_objects_v2(ctx: Ctx) -> web.StreamResponse:
    q = ctx.request.query
    bucket = await owned_bucket(ctx)
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    max_keys = max_keys_param(q.get("max-keys"))
    url = encoding_param(q.get("encoding-type"))
    token = q.get("continuation-token")
    start_after = q.get("start-after") or None
    after = list_tokens.decode(token) if token is not None else start_after
    page = await list_page(ctx.state.catalog, bucket, prefix, delimiter, max_keys, after)
    next_token = list_tokens.encode(page.next_key) if page.truncated and page.next_key else None
    owner = bucket.owner if q.get("fetch-owner") == "true" else None
    body = list_xml.list_objects_v2(bucket.name, prefix, delimiter, max_keys, page, url, token,
                                 next_token, start_after, owner)
    return _listed(ctx, body)


async def list_objects(ctx: Ctx) -> web.StreamResponse:
    q = ctx.request.query
    bucket = await owned_bucket(ctx)
    prefix = q.get("prefix", "")
    delimiter = q.get("delimiter") or None
    max_keys = max_keys_param(q.get("max-keys"))
    url = encoding_param(q.get("encoding-type"))
    marker = q.get("marker", "")
    page = await list_page(ctx.state.catalog, bucket, prefix, delimiter, max_keys,
                           marker or None)
    body = list_xml.list_objects_v1(bucket.name, prefix, delimiter, max_keys, page, url, marker,
                                 bucket.owner)
    return _listed(ctx, body)


async def list_object_versions(ctx: Ctx) -> web.StreamResponse:
    q = ctx.request.query
    bucket = await owned_bucket(ctx)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter") or None
    max_keys = max_keys_param(q.get("max-keys"))
    url = encoding_param(q.get("encoding-type"))
    key_marker, version_id_marker = q.get("key-marker", ""), q.get("version-id-marker", "")
    page = await list_versions.versions_page(ctx.state.catalog, bucket, prefix, delimiter,
                                             max_keys, key_marker, version_id_marker)
    body = list_versions.render(bucket, prefix, delimiter, max_keys, url, key_marker,
                                version_id_marker, page)
    return _listed(ctx, body)
