"""AWS Signature Version 2 for S3 (HMAC-SHA1): the legacy header and presigned-URL forms.

Still what boto3 produces for `generate_presigned_url` in us-east-1 by default, and what
older tools send; S3 itself still accepts it there. Pure: request values in, the access key
out, or an S3Error.

StringToSign = VERB \\n Content-MD5 \\n Content-Type \\n Date-or-Expires \\n
               x-amz-* headers (lower-cased, sorted, "name:v1,v2\\n" each)
               + resource: the path as sent (with the bucket, also for virtual hosts;
                 "/bucket" alone may be signed as "/bucket/")
               + "?" + the sub-resources of interest, sorted, values unescaped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from gateway import errors
from gateway.numbers import is_decimal

# Query parameters that are part of the signed resource (AWS's list, as clients use it).
SUBRESOURCES = frozenset({
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber",
    "policy", "requestPayment", "torrent", "versioning", "versionId", "versions", "website",
    "uploads", "uploadId", "response-content-type", "response-content-language",
    "response-expires", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "delete", "lifecycle", "tagging", "restore",
    "storageClass", "notification", "replication", "analytics", "metrics", "inventory",
    "select", "select-type", "object-lock",
})
presign_expires_s_max = 7 * 24 * 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_v2(headers: Sequence[tuple[str, str]], raw_query: str) -> bool:
    for name, value in headers:
        if name.lower() == "authorization":
            return value.lstrip().startswith("AWS ")
    params = _params(raw_query)
    return "AWSAccessKeyId" in params and "Signature" in params


def _params(raw_query: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for piece in raw_query.split("&") if raw_query else ():
        name, _, value = piece.partition("=")
        out.setdefault(unquote(name), value)    # values stay as sent; callers unquote
    return out


def canonical_resource(resource_path: str, raw_query: str) -> str:
    subs = []
    for piece in raw_query.split("&") if raw_query else ():
        name, sep, value = piece.partition("=")
        if name in SUBRESOURCES:
            subs.append((name, f"{name}={unquote(value)}" if sep else name))
    subs.sort(key=lambda pair: pair[0])
    return resource_path + ("?" + "&".join(s for _, s in subs) if subs else "")


def string_to_sign(method: str, headers: Sequence[tuple[str, str]], date_line: str,
                   resource: str, extra_amz: Sequence[tuple[str, str]] = ()) -> str:
    table: dict[str, list[str]] = {}
    for name, value in [*headers, *extra_amz]:
        table.setdefault(name.lower(), []).append(value.strip())
    amz = "".join(f"{n}:{','.join(table[n])}\n" for n in sorted(table) if n.startswith("x-amz-"))
    md5 = ",".join(table.get("content-md5", []))
    ctype = ",".join(table.get("content-type", []))
    return f"{method.upper()}\n{md5}\n{ctype}\n{date_line}\n{amz}{resource}"


def sign(secret_key: str, to_sign: str) -> str:
    # surrogateescape: header values carry the bytes that were sent, UTF-8 or not.
    message = to_sign.encode("utf-8", "surrogateescape")
    digest = hmac.new(secret_key.encode(), message, hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def authenticate(method: str, resource_path: str, raw_query: str,
                 headers: Sequence[tuple[str, str]],
                 lookup_secret: Callable[[str], str | None], now: datetime,
                 max_skew_s: int = 900) -> str:
    """Verify a SigV2 request; return its access key id.

    `resource_path` is the raw path as sent, prefixed with /bucket for virtual-hosted
    requests (S3 signs the bucket either way).
    """
    params = _params(raw_query)
    header = next((v for n, v in headers if n.lower() == "authorization"), None)
    if header is not None:
        access, colon, given = header.strip()[len("AWS "):].rpartition(":")
        if not colon or not access or not given:
            raise errors.InvalidArgument(
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature",
                ArgumentName="Authorization", ArgumentValue=header[:64])
        date_line = _header_date(headers, now, max_skew_s)
        extra: Sequence[tuple[str, str]] = ()
    else:
        access, given = unquote(params["AWSAccessKeyId"]), unquote(params["Signature"])
        date_line = _check_expires(params.get("Expires"), now)
        extra = [(unquote(n), unquote(v)) for n, v in params.items()
                 if n.lower().startswith("x-amz-")]
    secret = lookup_secret(access)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=access)
    signed_headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
    candidates = [string_to_sign(method, signed_headers, date_line,
                                 canonical_resource(resource, raw_query), extra)
                  for resource in resource_forms(resource_path)]
    # Every form is checked, so that the time taken does not tell which one matched.
    matches = [hmac.compare_digest(sign(secret, c).encode(), given.encode()) for c in candidates]
    if not any(matches):
        raise errors.signature_mismatch(access, candidates[0], given)
    return access


def resource_forms(resource_path: str) -> list[str]:
    """The resources a request may have signed: the path as sent, and for a path-style
    request on a bucket alone ("/bucket"), also "/bucket/". That is the resource of the same
    request sent virtual-hosted ("GET /" on bucket.host), and the one botocore signs for
    every bucket-level call (its authPath ends in '/'), which S3 accepts."""
    if resource_path.startswith("/") and resource_path.count("/") == 1 and resource_path != "/":
        return [resource_path, resource_path + "/"]
    return [resource_path]


def _header_date(headers: Sequence[tuple[str, str]], now: datetime, max_skew_s: int) -> str:
    """The Date line of the string to sign, once the request's time stamp is checked.

    x-amz-date, when present (even empty), is the time stamp and the Date line is empty;
    S3 ignores Date then (RESTAuthentication, "Time stamp requirement")."""
    values = {n.lower(): v for n, v in headers}
    amz = values.get("x-amz-date")
    raw = amz if amz is not None else values.get("date")
    when = _http_date(raw)
    if when is None:
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    if abs((now - when).total_seconds()) > max_skew_s:
        raise errors.RequestTimeTooSkewed(RequestTime=raw or "", ServerTime=now.isoformat())
    return "" if amz is not None else values["date"]


def _http_date(raw: str | None) -> datetime | None:
    """An HTTP date as an aware datetime; None when it is not one S3 takes: unparsable, or
    before 1970 (S3 answers AccessDenied to such a date, not RequestTimeTooSkewed)."""
    try:
        when = parsedate_to_datetime(raw) if raw else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    # RFC 5322's "-0000" (UTC, local offset unknown) parses to a naive datetime.
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return when if when >= _EPOCH else None


def _check_expires(raw: str | None, now: datetime) -> str:
    if raw is None or not is_decimal(raw):
        raise errors.AccessDenied("Query-string authentication requires the Signature, "
                                  "Expires and AWSAccessKeyId parameters")
    expires = int(raw)
    if now.timestamp() > expires:
        raise errors.AccessDenied("Request has expired", Expires=raw,
                                  ServerTime=now.isoformat())
    if expires - now.timestamp() > presign_expires_s_max + 60:
        raise errors.AccessDenied("Request expiry is too far in the future")
    return raw
