"""A presigned URL's x-amz-* query parameters are request headers.

A presigned URL cannot make its user send headers, so signers put the headers a request
needs into the query: boto3's SigV2 presigner moves every x-amz-* header there (the
metadata of a PutObject, the x-amz-copy-source of a CopyObject, an x-amz-acl...), and other
SDKs hoist them into a SigV4 URL. Both signatures cover the query (SigV2 as amz headers of
the string to sign, SigV4 in the canonical query), and S3 acts on them as on the headers
they stand for. Pure: the request's headers and query in, the headers to act on out.

Left in the query: the parameters of the signature itself and of the body's framing (they
are read where they are, by the signers and the body reader), and checksums (SDKs put a
checksum of no body in the URL, which S3 ignores). A header sent with the request wins
over a parameter of the same name.
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

_KEPT_IN_QUERY = frozenset({
    "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
    "x-amz-signedheaders", "x-amz-signature", "x-amz-security-token",
    "x-amz-content-sha256", "x-amz-decoded-content-length", "x-amz-trailer",
    "x-amz-sdk-checksum-algorithm",
})


def is_presigned(headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """The request authenticates by its query (SigV2 or SigV4), as the signers decide."""
    if "Authorization" in headers:
        return False
    return ("AWSAccessKeyId" in query and "Signature" in query) or "X-Amz-Signature" in query


def _hoisted(name: str) -> bool:
    low = name.lower()
    return low.startswith("x-amz-") and low not in _KEPT_IN_QUERY and \
        not low.startswith("x-amz-checksum-")


def request_headers(headers: Mapping[str, str], query: Mapping[str, str]
                    ) -> Mapping[str, str]:
    """The headers a request acts on: its own, and for a presigned one, its query's x-amz-*
    parameters that no header of the same name overrides (the first of repeated ones)."""
    if not is_presigned(headers, query):
        return headers
    extra = CIMultiDict[str]()
    for name, value in query.items():
        if _hoisted(name) and name not in headers and name not in extra:
            extra[name] = value
    if not extra:
        return headers
    merged = CIMultiDict(headers)
    merged.extend(extra)
    return CIMultiDictProxy(merged)
