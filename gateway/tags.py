"""Tag sets of buckets and objects: the rules AWS checks them by, in one place for the
tagging APIs (XML), the x-amz-tagging header and browser POST forms."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qsl

from gateway import errors, limits

Tags = tuple[tuple[str, str], ...]

BUCKET_TAGS_MAX = 50
KEY_CHARS_MAX = 128
VALUE_CHARS_MAX = 256
# Besides letters and digits (any script) and spaces, AWS's tag restrictions allow these.
_PUNCTUATION = frozenset("+-=._:/@ ")
_HEADER = "x-amz-tagging"


def _allowed(text: str) -> bool:
    return all(c.isalnum() or c in _PUNCTUATION for c in text)


def check(tags: Sequence[tuple[str, str]], bucket: bool = False) -> Tags:
    """A bucket's (up to 50) or an object's (up to 10) tag set, or InvalidTag naming the
    tag at fault, as AWS does."""
    limit = BUCKET_TAGS_MAX if bucket else limits.tags_per_object_max
    if len(tags) > limit:
        raise errors.InvalidTag(f"Object tags cannot be greater than {limit}")
    seen: set[str] = set()
    for key, value in tags:
        if key in seen:
            raise errors.InvalidTag("Cannot provide multiple Tags with the same key",
                                    TagKey=key)
        seen.add(key)
        if not 1 <= len(key) <= KEY_CHARS_MAX or len(value) > VALUE_CHARS_MAX:
            raise errors.InvalidTag("The TagKey or TagValue you have provided is too long",
                                    TagKey=key)
        if key.lower().startswith("aws:"):
            raise errors.InvalidTag("System tags cannot be added/updated by requester"
                                    if bucket else "Your TagKey cannot be prefixed with aws:",
                                    TagKey=key)
        if not _allowed(key):
            raise errors.InvalidTag("The TagKey you have provided is invalid", TagKey=key)
        if not _allowed(value):
            raise errors.InvalidTag("The TagValue you have provided is invalid", TagKey=key,
                                    TagValue=value)
    return tuple(tags)


def from_header(raw: str | None) -> Tags:
    """x-amz-tagging (PutObject, CreateMultipartUpload, CopyObject with REPLACE): URL
    query parameters. A set that is not one is InvalidArgument on the header, as AWS."""
    if not raw:
        return ()
    pairs = parse_qsl(raw, keep_blank_values=True)
    if len(pairs) > limits.tags_per_object_max:
        raise errors.InvalidTag(f"Object tags cannot be greater than "
                                f"{limits.tags_per_object_max}")
    try:
        return check(pairs)
    except errors.InvalidTag:
        raise errors.InvalidArgument(
            "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query "
            "parameters without tag name duplicates.", ArgumentName=_HEADER,
            ArgumentValue=raw) from None
