"""ListObjects (V1) and ListObjectsV2 result documents, rendered for speed.

A 1000-key page is ~250 KB of XML and its rendering was the largest cost of a listing in
the gateway (s3xml's escape looked at every character in Python, and every LastModified
went through datetime.strftime). Here the escape scans in C (str.translate only when a
regex finds something to escape) and timestamps are formatted from a per-second cache.
Element names and order follow botocore's service model, as in gateway/s3xml.py.
"""

from __future__ import annotations

import re
import time
from functools import lru_cache
from urllib.parse import quote

from gateway.s3xml import HEAD, NS, ListPage

_NEEDS_ESCAPE = re.compile(r"[&<>\x00-\x1f]")
# Control characters S3 keys may hold become character references.
_ESCAPES = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;",
            **{c: f"&#x{c:X};" for c in range(0x20)}}


def esc(text: str) -> str:
    """Escape for element content (the common case, nothing to escape, is one C scan)."""
    return text.translate(_ESCAPES) if _NEEDS_ESCAPE.search(text) else text


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))


def iso8601(ms: int) -> str:
    """S3's timestamp form in XML: 2006-02-03T16:45:09.000Z."""
    return f"{_second(ms // 1000)}{ms % 1000:03d}Z"


def _text(key: str, url: bool) -> str:
    return quote(key, safe="/") if url else esc(key)


def _opt(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{esc(value)}</{name}>"


@lru_cache(maxsize=64)
def checksum_elements(algorithm: str, kind: str) -> str:
    """An entry's ChecksumAlgorithm (a flattened list of one) and ChecksumType, between
    its ETag and its Size as botocore's Object and ObjectVersion shapes order them."""
    if not algorithm:
        return ""
    return (f"<ChecksumAlgorithm>{esc(algorithm)}</ChecksumAlgorithm>"
            f"<ChecksumType>{esc(kind)}</ChecksumType>")


def _entries(page: ListPage, url: bool, owner: str | None) -> str:
    who = "" if owner is None else (f"<Owner><ID>{esc(owner)}</ID>"
                                    f"<DisplayName>{esc(owner)}</DisplayName></Owner>")
    # Most pages hold nothing to escape: one scan of all their texts, not three per entry.
    clean = not url and not _NEEDS_ESCAPE.search("".join([e.key + e.etag + e.storage_class
                                                          for e in page.entries]))
    # One renderer: a page with something to escape has its texts escaped first, so the
    # f-string takes every field as it is (no call per field, iso8601 inlined).
    entries = page.entries if clean else [
        e._replace(key=_text(e.key, url), etag=esc(e.etag), storage_class=esc(e.storage_class))
        for e in page.entries]
    parts = [
        f"<Contents><Key>{key}</Key><LastModified>{_second(ms // 1000)}{ms % 1000:03d}Z"
        f"</LastModified><ETag>{etag}</ETag>{checksum_elements(alg, kind)}<Size>{size}</Size>"
        f"{who}<StorageClass>{storage_class}</StorageClass></Contents>"
        for key, ms, etag, size, storage_class, alg, kind in entries
    ]
    parts.extend(f"<CommonPrefixes><Prefix>{_text(p, url)}</Prefix></CommonPrefixes>"
                 for p in page.common_prefixes)
    return "".join(parts)


def _common_head(bucket: str, prefix: str, url: bool) -> str:
    return (f'{HEAD}<ListBucketResult xmlns="{NS}"><Name>{esc(bucket)}</Name>'
            f"<Prefix>{_text(prefix, url)}</Prefix>")


def _truncated(page: ListPage) -> str:
    return f"<IsTruncated>{'true' if page.truncated else 'false'}</IsTruncated>"


def list_objects_v2(
    bucket: str, prefix: str, delimiter: str | None, max_keys: int, page: ListPage,
    url: bool, continuation: str | None, next_token: str | None, start_after: str | None,
    owner: str | None,
) -> bytes:
    count = len(page.entries) + len(page.common_prefixes)
    body = (
        _common_head(bucket, prefix, url)
        + (f"<Delimiter>{_text(delimiter, url)}</Delimiter>" if delimiter else "")
        + f"<MaxKeys>{max_keys}</MaxKeys>"
        + ("<EncodingType>url</EncodingType>" if url else "")
        + f"<KeyCount>{count}</KeyCount>"
        + _opt("ContinuationToken", continuation)
        + _opt("NextContinuationToken", next_token)
        + (f"<StartAfter>{_text(start_after, url)}</StartAfter>" if start_after else "")
        + _truncated(page) + _entries(page, url, owner) + "</ListBucketResult>"
    )
    return body.encode()


def list_objects_v1(
    bucket: str, prefix: str, delimiter: str | None, max_keys: int, page: ListPage,
    url: bool, marker: str, owner: str,
) -> bytes:
    # NextMarker is only returned when a delimiter is given (AWS's documented behaviour).
    next_marker = page.next_key if page.truncated and delimiter else None
    body = (
        _common_head(bucket, prefix, url)
        + f"<Marker>{_text(marker, url)}</Marker>"
        + (f"<NextMarker>{_text(next_marker, url)}</NextMarker>" if next_marker else "")
        + f"<MaxKeys>{max_keys}</MaxKeys>"
        + (f"<Delimiter>{_text(delimiter, url)}</Delimiter>" if delimiter else "")
        + ("<EncodingType>url</EncodingType>" if url else "")
        + _truncated(page) + _entries(page, url, owner) + "</ListBucketResult>"
    )
    return body.encode()
