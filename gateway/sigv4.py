"""AWS Signature Version 4 for S3: verify a request (server side) and sign one (client side).

Pure: the caller passes the method, the raw path and query exactly as received, the headers
(any case, repeats kept), a secret lookup and `now`; the answer is an `AuthResult` or an
`S3Error`. No aiohttp, no clock, no I/O.

Rules that follow S3 rather than the generic SigV4 description:
- the canonical URI is not normalised ('.', '..' and '//' stay); each segment is decoded
  once and URI-encoded once (S3 is the one service without double encoding);
- the query is decoded ('+' is a space, as S3 reads it) and re-encoded, so a client that
  escaped more or less than needed still verifies;
- every `x-amz-*` header present must be signed (but x-amz-content-sha256, whose value is
  part of the canonical request anyway), and `host` must be signed;
- signatures are compared in constant time.

Errors carry the codes and messages AWS returns for the same fault, so that SDKs print
something a user can act on.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import Enum
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from gateway import errors

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

# Limits (would live in gateway/limits.py; kept here until the lead moves them).
presign_expires_s_max = 604_800          # S3: a presigned URL lives at most 7 days
auth_header_chars_max = 8192             # far above any real Authorization header
signed_headers_count_max = 128           # a request signing more headers is not a client

_V4_ONLY_MESSAGE = ("The authorization mechanism you have provided is not supported. "
                    "Please use AWS4-HMAC-SHA256.")
_AMZ_DATE_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z\Z")
_HEX64_RE = re.compile(r"[0-9a-fA-F]{64}\Z")
_EXPIRES_RE = re.compile(r"[0-9]{1,10}\Z")
_NEGATIVE_RE = re.compile(r"-[0-9]+\Z")
# Raw path / query parts made only of characters that UriEncode keeps: already canonical.
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9\-._~/]*\Z")
_PLAIN_QUERY_RE = re.compile(r"[A-Za-z0-9\-._~]*\Z")


class PayloadMode(Enum):
    """What `x-amz-content-sha256` says about the body; the value is the header's literal."""

    SIGNED = "sha256"
    UNSIGNED = "UNSIGNED-PAYLOAD"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def streaming(self) -> bool:
        """True when the body is aws-chunked framing, not the object's bytes."""
        return self.value.startswith("STREAMING-")

    @property
    def chunk_signed(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)

    @property
    def has_trailer(self) -> bool:
        return self.value.endswith("-TRAILER")


_LITERAL_MODES = {m.value: m for m in PayloadMode if m is not PayloadMode.SIGNED}


@dataclass(frozen=True)
class AuthResult:
    access_key: str
    region: str
    amz_date: str                 # yyyymmddThhmmssZ of the request
    scope: str                    # yyyymmdd/region/s3/aws4_request
    signing_key: bytes
    signature: str                # the request's signature: seed of the chunk signatures
    payload: PayloadMode
    payload_sha256: str | None    # lower-case hex, when SIGNED
    presigned: bool


@dataclass(frozen=True)
class _Claim:
    """What a request says about its own signature, before anything is checked."""

    access_key: str
    date: str                     # yyyymmdd from the credential scope
    region: str
    service: str
    terminator: str
    signed_headers: str           # as sent: it is part of the canonical request
    signature: str
    amz_date: str


# ---------------------------------------------------------------- canonical forms


def uri_encode(data: bytes, keep_slash: bool) -> str:
    """AWS's UriEncode: every byte but A-Z a-z 0-9 - . _ ~ (and '/' for paths) escaped."""
    return quote(data, safe="/" if keep_slash else "")


def canonical_uri(raw_path: str) -> str:
    """The path as S3 signs it: decoded once, encoded once, never normalised."""
    if not raw_path:
        return "/"
    if _PLAIN_PATH_RE.match(raw_path):
        return raw_path  # nothing to decode or encode: the common case, made cheap
    return uri_encode(unquote_to_bytes(raw_path), keep_slash=True)


def _decode_query_part(part: str) -> bytes:
    # S3 reads the query as form data: '+' is a space. Escapes are decoded at the byte
    # level so that invalid UTF-8 still round-trips to the same canonical form.
    return unquote_to_bytes(part.replace("+", " "))


def _canonical_query_part(part: str) -> str:
    if _PLAIN_QUERY_RE.match(part):
        return part
    return uri_encode(_decode_query_part(part), keep_slash=False)


def _query_pieces(raw_query: str) -> list[tuple[str, str]]:
    """Raw (name, value) pairs in order; a name without '=' has an empty value."""
    return [piece.partition("=")[::2] for piece in raw_query.split("&") if piece]


def _decoded_text(part: str) -> str:
    if _PLAIN_QUERY_RE.match(part):
        return part
    return _decode_query_part(part).decode("utf-8", "replace")


