"""Object headers kept with an object, and how they are returned (with response-* overrides).

Header values come from aiohttp as possibly undecodable text; everything stored goes through
gateway.header_text first, so that a byte that is not UTF-8 is stored as a character, never
as a lone surrogate that cannot be stored or sent again.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway import errors, limits, tags
from gateway.header_text import (
    decode_words,
    encode_words,
    has_control,
    is_token,
    latin1_text,
    utf8_text,
)
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


META_PREFIX = "x-amz-meta-"


def stored_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Returned as they came: the same bytes when they were UTF-8 (aiohttp sends text as UTF-8).
    out = {h: utf8_text(headers[h]) for h in STORED_HEADERS if h in headers}
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
        redirect = utf8_text(redirect)
        # Where the bucket's website sends a GET of this object (gateway.website_serve).
        if not redirect.startswith(("/", "http://", "https://")):
            raise errors.InvalidRedirectLocation()
        out[WEBSITE_REDIRECT] = redirect
    sc = headers.get("x-amz-storage-class")
    if sc:
        if sc not in {"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
                      "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}:
            raise errors.InvalidStorageClass(StorageClassRequested=sc)
        if sc != "STANDARD":
            out["x-amz-storage-class"] = sc
    return out


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """x-amz-meta-* as S3 stores them: names lower-cased, values read as ISO-8859-1 with their
    RFC 2047 encoded-words decoded (gateway.header_text)."""
    meta = {latin1_text(k).lower()[len(META_PREFIX):]: decode_words(latin1_text(v))
            for k, v in headers.items() if k.lower().startswith(META_PREFIX)}
    return checked_metadata(meta)


def checked_metadata(meta: dict[str, str]) -> dict[str, str]:
    """User metadata within S3's 2 KB (names and values, UTF-8), else MetadataTooLarge;
    for a PUT's headers and a browser POST's form fields alike."""
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
    out.update(metadata_headers(m.meta))
    if m.tags:
        out["x-amz-tagging-count"] = str(len(m.tags))
    for param, header in _OVERRIDES.items():
        if param in query:
            out[header] = _override(param, query[param])
    return out


def _override(param: str, value: str) -> str:
    # S3 sends header values as ISO-8859-1 and refuses an override it cannot (AWS's message);
    # a control character (a %0D%0A in the query) would end the header block itself.
    if has_control(value) or any(ord(c) > 0xFF for c in value):
        raise errors.InvalidArgument("Header value cannot be represented using ISO-8859-1.",
                                     ArgumentName=param, ArgumentValue=value)
    return value


def metadata_headers(meta: Mapping[str, str]) -> dict[str, str]:
    """x-amz-meta-* response headers. Values that are not printable US-ASCII go as RFC 2047
    words (S3's answer, and no decoded CR or LF can break the header block); a name that
    cannot be a header name (a browser form's field may be anything) is left out and
    counted in x-amz-missing-meta, as S3 does with metadata it cannot return."""
    out = {}
    missing = 0
    for name, value in meta.items():
        if is_token(name):
            out[f"{META_PREFIX}{name}"] = encode_words(value)
        else:
            missing += 1
    if missing:
        out["x-amz-missing-meta"] = str(missing)
    return out


def tagging_header(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """x-amz-tagging: URL-query-encoded tags, as PutObject and CreateMultipartUpload take."""
    return tags.from_header(headers.get("x-amz-tagging"))
