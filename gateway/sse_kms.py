"""SSE-KMS as S3 speaks it: the headers, the ways a request names a key, the encryption
context, and the errors AWS answers. Pure: the keys themselves are gateway/kms.py's.

A request names a key by its id (a UUID), by an alias (`alias/NAME`), or by an ARN of
either (`arn:aws:kms:REGION:ACCOUNT:key/ID`, `...:alias/NAME`); no name means the tenant's
default key (`alias/aws/s3`, as AWS's managed key). Coffre's account in an ARN is the
tenant, its region the cluster's. As AWS resolves an id or alias in the requester's
account, a tenant can only ever name its own keys: another tenant's id is not found, an
ARN of another account is refused (a key policy could grant it on AWS; Coffre has none).

The encryption context (base64 of a JSON object of strings) is kept in canonical form
(sorted keys, no spaces): the text bound into the sealed data key's associated data, so
the same context opens it whatever order or spacing the client sent.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass

from gateway import errors, limits

ALGORITHM = "aws:kms"
KEY_ID = "x-amz-server-side-encryption-aws-kms-key-id"
CONTEXT = "x-amz-server-side-encryption-context"
BUCKET_KEY = "x-amz-server-side-encryption-bucket-key-enabled"
DEFAULT_ALIAS = "aws/s3"            # the tenant's default key, made on first use
_ALIAS_PREFIX = "alias/"
# arn:PARTITION:kms:REGION:ACCOUNT:key/ID or :alias/NAME (partitions: aws, aws-cn, ...)
_ARN = re.compile(r"arn:aws[a-z0-9-]*:kms:([^:]*):([^:]*):(key|alias)/(.+)\Z")


class KmsNotFound(errors.S3Error):
    code = "KMS.NotFoundException"
    status = 400
    default_message = "Invalid keyId"


class KmsDisabled(errors.S3Error):
    code = "KMS.DisabledException"
    status = 400
    default_message = "The KMS key is disabled."


def unreadable() -> errors.S3Error:
    """AWS's answer to a read of an object whose key the requester may not use."""
    return errors.AccessDenied("The ciphertext refers to a customer master key that does not "
                               "exist, does not exist in this region, or you are not allowed "
                               "to access.")


@dataclass(frozen=True)
class KeyRef:
    """A key as a request names it."""

    name: str                   # the key id, or the alias without "alias/"
    alias: bool
    region: str | None = None   # an ARN's region and account; None for a bare id or alias
    account: str | None = None


def parse_ref(text: str) -> KeyRef:
    """What `text` names; anything that is neither an alias nor an ARN is taken for a key id
    (and, not being one, is not found)."""
    found = _ARN.match(text)
    if found is not None:
        region, account, kind, name = found.groups()
        return KeyRef(name, kind == "alias", region, account)
    if text.startswith(_ALIAS_PREFIX):
        return KeyRef(text[len(_ALIAS_PREFIX):], True)
    return KeyRef(text, False)


def check_ref(ref: KeyRef, tenant: str, region: str) -> None:
    """An ARN must name this cluster's region (AWS: "Invalid arn REGION", as a key there
    is not found here) and the requester's own account."""
    if ref.region is not None and ref.region != region:
        raise KmsNotFound(f"Invalid arn {ref.region}")
    if ref.account is not None and ref.account != tenant:
        raise errors.AccessDenied(f"The KMS key of account {ref.account} is not usable by "
                                  "this requester")


def not_found(text: str) -> errors.S3Error:
    return KmsNotFound(f"Invalid keyId {text}")


def key_arn(region: str, tenant: str, key_id: str) -> str:
    return f"arn:aws:kms:{region}:{tenant}:key/{key_id}"


def parse_context(text: str) -> str:
    """The canonical JSON of an x-amz-server-side-encryption-context header ("" for an empty
    context); InvalidArgument with AWS's message for anything but base64 JSON of a
    string-to-string object."""
    bad = errors.InvalidArgument(
        f"The header '{CONTEXT}' shall be Base64-encoded UTF-8 string holding JSON which "
        "represents a string-string map", ArgumentName=CONTEXT)
    if len(text) > limits.encryption_context_chars_max:
        raise bad
    try:
        pairs = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
        raise bad
    return json.dumps(pairs, sort_keys=True, separators=(",", ":"), ensure_ascii=False) \
        if pairs else ""


def parse_bucket_key(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise errors.InvalidArgument("Invalid value for bucket key enabled",
                                     ArgumentName=BUCKET_KEY, ArgumentValue=text)
    return value == "true"


@dataclass(frozen=True)
class KmsUse:
    """How an object (or upload) is encrypted under a KMS key, as its record keeps it."""

    arn: str                    # the key's ARN (gateway/kms.py's key id is its last part)
    context: str = ""           # canonical JSON, bound into the sealed data key
    bucket_key: bool = False    # x-amz-server-side-encryption-bucket-key-enabled, echoed

    @property
    def key_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def response_headers(self) -> dict[str, str]:
        out = {"x-amz-server-side-encryption": ALGORITHM, KEY_ID: self.arn}
        if self.bucket_key:
            out[BUCKET_KEY] = "true"
        return out

    def written_headers(self) -> dict[str, str]:
        """A write's answer also names the context (PutObject, CopyObject and
        CreateMultipartUpload do on AWS; reads do not)."""
        out = self.response_headers()
        if self.context:
            out[CONTEXT] = base64.b64encode(self.context.encode()).decode()
        return out
