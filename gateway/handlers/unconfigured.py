"""Bucket sub-resources Coffre does not offer, answered as AWS answers a bucket on which
they were never configured — not 501 — so that tools which probe them (consoles, rclone,
Terraform, backup software) carry on. Setting one still answers 501 NotImplemented.
"""

from __future__ import annotations

from aiohttp import web

from gateway import errors, s3xml
from gateway.handlers.objects import owned_bucket
from gateway.state import Ctx

XML = "application/xml"


def _missing(code: str, message: str) -> type[errors.S3Error]:
    return type(code, (errors.S3Error,), {"code": code, "status": 404,
                                          "default_message": message})


_NOT_FOUND = {
    "GetBucketReplication": _missing(
        "ReplicationConfigurationNotFoundError", "The replication configuration was not found"),
}

_EMPTY = {
    "GetBucketNotificationConfiguration": ("NotificationConfiguration", []),
    "GetBucketRequestPayment": ("RequestPaymentConfiguration", [("Payer", "BucketOwner")]),
}


async def unconfigured(ctx: Ctx) -> web.StreamResponse:
    bucket = await owned_bucket(ctx)
    op = ctx.endpoint.op
    if op in _NOT_FOUND:
        raise _NOT_FOUND[op](BucketName=bucket.name)
    root, fields = _EMPTY[op]
    return web.Response(body=s3xml.simple(root, fields), content_type=XML)


HANDLED = (*_NOT_FOUND, *_EMPTY)
