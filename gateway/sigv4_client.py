"""SigV4 as a client signs: the headers of a signed request and presigned URLs, built
from the canonical forms gateway/sigv4.py verifies against. Coffre's own tools and tests
use it to talk to a gateway exactly as SDKs do; the gateway itself never signs."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

from gateway.sigv4 import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    UNSIGNED_PAYLOAD,
    canonical_headers,
    canonical_query,
    canonical_request,
    canonical_uri,
    credential_scope,
    header_map,
    hmac_hex,
    signing_key,
    string_to_sign,
    uri_encode,
    utc,
)

_UNSIGNABLE = frozenset({
    "authorization", "connection", "expect", "keep-alive", "proxy-authenticate",
    "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "user-agent",
    "x-amzn-trace-id",
})


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host   # IPv6 literal
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


def sign_request(
    method: str, url: str, headers: dict[str, str], access_key: str, secret_key: str,
    region: str, now: datetime, payload_sha256: str = UNSIGNED_PAYLOAD,
) -> dict[str, str]:
    """The headers to send: the caller's plus host, x-amz-date, x-amz-content-sha256 and
    authorization. Every caller header but the hop-by-hop ones is signed."""
    amz_date = utc(now).strftime(AMZ_DATE_FORMAT)
    out = {k: v for k, v in headers.items() if k.lower() not in
           ("authorization", "x-amz-date", "x-amz-content-sha256")}
    if not any(k.lower() == "host" for k in out):
        out["host"] = _host_of(url)
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha256
    table = header_map([(k, v) for k, v in out.items() if k.lower() not in _UNSIGNABLE])
    names = sorted(table)
    parts = urlsplit(url)
    signature = _client_signature(
        method, parts.path, parts.query, canonical_headers(table, names), ";".join(names),
        payload_sha256, secret_key, region, amz_date)
    scope = credential_scope(amz_date, region)
    out["authorization"] = (f"{ALGORITHM} Credential={access_key}/{scope}, "
                            f"SignedHeaders={';'.join(names)}, Signature={signature}")
    return out


def presign_url(
    method: str, url: str, access_key: str, secret_key: str, region: str, now: datetime,
    expires_s: int,
) -> str:
    """`url` with the X-Amz-* query parameters of a presigned request (host signed only)."""
    amz_date = utc(now).strftime(AMZ_DATE_FORMAT)
    scope = credential_scope(amz_date, region)
    parts = urlsplit(url)
    auth = [("X-Amz-Algorithm", ALGORITHM), ("X-Amz-Credential", f"{access_key}/{scope}"),
            ("X-Amz-Date", amz_date), ("X-Amz-Expires", str(expires_s)),
            ("X-Amz-SignedHeaders", "host")]
    auth_query = "&".join(f"{n}={uri_encode(v.encode(), False)}" for n, v in auth)
    query = f"{parts.query}&{auth_query}" if parts.query else auth_query
    signature = _client_signature(method, parts.path, query, f"host:{_host_of(url)}\n", "host",
                                  UNSIGNED_PAYLOAD, secret_key, region, amz_date)
    return urlunsplit(parts._replace(query=f"{query}&X-Amz-Signature={signature}"))


def _client_signature(
    method: str, path: str, query: str, headers: str, signed: str, payload: str,
    secret_key: str, region: str, amz_date: str,
) -> str:
    canonical = canonical_request(method.upper(), canonical_uri(path), canonical_query(query),
                                  headers, signed, payload)
    key = signing_key(secret_key, amz_date[:8], region)
    return hmac_hex(key, string_to_sign(amz_date, credential_scope(amz_date, region), canonical))
