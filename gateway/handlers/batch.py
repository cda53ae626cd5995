"""DeleteObjects: up to 1000 keys in one request, each answered on its own."""

from __future__ import annotations

from aiohttp import web

from gateway import errors, limits, s3xml, versions
from gateway.handlers.buckets import read_xml_body
from gateway.handlers.objects import bypass_governance, delete_key, owned_bucket
from gateway.names import check_key
from gateway.state import Ctx

XML = "application/xml"


def _parse(body: bytes) -> tuple[list[tuple[str, str | None]], bool]:
    root = s3xml.parse(body, "Delete")
    quiet = (s3xml.child_text(root, "Quiet") or "").strip().lower() == "true"
    keys = []
    for obj in s3xml.children(root, "Object"):
        key = s3xml.child_text(obj, "Key")
        if key is None:
            raise errors.MalformedXML()
        keys.append((key, s3xml.child_text(obj, "VersionId")))
    if not keys or len(keys) > limits.delete_objects_keys_max:
        raise errors.MalformedXML()
    return keys, quiet


def _known_form(version_id: str) -> None:
    """A version id no version can have is, to DeleteObjects, a version it has not got:
    NoSuchVersion for that key (DeleteObject alone answers 400 InvalidArgument)."""
    try:
        versions.parse_version_id(version_id)
    except errors.InvalidArgument:
        raise errors.NoSuchVersion() from None


async def delete_objects(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    keys, quiet = _parse(await read_xml_body(ctx))
    deleted: list[s3xml.Deleted] = []
    failed: list[tuple[str, str | None, str, str]] = []
    bypass = bypass_governance(ctx, bucket)
    for key, version_id in keys:
        try:
            if version_id is not None:
                _known_form(version_id)
            gone = await delete_key(ctx, bucket, check_key(key), version_id, bypass)
        except errors.S3Error as err:
            failed.append((key, version_id, err.code, err.message))
            continue
        marker = gone is not None and gone.marker
        deleted.append(s3xml.Deleted(key, version_id, marker,
                                     gone.version_id if marker and gone else None))
    return web.Response(body=s3xml.delete_result(deleted, failed, quiet), content_type=XML)
