"""SSE-C: the customer-provided keys a request carries, and the rules for when it must.

A customer key comes as three headers (algorithm, base64 key, base64 MD5 of the key; for a
copy's source the same names under x-amz-copy-source-). They are checked here the way AWS
checks them, each fault an InvalidArgument with AWS's message, an algorithm other than
AES256 an InvalidEncryptionAlgorithmError. Nothing of the key is ever stored: what opens
an object is its data key, sealed under the customer key (gateway/sse.py), so a wrong key
is told by that seal failing, not by a stored hash of it. Coffre's gateway speaks plain HTTP
(TLS is a front proxy's job), so unlike AWS it does not refuse these headers over HTTP.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from gateway import errors

AES256 = "AES256"
ALGORITHM = "x-amz-server-side-encryption-customer-algorithm"
KEY = "x-amz-server-side-encryption-customer-key"
KEY_MD5 = "x-amz-server-side-encryption-customer-key-md5"
KEY_BYTES = 32                         # AES-256

_PREFIX = "Requests specifying Server Side Encryption with Customer provided keys must provide "
NOT_APPLICABLE = "The encryption parameters are not applicable to this object."


class InvalidEncryptionAlgorithmError(errors.S3Error):
    code = "InvalidEncryptionAlgorithmError"
    status = 400
    default_message = ("The encryption request that you specified is not valid. "
                       "The valid value is AES256.")


@dataclass(frozen=True)
class CustomerKey:
    key: bytes = field(repr=False)      # the 32 bytes, in memory for this request only
    md5: str                            # base64 MD5 of the key, echoed in answers

    def response_headers(self) -> dict[str, str]:
        return {ALGORITHM: AES256, "x-amz-server-side-encryption-customer-key-MD5": self.md5}


def named(h: Mapping[str, str]) -> bool:
    """Whether a request names a customer key for what it writes (or reads)."""
    return any(name in h for name in (ALGORITHM, KEY, KEY_MD5))


def from_headers(h: Mapping[str, str], copy_source: bool = False) -> CustomerKey | None:
    """The customer key a request gives (for its copy source, if `copy_source`), None when
    it gives none; any piece missing or wrong is refused."""
    names = [_copy_source(n) if copy_source else n for n in (ALGORITHM, KEY, KEY_MD5)]
    algorithm, raw, md5 = (h.get(name) for name in names)
    if algorithm is None and raw is None and md5 is None:
        return None
    if algorithm is None:
        raise errors.InvalidArgument(_PREFIX + "a valid encryption algorithm.",
                                     ArgumentName=names[0])
    if algorithm != AES256:
        raise InvalidEncryptionAlgorithmError(ArgumentName=names[0], ArgumentValue=algorithm)
    if raw is None:
        raise errors.InvalidArgument(_PREFIX + "an appropriate secret key.",
                                     ArgumentName=names[1])
    key = _b64(raw)
    if key is None or len(key) != KEY_BYTES:
        raise errors.InvalidArgument("The secret key was invalid for the specified algorithm.",
                                     ArgumentName=names[1])
    if md5 is None:
        raise errors.InvalidArgument(_PREFIX + "the client calculated MD5 of the secret key.",
                                     ArgumentName=names[2])
    digest = hashlib.md5(key).digest()
    if _b64(md5) != digest:
        raise errors.InvalidArgument(
            "The calculated MD5 hash of the key did not match the hash that was provided.",
            ArgumentName=names[2])
    return CustomerKey(key, base64.b64encode(digest).decode())


def _copy_source(name: str) -> str:
    """x-amz-server-side-encryption-customer-* of a copy's source:
    x-amz-copy-source-server-side-encryption-customer-*."""
    return "x-amz-copy-source-" + name.removeprefix("x-amz-")


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class Rules:
    """What a request about an SSE-C object (or upload) is told when its key is missing
    or does not open the object's data key."""

    missing: str                            # InvalidRequest's message
    wrong: Callable[[], errors.S3Error]


# GET, HEAD, a copy's source: AWS answers a wrong key 403, as it would an unreadable object.
READ = Rules("The object was stored using a form of Server Side Encryption. The correct "
             "parameters must be provided to retrieve the object.", errors.AccessDenied)
# UploadPart (Copy), Complete: every part must come with the key the upload was created with.
PART = Rules("The multipart upload initiate requested encryption. Subsequent part requests "
             "must include the appropriate encryption parameters.",
             lambda: errors.InvalidArgument(
                 "The provided encryption parameters did not match the ones used originally."))


def check(by_customer: bool, given: CustomerKey | None, rules: Rules) -> None:
    """A key is needed exactly for what was written with one."""
    if by_customer and given is None:
        raise errors.InvalidRequest(rules.missing)
    if given is not None and not by_customer:
        raise errors.InvalidRequest(NOT_APPLICABLE)
