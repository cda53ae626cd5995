"""Bucket-name and object-key rules, as AWS documents them for general purpose buckets."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote_plus

from gateway import errors, limits

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> None:
    """Raise InvalidBucketName unless `name` follows S3's naming rules."""
    if not limits.bucket_name_chars_min <= len(name) <= limits.bucket_name_chars_max:
        raise errors.InvalidBucketName(BucketName=name)
    if not _BUCKET_RE.match(name) or ".." in name or ".-" in name or "-." in name:
        raise errors.InvalidBucketName(BucketName=name)
    if name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        raise errors.InvalidBucketName(BucketName=name)
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return
    raise errors.InvalidBucketName(BucketName=name)


def check_key(key: str) -> bytes:
    """Return the key's UTF-8 bytes; refuse empty or over-long keys.

    Keys are opaque: `..`, `//` and control characters are stored as given (as AWS does);
    nothing ever builds a file path from them.
    """
    if not key:
        raise errors.InvalidArgument("Object key must not be empty")
    try:
        raw = key.encode("utf-8")
    except UnicodeEncodeError:
        raise errors.InvalidArgument("Object key is not valid UTF-8") from None
    if len(raw) > limits.key_bytes_max:
        raise errors.KeyTooLongError()
    return raw


def copy_source_path(raw: str) -> str:
    """The "bucket/key" an x-amz-copy-source value names, before any "?versionId=".

    The value is URL-encoded, and a '+' in it is a space (AWS decodes it as a form value:
    Go's url.QueryEscape, for one, sends "test+key.txt" for "test key.txt"); a key that
    holds a '+' arrives as %2B from every SDK. A leading '/' is optional."""
    text = unquote_plus(raw.partition("?")[0])
    return text[1:] if text.startswith("/") else text
