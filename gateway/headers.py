"""Object headers kept with an object, and how they are returned (with response-* overrides)."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl

from gateway import errors, limits
from gateway.manifest import Manifest
from gateway.s3xml import http_date

# Content headers S3 stores and returns as given.
STORED_HEADERS = (
    "Content-Type", "Content-Encoding", "Content-Disposition", "Content-Language",
    "Cache-Control", "Expires",
)
WEBSITE_REDIRECT = "x-amz-website-redirect-location"
# GET query parameters that override a response header (AWS's response-* list).
_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {h: headers[h] for h in STORED_HEADERS if h in headers}
    if "Content-Encoding" in out:
        # aws-chunked is transfer framing, not a property of the object.
        kept = [e.strip() for e in out["Content-Encoding"].split(",")
                if e.strip().lower() != "aws-chunked"]
        if kept:
            out["Content-Encoding"] = ", ".join(kept)
        else:
            del out["Content-Encoding"]
    out.setdefault("Content-Type", "binary/octet-stream")
    redirect = headers.get(WEBSITE_REDIRECT)
    if redirect is not None:
        # Where the bucket's website sends a GET of this object (gateway.website_serve).
        if not redirect.startswith(("/", "http://", "https://")):
            raise errors.InvalidRedirectLocation()
        out[WEBSITE_REDIRECT] = redirect
    sc = headers.get("x-amz-storage-class")
    if sc:
        if sc not in {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                      "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}:
            raise errors.InvalidStorageClass()
        if sc != "STANDARD":
            out["x-amz-storage-class"] = sc
    return out


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    meta = {k.lower()[len("x-amz-meta-"):]: v for k, v in headers.items()
            if k.lower().startswith("x-amz-meta-")}
    size = sum(len(k.encode()) + len(v.encode()) for k, v in meta.items())
    if size > limits.user_metadata_bytes_max:
        raise errors.MetadataTooLarge()
    return meta


def object_headers(m: Manifest, query: Mapping[str, str]) -> dict[str, str]:
    """Response headers of GET/HEAD for a manifest."""
    out = dict(m.headers)
    out["ETag"] = m.etag
    out["Last-Modified"] = http_date(m.mtime_ms)
    out["Accept-Ranges"] = "bytes"
    for k, v in m.meta.items():
        out[f"x-amz-meta-{k}"] = v
    if m.tags:
        out["x-amz-tagging-count"] = str(len(m.tags))
    for param, header in _OVERRIDES.items():
        if param in query:
            out[header] = query[param]
    return out


def tagging_header(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """x-amz-tagging: URL-query-encoded tags, as PutObject and CreateMultipartUpload take."""
    raw = headers.get("x-amz-tagging")
    if not raw:
        return ()
    pairs = parse_qsl(raw, keep_blank_values=True)
    keys = [k for k, _ in pairs]
    if len(pairs) > limits.tags_per_object_max:
        raise errors.InvalidTag("Object tags cannot be greater than 10")
    if len(set(keys)) != len(keys):
        raise errors.InvalidTag("Cannot provide multiple Tags with the same key")
    for k, v in pairs:
        if not 1 <= len(k) <= 128 or len(v) > 256:
            raise errors.InvalidTag("The TagKey or TagValue you have provided is too long")
    return tuple(pairs)
