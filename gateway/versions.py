"""Object versions: where each version's record lives and what its version id is (pure).

A versioned bucket (versioning Enabled or Suspended) keeps every version of a key as a
record of its own, beside the key's current record (gateway/catalog.py's `O` record, which
every GET, HEAD and ListObjects reads as before):

    b"V" + bucket id + key + b"\\x00" + suffix(stamp)

`stamp` is the hybrid-clock timestamp the version was written with (gateway/hlc.py) and
`suffix` its complement to 2**96, written as 32 base-8 digits in the bytes 0xF8..0xFF, so
that one key's versions sort newest first, right after the key and before any longer key
(no key holds a NUL byte in a versioned bucket). Those bytes never occur in UTF-8, and a
delimiter is UTF-8 without NUL, so a node rolling a listing up at a delimiter never cuts a
version suffix: the same node-side listing serves ListObjectVersions.

A version id is the stamp in 24 hex digits; a null version (written while versioning was
off or suspended) is "null" whatever its stamp.
"""

from __future__ import annotations

from gateway import errors, s3xml

PREFIX = b"V"
SEPARATOR = b"\x00"
NULL_ID = "null"
ENABLED, SUSPENDED = "Enabled", "Suspended"
_STAMP_BITS = 96
_DIGITS = _STAMP_BITS // 3
_LOW = 0xF8
SUFFIX_LEN = _DIGITS


def suffix(stamp: int) -> bytes:
    """The order-reversing suffix of a stamp: a newer stamp gives a smaller suffix."""
    if not 0 < stamp < 1 << _STAMP_BITS:
        raise ValueError(f"stamp out of range: {stamp}")
    inverted = (1 << _STAMP_BITS) - 1 - stamp
    return bytes(_LOW + ((inverted >> (3 * i)) & 7) for i in range(_DIGITS - 1, -1, -1))


def stamp_of_suffix(raw: bytes) -> int:
    if len(raw) != _DIGITS or any(b < _LOW for b in raw):
        raise ValueError("not a version suffix")
    inverted = 0
    for b in raw:
        inverted = inverted << 3 | (b - _LOW)
    return (1 << _STAMP_BITS) - 1 - inverted


def record_key(bucket_id: bytes, key: bytes, stamp: int) -> bytes:
    return PREFIX + bucket_id + key + SEPARATOR + suffix(stamp)


def key_prefix(bucket_id: bytes, key: bytes) -> bytes:
    """Every version record of one key starts so (and no other key's)."""
    return PREFIX + bucket_id + key + SEPARATOR


def split_row_key(raw: bytes) -> tuple[bytes, int]:
    """(key, stamp) of a version record key with its bucket prefix stripped."""
    cut = len(raw) - _DIGITS - 1
    if cut < 0 or raw[cut:cut + 1] != SEPARATOR:
        raise ValueError("not a version record key")
    return raw[:cut], stamp_of_suffix(raw[cut + 1:])


def version_id(stamp: int, null: bool) -> str:
    """The id clients see: "null" for a null version, else the stamp in hex."""
    return NULL_ID if null or stamp == 0 else f"{stamp:024x}"


def parse_version_id(text: str) -> int | None:
    """The stamp a version id names; None for "null". InvalidArgument when malformed."""
    if text == NULL_ID:
        return None
    if len(text) == 24 and all(c in "0123456789abcdef" for c in text):
        stamp = int(text, 16)
        if stamp:
            return stamp
    raise errors.InvalidArgument("Invalid version id specified", ArgumentName="versionId",
                                 ArgumentValue=text)


class IllegalVersioningConfiguration(errors.S3Error):
    code = "IllegalVersioningConfigurationException"
    status = 400
    default_message = "The Versioning element must be specified"


def parse_status(body: bytes) -> tuple[str, str]:
    """(Status, MfaDelete) of a PutBucketVersioning body, as AWS validates it: a status,
    when given, is Enabled or Suspended; a configuration naming neither is refused."""
    root = s3xml.parse(body, "VersioningConfiguration")
    status = s3xml.child_text(root, "Status") or ""
    mfa = s3xml.child_text(root, "MfaDelete") or ""
    if not status and not mfa:      # AWS refuses a configuration that says nothing
        raise IllegalVersioningConfiguration("The Versioning element must be specified")
    if status not in ("", ENABLED, SUSPENDED) or mfa not in ("", ENABLED, "Disabled"):
        raise errors.MalformedXML()
    return status, mfa
