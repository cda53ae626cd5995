"""Request routing: method + host + path + query -> a typed Endpoint, before any handler runs.

Pure: no aiohttp here. Path-style (`/bucket/key`) and virtual-hosted-style
(`bucket.<domain>/key`) addressing both resolve to the same Endpoint. The operation name is
AWS's (PutObject, ListObjectsV2, ...), so logs, metrics and the 501 list speak S3's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote

from gateway import errors


class Level(Enum):
    SERVICE = "service"
    BUCKET = "bucket"
    OBJECT = "object"


@dataclass(frozen=True)
class Endpoint:
    op: str
    bucket: str | None
    key: str | None


# Subresources that select an operation, in the order they are checked. AWS routes on the
# presence of these query names; any other query parameter is an argument, not a selector.
_SUBRESOURCES = (
    "uploads", "uploadId", "delete", "tagging", "acl", "policy", "policyStatus", "cors",
    "location", "versioning", "versions", "lifecycle", "website", "logging", "notification",
    "replication", "encryption", "requestPayment", "accelerate", "analytics", "inventory",
    "metrics", "intelligent-tiering", "ownershipControls", "publicAccessBlock", "object-lock",
    "legal-hold", "retention", "restore", "select", "torrent", "attributes", "session",
    "renameObject",
)

# (method, level, selector) -> operation. selector "" means no subresource.
_ROUTES: Mapping[tuple[str, Level, str], str] = {
    ("GET", Level.SERVICE, ""): "ListBuckets",
    ("HEAD", Level.BUCKET, ""): "HeadBucket",
    ("PUT", Level.BUCKET, ""): "CreateBucket",
    ("DELETE", Level.BUCKET, ""): "DeleteBucket",
    ("GET", Level.BUCKET, ""): "ListObjects",
    ("POST", Level.BUCKET, ""): "PostObject",
    ("POST", Level.BUCKET, "delete"): "DeleteObjects",
    ("GET", Level.BUCKET, "location"): "GetBucketLocation",
    ("GET", Level.BUCKET, "uploads"): "ListMultipartUploads",
    ("GET", Level.BUCKET, "versioning"): "GetBucketVersioning",
    ("PUT", Level.BUCKET, "versioning"): "PutBucketVersioning",
    ("GET", Level.BUCKET, "versions"): "ListObjectVersions",
    ("GET", Level.BUCKET, "tagging"): "GetBucketTagging",
    ("PUT", Level.BUCKET, "tagging"): "PutBucketTagging",
    ("DELETE", Level.BUCKET, "tagging"): "DeleteBucketTagging",
    ("GET", Level.BUCKET, "acl"): "GetBucketAcl",
    ("PUT", Level.BUCKET, "acl"): "PutBucketAcl",
    ("GET", Level.BUCKET, "policy"): "GetBucketPolicy",
    ("PUT", Level.BUCKET, "policy"): "PutBucketPolicy",
    ("DELETE", Level.BUCKET, "policy"): "DeleteBucketPolicy",
    ("GET", Level.BUCKET, "policyStatus"): "GetBucketPolicyStatus",
    ("GET", Level.BUCKET, "cors"): "GetBucketCors",
    ("PUT", Level.BUCKET, "cors"): "PutBucketCors",
    ("DELETE", Level.BUCKET, "cors"): "DeleteBucketCors",
    ("GET", Level.BUCKET, "lifecycle"): "GetBucketLifecycleConfiguration",
    ("PUT", Level.BUCKET, "lifecycle"): "PutBucketLifecycleConfiguration",
    ("DELETE", Level.BUCKET, "lifecycle"): "DeleteBucketLifecycle",
    ("GET", Level.BUCKET, "encryption"): "GetBucketEncryption",
    ("PUT", Level.BUCKET, "encryption"): "PutBucketEncryption",
    ("DELETE", Level.BUCKET, "encryption"): "DeleteBucketEncryption",
    ("GET", Level.BUCKET, "publicAccessBlock"): "GetPublicAccessBlock",
    ("PUT", Level.BUCKET, "publicAccessBlock"): "PutPublicAccessBlock",
    ("DELETE", Level.BUCKET, "publicAccessBlock"): "DeletePublicAccessBlock",
    ("GET", Level.BUCKET, "ownershipControls"): "GetBucketOwnershipControls",
    ("PUT", Level.BUCKET, "ownershipControls"): "PutBucketOwnershipControls",
    ("DELETE", Level.BUCKET, "ownershipControls"): "DeleteBucketOwnershipControls",
    ("GET", Level.BUCKET, "website"): "GetBucketWebsite",
    ("PUT", Level.BUCKET, "website"): "PutBucketWebsite",
    ("DELETE", Level.BUCKET, "website"): "DeleteBucketWebsite",
    ("GET", Level.BUCKET, "logging"): "GetBucketLogging",
    ("PUT", Level.BUCKET, "logging"): "PutBucketLogging",
    ("GET", Level.BUCKET, "notification"): "GetBucketNotificationConfiguration",
    ("GET", Level.BUCKET, "replication"): "GetBucketReplication",
    ("GET", Level.BUCKET, "requestPayment"): "GetBucketRequestPayment",
    ("GET", Level.BUCKET, "accelerate"): "GetBucketAccelerateConfiguration",
    ("PUT", Level.BUCKET, "accelerate"): "PutBucketAccelerateConfiguration",
    ("GET", Level.BUCKET, "object-lock"): "GetObjectLockConfiguration",
    ("PUT", Level.BUCKET, "object-lock"): "PutObjectLockConfiguration",
    ("PUT", Level.OBJECT, ""): "PutObject",
    ("GET", Level.OBJECT, ""): "GetObject",
    ("HEAD", Level.OBJECT, ""): "HeadObject",
    ("DELETE", Level.OBJECT, ""): "DeleteObject",
    ("POST", Level.OBJECT, "uploads"): "CreateMultipartUpload",
    ("POST", Level.OBJECT, "uploadId"): "CompleteMultipartUpload",
    ("PUT", Level.OBJECT, "uploadId"): "UploadPart",
    ("GET", Level.OBJECT, "uploadId"): "ListParts",
    ("DELETE", Level.OBJECT, "uploadId"): "AbortMultipartUpload",
    ("GET", Level.OBJECT, "tagging"): "GetObjectTagging",
    ("PUT", Level.OBJECT, "tagging"): "PutObjectTagging",
    ("DELETE", Level.OBJECT, "tagging"): "DeleteObjectTagging",
    ("GET", Level.OBJECT, "acl"): "GetObjectAcl",
    ("PUT", Level.OBJECT, "acl"): "PutObjectAcl",
    ("GET", Level.OBJECT, "attributes"): "GetObjectAttributes",
    ("POST", Level.OBJECT, "restore"): "RestoreObject",
    ("POST", Level.OBJECT, "select"): "SelectObjectContent",
    ("GET", Level.OBJECT, "torrent"): "GetObjectTorrent",
    ("GET", Level.OBJECT, "legal-hold"): "GetObjectLegalHold",
    ("PUT", Level.OBJECT, "legal-hold"): "PutObjectLegalHold",
    ("GET", Level.OBJECT, "retention"): "GetObjectRetention",
    ("PUT", Level.OBJECT, "retention"): "PutObjectRetention",
}


def split_host(host: str, domain: str) -> str | None:
    """The bucket named by a virtual-hosted-style Host header, or None for path style."""
    name = host.rsplit(":", 1)[0].lower() if not host.startswith("[") else ""
    if domain and name.endswith("." + domain):
        return name[: -len(domain) - 1]
    return None


def route(
    method: str,
    raw_path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    host_bucket: str | None = None,
) -> Endpoint:
    """Resolve a request to its S3 operation; unknown ones raise NotImplemented (501)."""
    path = unquote(raw_path, errors="strict") if "%" in raw_path else raw_path
    if host_bucket is not None:
        bucket: str | None = host_bucket
        key = path[1:] if path.startswith("/") else path
    else:
        trimmed = path[1:] if path.startswith("/") else path
        bucket, _, key = trimmed.partition("/")
    bucket = bucket or None
    key_or_none = key or None
    level = Level.SERVICE if bucket is None else Level.BUCKET if key_or_none is None else (
        Level.OBJECT
    )
    selector = next((s for s in _SUBRESOURCES if s in query), "")
    if level is Level.OBJECT and selector == "" and "partNumber" in query and method == "PUT":
        selector = "uploadId"
    op = _ROUTES.get((method.upper(), level, selector))
    if op is None:
        if method.upper() not in {"GET", "PUT", "POST", "DELETE", "HEAD"}:
            raise errors.MethodNotAllowed(Method=method, ResourceType=level.value.upper())
        raise errors.NotImplementedError_(
            f"{method} {level.value} ?{selector or '(none)'} is not implemented"
        )
    op = _refine(op, query, headers)
    return Endpoint(op, bucket, key_or_none)


def _refine(op: str, query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """Operations that share a route and differ by a header or parameter."""
    copy = "x-amz-copy-source" in headers
    if op == "PutObject" and copy:
        return "CopyObject"
    if op == "UploadPart" and copy:
        return "UploadPartCopy"
    if op == "ListObjects" and query.get("list-type") == "2":
        return "ListObjectsV2"
    return op
