"""Browser POST uploads: the signed POST policy (SigV4) and its conditions.

Pure. A web page posts a multipart form whose fields carry a base64 JSON policy (an
expiration and a list of conditions), the credential, the date and a signature: the HMAC of
the base64 policy text under the SigV4 signing key of the credential's scope (or, in the
older form boto3 still makes by default, HMAC-SHA1 under the secret itself). The gateway
checks, in order: the signature (so the policy is the key owner's), the expiration, then
that every condition holds and that every form field is named by a condition (AWS's rule:
a field no condition mentions could be anything, so it is refused). Exceptions to that rule
are the fields that carry the signature itself, `file`, and `x-ignore-*` fields.
Condition forms: {"field": "value"}, ["eq", "$field", "value"],
["starts-with", "$field", "prefix"], ["content-length-range", min, max].
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway import errors, sigv4

# Limits (gateway/limits.py belongs to the lead; these move there when it is merged).
post_policy_bytes_max = 20 * 1024        # the base64 policy document
post_field_bytes_max = 20 * 1024         # one form field other than the file
post_fields_max = 64
post_upload_bytes_max = 64 * 1024 * 1024  # the file is buffered: its size comes last

_UNCHECKED = frozenset({"x-amz-signature", "file", "policy", "signature", "awsaccesskeyid"})
# The fields of each signature, in the order AWS names the first one missing.
_V4_FIELDS = ("X-Amz-Signature", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date")
_V2_FIELDS = ("Signature", "AWSAccessKeyId")


class InvalidPolicyDocument(errors.S3Error):
    code = "InvalidPolicyDocument"
    status = 400
    default_message = "Invalid Policy: Invalid JSON."


@dataclass(frozen=True)
class PostPolicy:
    expiration: datetime
    conditions: tuple[Any, ...]


def _denied(detail: str) -> errors.S3Error:
    return errors.AccessDenied(f"Invalid according to Policy: {detail}")


def missing_field(name: str) -> errors.S3Error:
    """AWS's answer to a form without a field it needs (`name` as AWS spells it): the
    fields after the file are not read, hence the hint."""
    return errors.InvalidArgument(
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please "
        "check the order of the fields.", ArgumentName=name, ArgumentValue="")


def _require(fields: Mapping[str, str], names: tuple[str, ...]) -> bool:
    """Whether the form signs this way (one of `names` is there); then all must be."""
    if not any(n.lower() in fields for n in names):
        return False
    for name in names:
        if name.lower() not in fields:
            raise missing_field(name)
    return True


def _unknown_key(access_key: str) -> errors.S3Error:
    return errors.InvalidAccessKeyId(AWSAccessKeyId=access_key)


def _mismatch(fields: Mapping[str, str], access_key: str, given: str) -> errors.S3Error:
    # What was signed is the policy field itself (AWS shows it as the StringToSign).
    return errors.signature_mismatch(access_key, fields["policy"], given)


def _verify_v2(fields: Mapping[str, str], secret_of: Callable[[str], str | None]) -> str:
    """The older form boto3 still makes by default: base64 HMAC-SHA1 of the policy."""
    access_key = fields["awsaccesskeyid"]
    secret = secret_of(access_key)
    if secret is None:
        raise _unknown_key(access_key)
    mac = hmac.new(secret.encode(), fields["policy"].encode(), hashlib.sha1).digest()
    if not sigv4.signatures_equal(base64.b64encode(mac).decode(), fields["signature"]):
        raise _mismatch(fields, access_key, fields["signature"])
    return access_key


def _verify_v4(fields: Mapping[str, str], secret_of: Callable[[str], str | None],
               region: str) -> str:
    if fields["x-amz-algorithm"] != sigv4.ALGORITHM:
        raise errors.InvalidArgument("Unsupported x-amz-algorithm",
                                     ArgumentName="x-amz-algorithm")
    parts = fields["x-amz-credential"].split("/")
    if len(parts) != 5 or parts[2:] != [region, sigv4.SERVICE, sigv4.TERMINATOR] or \
            not fields["x-amz-date"].startswith(parts[1]):
        raise errors.InvalidArgument("Invalid x-amz-credential",
                                     ArgumentName="x-amz-credential")
    access_key, date = parts[0], parts[1]
    secret = secret_of(access_key)
    if secret is None:
        raise _unknown_key(access_key)
    expected = sigv4.hmac_hex(sigv4.signing_key(secret, date, region), fields["policy"])
    if not sigv4.signatures_equal(expected, fields["x-amz-signature"]):
        raise _mismatch(fields, access_key, fields["x-amz-signature"])
    return access_key


def verify_signature(fields: Mapping[str, str], secret_of: Callable[[str], str | None],
                     region: str) -> str | None:
    """The access key that signed the form, or None for an unsigned (anonymous) one.

    As AWS answers (LocalStack's validated snapshots): a form with a policy signs with
    SigV4 fields or SigV2 ones, each set whole, else it is refused (403); a form with a
    signature needs its policy; one with neither is anonymous."""
    v4 = _require(fields, _V4_FIELDS)
    v2 = not v4 and _require(fields, _V2_FIELDS)
    if "policy" not in fields:
        if v4 or v2:
            raise missing_field("Policy")
        return None
    if v4:
        return _verify_v4(fields, secret_of, region)
    if v2:
        return _verify_v2(fields, secret_of)
    raise errors.AccessDenied()


def parse_policy(policy_b64: str) -> PostPolicy:
    if len(policy_b64) > post_policy_bytes_max:
        raise InvalidPolicyDocument("Invalid Policy: the policy document is too large.")
    try:
        doc = json.loads(base64.b64decode(policy_b64, validate=True))
        expiration = datetime.strptime(doc["expiration"].replace(".000Z", "Z"),
                                       "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        conditions = doc["conditions"]
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        raise InvalidPolicyDocument() from None
    if not isinstance(conditions, list):
        raise InvalidPolicyDocument("Invalid Policy: conditions must be a list.")
    return PostPolicy(expiration, tuple(conditions))


def _field(name: Any) -> str:
    if not isinstance(name, str):
        raise InvalidPolicyDocument("Invalid Policy: a condition names no field.")
    return name.lstrip("$").lower()


def _check_one(cond: Any, fields: Mapping[str, str], size: int) -> set[str]:
    """Check one condition; return the form fields it covers."""
    if isinstance(cond, dict) and len(cond) == 1:
        name, value = next(iter(cond.items()))
        cond = ["eq", "$" + str(name), value]
    if not isinstance(cond, list) or len(cond) != 3:
        raise InvalidPolicyDocument("Invalid Policy: a condition is malformed.")
    op = str(cond[0]).lower()
    if op == "content-length-range":
        low, high = cond[1], cond[2]
        if not isinstance(low, int) or not isinstance(high, int):
            raise InvalidPolicyDocument("Invalid Policy: content-length-range needs integers.")
        if not low <= size <= high:
            raise (errors.too_small(size, low) if size < low else errors.too_large(size, high))
        return set()
    name, wanted = _field(cond[1]), cond[2]
    if not isinstance(wanted, str):
        raise InvalidPolicyDocument("Invalid Policy: a condition value is not a string.")
    got = fields.get(name, "")
    if op not in ("eq", "starts-with"):
        raise InvalidPolicyDocument(f"Invalid Policy: unknown condition {op}.")
    if not (got == wanted if op == "eq" else got.startswith(wanted)):
        raise _denied(f'Policy Condition failed: ["{op}", "${name}", "{wanted}"]')
    return {name}


def check_policy(policy: PostPolicy, fields: Mapping[str, str], size: int,
                 now: datetime) -> None:
    """Expiration, every condition, and every field covered by one; `fields` has the
    bucket under "bucket" and the final key under "key" (names lower-cased)."""
    if now >= policy.expiration:
        raise _denied("Policy expired.")
    covered = {"bucket"}        # the URL's, put in `fields` by the caller for conditions
    for cond in policy.conditions:
        covered |= _check_one(cond, fields, size)
    for name in fields:
        if name in _UNCHECKED or name.startswith("x-ignore-") or name in covered:
            continue
        raise _denied(f'Extra input fields: {name}')
