"""Bucket sub-resources Coffre does not offer, answered as AWS answers a bucket on which
they were never configured — not 501 — so that tools which probe them (consoles, rclone,
Terraform, backup software) carry on. Setting one still answers 501 NotImplemented.

Also ListObjectVersions on never-versioned buckets: every object is its only version,
with version id "null", as AWS lists an unversioned bucket.
"""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from gateway import errors, s3xml
from gateway.handlers.listing import encoding_param, max_keys_param
from gateway.handlers.objects import owned_bucket
from gateway.listing import list_page
from gateway.state import Ctx

XML = "application/xml"


def _missing(code: str, message: str) -> type[errors.S3Error]:
    return type(code, (errors.S3Error,), {"code": code, "status": 404,
                                          "default_message": message})


_NOT_FOUND = {
    "GetBucketEncryption": _missing(
        "ServerSideEncryptionConfigurationNotFoundError",
        "The server side encryption configuration was not found"),
    "GetBucketReplication": _missing(
        "ReplicationConfigurationNotFoundError", "The replication configuration was not found"),
    "GetObjectLockConfiguration": _missing(
        "ObjectLockConfigurationNotFoundError",
        "Object Lock configuration does not exist for this bucket"),
}

_EMPTY = {
    "GetBucketLogging": ("BucketLoggingStatus", []),
    "GetBucketNotificationConfiguration": ("NotificationConfiguration", []),
    "GetBucketRequestPayment": ("RequestPaymentConfiguration", [("Payer", "BucketOwner")]),
    "GetBucketAccelerateConfiguration": ("AccelerateConfiguration", []),
}


async def unconfigured(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    op = ctx.endpoint.op
    if op in _NOT_FOUND:
        raise _NOT_FOUND[op](BucketName=bucket.name)
    root, fields = _EMPTY[op]
    return web.Response(body=s3xml.simple(root, fields), content_type=XML)


HANDLED = (*_NOT_FOUND, *_EMPTY)


async def list_object_versions(ctx: Ctx) -> web.StreamResponse:
    q = ctx.request.query
    bucket = await owned_bucket(ctx)
    prefix, delimiter = q.get("prefix", ""), q.get("delimiter") or None
    max_keys = max_keys_param(q.get("max-keys"))
    url = encoding_param(q.get("encoding-type"))
    key_marker = q.get("key-marker", "")
    page = await list_page(ctx.state.catalog, bucket, prefix, delimiter, max_keys,
                           key_marker or None)

    def enc(text: str) -> str:
        return s3xml.esc(quote(text, safe="/") if url else text)

    owner = f"<Owner><ID>{s3xml.esc(bucket.owner)}</ID></Owner>"
    items = "".join(
        f"<Version><Key>{enc(e.key)}</Key><VersionId>null</VersionId>"
        f"<IsLatest>true</IsLatest><LastModified>{s3xml.iso8601(e.last_modified_ms)}"
        f"</LastModified><ETag>{s3xml.esc(e.etag)}</ETag><Size>{e.size}</Size>{owner}"
        f"<StorageClass>{e.storage_class}</StorageClass></Version>" for e in page.entries)
    items += "".join(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>"
                     for p in page.common_prefixes)
    nxt = ""
    if page.truncated and page.next_key:
        nxt = (f"<NextKeyMarker>{enc(page.next_key)}</NextKeyMarker>"
               "<NextVersionIdMarker>null</NextVersionIdMarker>")
    body = (
        f'{s3xml.HEAD}<ListVersionsResult xmlns="{s3xml.NS}">'
        f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>"
        f"<KeyMarker>{enc(key_marker)}</KeyMarker><VersionIdMarker>"
        f"{s3xml.esc(q.get('version-id-marker', ''))}</VersionIdMarker>{nxt}"
        f"<Name>{s3xml.esc(bucket.name)}</Name><Prefix>{enc(prefix)}</Prefix>"
        + (f"<Delimiter>{enc(delimiter)}</Delimiter>" if delimiter else "")
        + f"<MaxKeys>{max_keys}</MaxKeys>"
        + ("<EncodingType>url</EncodingType>" if url else "")
        + f"{items}</ListVersionsResult>")
    return web.Response(body=body.encode(), content_type=XML)
