"""DeleteObjects: up to 1000 keys in one request, each answered on its own."""

from __future__ import annotations

from aiohttp import web

from gateway import errors, limits, s3xml
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import delete_key, owned_bucket
from gateway.names import check_key
from gateway.state import Ctx

XML = "application/xml"


def _parse(body: bytes) -> tuple[list[str], bool]:
    root = s3xml.parse(body, "Delete")
    quiet = (s3xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = []
    for obj in s3xml.children(root, "Object"):
        key = s3xml.child_text(obj, "Key")
        if key is None:
            raise errors.MalformedXML()
        keys.append(key)
    if not keys or len(keys) > limits.delete_objects_keys_max:
        raise errors.MalformedXML()
    return keys, quiet


async def delete_objects(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    keys, quiet = _parse(await read_xml_body(ctx))
    deleted: list[str] = []
    failed: list[tuple[str, str, str]] = []
    for key in keys:
        try:
            await delete_key(ctx, bucket, check_key(key))
            deleted.append(key)
        except errors.S3Error as err:
            failed.append((key, err.code, err.message))
    return web.Response(body=s3xml.delete_result(deleted, failed, quiet), content_type=XML)