def canonical_query(raw_query: str, drop: str | None = None) -> str:
    """Sorted, each name and value decoded once and encoded once; `drop` is left out."""
    encoded = sorted(
        (_canonical_query_part(name), _canonical_query_part(value))
        for name, value in _query_pieces(raw_query)
    )
    return "&".join(f"{name}={value}" for name, value in encoded if name != drop)


def _trim(value: str) -> str:
    # SigV4's Trimall: strip, and fold inner runs of spaces into one.
    return " ".join(value.split())


def text_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """Headers as received, as the signers take them: read as UTF-8 with surrogateescape, so
    that the canonical request, encoded back the same way, holds the bytes that were sent
    (a client signs the bytes it sends; UTF-8 ones are its str's, others round-trip)."""
    return [(k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
            for k, v in raw]


def header_map(headers: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for name, value in headers:
        table.setdefault(name.lower(), []).append(value)
    return table


def canonical_headers(table: dict[str, list[str]], names: Sequence[str]) -> str:
    lines = [f"{name}:{','.join(_trim(v) for v in table.get(name, ()))}\n" for name in names]
    return "".join(lines)


def canonical_request(
    method: str, uri: str, query: str, headers: str, signed_headers: str, payload: str
) -> str:
    return "\n".join((method, uri, query, headers, signed_headers, payload))


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=4096)
def signing_key(secret_key: str, date: str, region: str, service: str = SERVICE) -> bytes:
    """kSigning; cached because it changes once a day per key and costs 4 HMACs."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def hmac_hex(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, provided: str) -> bool:
    """Constant-time comparison that tolerates non-ASCII input (which never matches)."""
    return hmac.compare_digest(expected.encode(), provided.encode("utf-8", "replace"))


# ---------------------------------------------------------------- parsing what is claimed


def _header_malformed(detail: str) -> errors.S3Error:
    return errors.AuthorizationHeaderMalformed(f"The authorization header is malformed; {detail}")


def _query_malformed(detail: str) -> errors.S3Error:
    msg = f"Error parsing the X-Amz-Credential parameter; {detail}"
    return errors.AuthorizationQueryParametersError(msg)


def _split_credential(credential: str, presigned: bool) -> tuple[str, str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        malformed = _query_malformed if presigned else _header_malformed
        raise malformed('the Credential is mal-formed; expecting '
                        '"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    return parts[0], parts[1], parts[2], parts[3], parts[4]


def _parse_authorization(value: str) -> tuple[str, str, str]:
    """Credential, SignedHeaders, Signature from an `AWS4-HMAC-SHA256 ...` header."""
    if len(value) > auth_header_chars_max:
        raise _header_malformed("the header is too long.")
    _, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, field = item.strip().partition("=")
        if not sep:
            if not name:
                continue
            raise _header_malformed(f'the component "{name}" is not of the form name=value.')
        fields[name] = field.strip()
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if missing:
        raise _header_malformed(f"it lacks {', '.join(missing)}.")
    return fields["Credential"], fields["SignedHeaders"], fields["Signature"]


def _date_from_headers(table: dict[str, list[str]]) -> str:
    """x-amz-date, or failing that Date, as yyyymmddThhmmssZ."""
    amz = table.get("x-amz-date")
    if amz:
        if len(amz) == 1 and _AMZ_DATE_RE.match(amz[0]):
            return amz[0]
    elif table.get("date"):
        http_date = table["date"]
        try:
            when = parsedate_to_datetime(http_date[0]) if len(http_date) == 1 else None
        except (TypeError, ValueError, IndexError, OverflowError):
            when = None
        if when is not None:
            return utc(when).strftime(AMZ_DATE_FORMAT)
    raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")


def utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _parse_amz_date(amz_date: str) -> datetime | None:
    if not _AMZ_DATE_RE.match(amz_date):
        return None
    try:
        return datetime(
            int(amz_date[0:4]), int(amz_date[4:6]), int(amz_date[6:8]),
            int(amz_date[9:11]), int(amz_date[11:13]), int(amz_date[13:15]), tzinfo=UTC,
        )
    except ValueError:
        return None


def _claim_from_header(value: str, table: dict[str, list[str]]) -> _Claim:
    credential, signed_headers, signature = _parse_authorization(value)
    akid, date, region, service, terminator = _split_credential(credential, presigned=False)
    return _Claim(akid, date, region, service, terminator, signed_headers, signature,
                  _date_from_headers(table))


def _claim_from_query(params: dict[str, str]) -> _Claim:
    needed = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date",
              "X-Amz-SignedHeaders", "X-Amz-Expires")
    if any(n not in params for n in needed):
        raise errors.AuthorizationQueryParametersError(
            f"Query-string authentication version 4 requires the {', '.join(needed[:-1])}, "
            f"and {needed[-1]} parameters."
        )
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise errors.AuthorizationQueryParametersError(
            f'X-Amz-Algorithm only supports "{ALGORITHM}"')
    akid, date, region, service, terminator = _split_credential(
        params["X-Amz-Credential"], presigned=True)
    if _parse_amz_date(params["X-Amz-Date"]) is None:
        raise errors.AuthorizationQueryParametersError(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\""
        )
    return _Claim(akid, date, region, service, terminator, params["X-Amz-SignedHeaders"],
                  params["X-Amz-Signature"], params["X-Amz-Date"])


def _check_scope(claim: _Claim, region: str, presigned: bool) -> None:
    malformed = _query_malformed if presigned else _header_malformed
    if claim.region != region:
        err = malformed(f"the region '{claim.region}' is wrong; expecting '{region}'")
        err.extra["Region"] = region
        raise err
    if claim.service != SERVICE:
        raise malformed(f'incorrect service "{claim.service}". This endpoint belongs to "s3".')
    if claim.terminator != TERMINATOR:
        raise malformed(f'incorrect terminal "{claim.terminator}". This endpoint uses '
                        f'"{TERMINATOR}".')
    if claim.date != claim.amz_date[:8]:
        raise malformed(
            f'Invalid credential date "{claim.date}". This date is not the same as '
            f'X-Amz-Date: "{claim.amz_date[:8]}".'
        )


# ---------------------------------------------------------------- time


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_skew(claim: _Claim, now: datetime, max_skew_s: int) -> None:
    when = _parse_amz_date(claim.amz_date)
    if when is None:
        raise errors.AccessDenied("AWS authentication requires a valid Date or x-amz-date header")
    if abs((now - when).total_seconds()) > max_skew_s:
        raise errors.RequestTimeTooSkewed(
            RequestTime=claim.amz_date,
            ServerTime=_iso(now),
            MaxAllowedSkewMilliseconds=str(max_skew_s * 1000),
        )


def _check_presign_window(
    claim: _Claim, expires_raw: str, now: datetime, max_skew_s: int
) -> None:
    if _NEGATIVE_RE.match(expires_raw):
        raise errors.AuthorizationQueryParametersError("X-Amz-Expires must be non-negative")
    if not _EXPIRES_RE.match(expires_raw):
        raise errors.AuthorizationQueryParametersError("X-Amz-Expires should be a number")
    # 0 is a valid lifetime: a URL that has expired as soon as it was signed.
    expires_s = int(expires_raw)
    if expires_s > presign_expires_s_max:
        raise errors.AuthorizationQueryParametersError(
            f"X-Amz-Expires must be less than a week (in seconds) that is "
            f"{presign_expires_s_max}")
    signed_at = _parse_amz_date(claim.amz_date)
    assert signed_at is not None  # _claim_from_query checked the format
    if signed_at - now > timedelta(seconds=max_skew_s):
        raise errors.AccessDenied("Request is not valid yet")
    if now > signed_at + timedelta(seconds=expires_s):
        raise errors.AccessDenied(
            "Request has expired",
            **{"X-Amz-Expires": str(expires_s)},
            Expires=_iso(signed_at + timedelta(seconds=expires_s)),
            ServerTime=_iso(now),
        )


# ---------------------------------------------------------------- payload


def payload_mode(value: str) -> tuple[PayloadMode, str | None]:
    """Mode and hash (for SIGNED) from an x-amz-content-sha256 value."""
    mode = _LITERAL_MODES.get(value)
    if mode is not None:
        return mode, None
    if _HEX64_RE.match(value):
        return PayloadMode.SIGNED, value.lower()
    raise errors.InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
        ArgumentName="x-amz-content-sha256",
        ArgumentValue=value,
    )


def _payload_claim(table: dict[str, list[str]], presigned: bool) -> str:
    values = table.get("x-amz-content-sha256")
    if not values:
        if presigned:
            return UNSIGNED_PAYLOAD
        raise errors.InvalidRequest(
            "Missing required header for this request: x-amz-content-sha256")
    if len(values) != 1:
        raise errors.InvalidArgument("x-amz-content-sha256 appears more than once.",
                                     ArgumentName="x-amz-content-sha256")
    return values[0]


# ---------------------------------------------------------------- verification


def _signed_names(signed_headers: str, presigned: bool) -> list[str]:
    names = signed_headers.split(";")
    if not signed_headers or len(names) > signed_headers_count_max or not all(names):
        if presigned:
            raise errors.AuthorizationQueryParametersError("X-Amz-SignedHeaders is mal-formed.")
        raise _header_malformed("SignedHeaders is mal-formed.")
    return [n.lower() for n in names]


def _check_all_signed(table: dict[str, list[str]], names: Sequence[str]) -> None:
    signed = set(names)
    # x-amz-content-sha256 may go unsigned, as on S3: its value is in the canonical request.
    unsigned = sorted(
        n for n in table
        if (n.startswith("x-amz-") or n == "host")
        and n not in signed and n != "x-amz-content-sha256"
    )
    if "host" not in table and "host" not in signed:
        unsigned.append("host")
    if unsigned:
        raise errors.AccessDenied("There were headers present in the request which were not "
                                  "signed", HeadersNotSigned=", ".join(unsigned))


def _mechanism(table: dict[str, list[str]], params: dict[str, str]) -> str | None:
    """'header', 'query', or None (anonymous); refuses SigV2 and mixtures."""
    auth = table.get("authorization")
    v4_query = any(n in params for n in ("X-Amz-Algorithm", "X-Amz-Credential",
                                         "X-Amz-Signature"))
    v2_query = "Signature" in params and "AWSAccessKeyId" in params
    if auth and (v4_query or v2_query):
        raise errors.InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
            "Signature query string parameter or the Authorization header should be specified"
        )
    if auth:
        if len(auth) != 1:
            raise _header_malformed("more than one Authorization header.")
        scheme = auth[0].lstrip().split(" ", 1)[0]
        if scheme == ALGORITHM:
            return "header"
        if scheme == "AWS":
            raise errors.InvalidRequest(_V4_ONLY_MESSAGE)
        raise errors.InvalidArgument(
            "Unsupported Authorization Type", ArgumentName="Authorization",
            ArgumentValue=auth[0][:64],
        )
    if v4_query:
        return "query"
    if v2_query:
        raise errors.InvalidRequest(_V4_ONLY_MESSAGE)
    return None


def _query_params(raw_query: str) -> dict[str, str]:
    # Decoded; the first occurrence wins. Only the auth parameters are looked up here.
    params: dict[str, str] = {}
    for name, value in _query_pieces(raw_query):
        params.setdefault(_decoded_text(name), _decoded_text(value))
    return params


def authenticate(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    lookup_secret: Callable[[str], str | None],
    now: datetime,
    region: str,
    max_skew_s: int = 900,
) -> AuthResult | None:
    """Verify a request's SigV4 signature; None when it carries no authentication at all."""
    now = utc(now)
    # An empty Authorization header authenticates nothing: S3 takes the request as anonymous.
    table = header_map([(n, v) for n, v in headers
                         if n.lower() != "authorization" or v.strip()])
    params = _query_params(raw_query)
    mechanism = _mechanism(table, params)
    if mechanism is None:
        return None
    presigned = mechanism == "query"
    if presigned:
        claim = _claim_from_query(params)
    else:
        claim = _claim_from_header(table["authorization"][0], table)
    # Cheap structural checks first, then time, then the key, then the HMACs: the order in
    # which AWS reports them.
    _check_scope(claim, region, presigned)
    names = _signed_names(claim.signed_headers, presigned)
    _check_all_signed(table, names)
    payload_claim = _payload_claim(table, presigned)
    mode, payload_sha256 = payload_mode(payload_claim)
    if presigned:
        _check_presign_window(claim, params["X-Amz-Expires"], now, max_skew_s)
    else:
        _check_skew(claim, now, max_skew_s)
    secret = lookup_secret(claim.access_key)
    if secret is None:
        raise errors.InvalidAccessKeyId(AWSAccessKeyId=claim.access_key)
    canonical = canonical_request(
        method.upper(), canonical_uri(raw_path),
        canonical_query(raw_query, drop="X-Amz-Signature" if presigned else None),
        canonical_headers(table, names), claim.signed_headers, payload_claim,
    )
    key, expected = _expected_signature(claim, secret, canonical)
    scope = credential_scope(claim.amz_date, claim.region)
    return AuthResult(claim.access_key, claim.region, claim.amz_date, scope, key, expected,
                      mode, payload_sha256, presigned)


def credential_scope(amz_date: str, region: str) -> str:
    return f"{amz_date[:8]}/{region}/{SERVICE}/{TERMINATOR}"


def _expected_signature(claim: _Claim, secret: str, canonical: str) -> tuple[bytes, str]:
    """The signing key and the signature; SignatureDoesNotMatch when the claim differs."""
    scope = credential_scope(claim.amz_date, claim.region)
    to_sign = string_to_sign(claim.amz_date, scope, canonical)
    key = signing_key(secret, claim.date, claim.region)
    expected = hmac_hex(key, to_sign)
    if not signatures_equal(expected, claim.signature):
        # AWS returns what it signed, so that a client author can diff it with their own.
        raise errors.signature_mismatch(claim.access_key, to_sign, claim.signature, canonical)
    return key, expected


# ---------------------------------------------------------------- client side


# Hop-by-hop and proxy-rewritten headers that a signer must leave out, as botocore does.
