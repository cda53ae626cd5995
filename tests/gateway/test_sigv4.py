"""SigV4 verification against AWS's published examples, botocore as a second signer, and the
errors AWS returns for each fault."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.config import Config
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.sigv4 import (
    AuthResult,
    PayloadMode,
    authenticate,
    canonical_uri,
    text_headers,
)
from gateway.sigv4_client import presign_url, sign_request

AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EXAMPLE_NOW = datetime(2013, 5, 24, tzinfo=UTC)
EXAMPLE_DATE = "20130524T000000Z"
EXAMPLE_CRED = f"{AKID}/20130524/us-east-1/s3/aws4_request"
REGION = "us-east-1"

# Keys that each exercise one rule of S3's canonical URI.
AWKWARD_KEYS = [
    "plain.txt",
    "with space/and+plus",
    "percent%25and%literal",
    "unicode/été/日本語/🙂",
    "tilde~and=equals&amp;?q",
    "double//slash///x",
    "./dot/../dotdot/.",
    "trailing/",
    "!*'()$,;:@[]",
]


def secrets(akid: str) -> str | None:
    return SECRET if akid == AKID else None


def auth_header(signed: str, signature: str) -> str:
    return (f"AWS4-HMAC-SHA256 Credential={EXAMPLE_CRED},SignedHeaders={signed},"
            f"Signature={signature}")


def verify(
    method: str, path: str, query: str, headers: list[tuple[str, str]],
    now: datetime = EXAMPLE_NOW, region: str = REGION,
) -> AuthResult | None:
    return authenticate(method, path, query, headers, secrets, now, region)


# ------------------------------------------------------------ AWS's published examples


def test_aws_example_get_object() -> None:
    sig = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Authorization", auth_header("host;range;x-amz-content-sha256;x-amz-date", sig)),
        ("Range", "bytes=0-9"),
        ("x-amz-content-sha256", hashlib.sha256(b"").hexdigest()),
        ("x-amz-date", EXAMPLE_DATE),
    ]
    result = verify("GET", "/test.txt", "", headers)
    assert result is not None
    assert result.signature == sig
    assert result.payload is PayloadMode.SIGNED
    assert result.payload_sha256 == hashlib.sha256(b"").hexdigest()
    assert result.scope == "20130524/us-east-1/s3/aws4_request"
    assert not result.presigned


def test_aws_example_put_object_with_date_header() -> None:
    sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    body_hash = hashlib.sha256(b"Welcome to Amazon S3.").hexdigest()
    headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("Authorization", auth_header(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class", sig)),
        ("x-amz-date", EXAMPLE_DATE),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", body_hash),
    ]
    result = verify("PUT", "/test%24file.text", "", headers)
    assert result is not None and result.payload_sha256 == body_hash
    # The '$' unescaped on the wire gives the same canonical URI.
    assert verify("PUT", "/test$file.text", "", headers) is not None


@pytest.mark.parametrize(
    ("query", "sig"),
    [
        ("lifecycle", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        ("max-keys=2&prefix=J", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
        ("prefix=J&max-keys=2", "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
    ],
)
def test_aws_example_bucket_queries(query: str, sig: str) -> None:
    headers = [
        ("Host", "examplebucket.s3.amazonaws.com"),
        ("Authorization", auth_header("host;x-amz-content-sha256;x-amz-date", sig)),
        ("x-amz-content-sha256", hashlib.sha256(b"").hexdigest()),
        ("x-amz-date", EXAMPLE_DATE),
    ]
    assert verify("GET", "/", query, headers) is not None


PRESIGNED_EXAMPLE_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def test_aws_example_presigned_url() -> None:
    headers = [("Host", "examplebucket.s3.amazonaws.com")]
    result = verify("GET", "/test.txt", PRESIGNED_EXAMPLE_QUERY, headers)
    assert result is not None and result.presigned
    assert result.payload is PayloadMode.UNSIGNED and result.payload_sha256 is None
    later = EXAMPLE_NOW + timedelta(seconds=86400)
    assert verify("GET", "/test.txt", PRESIGNED_EXAMPLE_QUERY, headers, now=later)
    with pytest.raises(errors.AccessDenied, match="Request has expired"):
        verify("GET", "/test.txt", PRESIGNED_EXAMPLE_QUERY, headers,
               now=later + timedelta(seconds=1))


def test_presign_url_reproduces_aws_example() -> None:
    url = presign_url("GET", "https://examplebucket.s3.amazonaws.com/test.txt", AKID, SECRET,
                      REGION, EXAMPLE_NOW, 86400)
    assert urlsplit(url).query.endswith(
        "X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_aws_example_streaming_seed_signature() -> None:
    seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    signed = ("content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;"
              "x-amz-decoded-content-length;x-amz-storage-class")
    headers = [
        ("Host", "s3.amazonaws.com"),
        ("x-amz-date", EXAMPLE_DATE),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("Authorization", auth_header(signed, seed)),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("Content-Encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("Content-Length", "66824"),
    ]
    result = verify("PUT", "/examplebucket/chunkObject.txt", "", headers)
    assert result is not None
    assert result.payload is PayloadMode.STREAMING_SIGNED and result.signature == seed


# ------------------------------------------------------------ botocore as a second signer


def botocore_signed(
    method: str, url: str, headers: dict[str, str], body: bytes = b"",
    now: datetime | None = None,
) -> AWSRequest:
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    signer = S3SigV4Auth(Credentials(AKID, SECRET), "s3", REGION)
    if now is None:
        signer.add_auth(request)
    else:
        import botocore.auth

        original = botocore.auth.get_current_datetime
        botocore.auth.get_current_datetime = lambda: now.replace(tzinfo=None)
        try:
            signer.add_auth(request)
        finally:
            botocore.auth.get_current_datetime = original
    return request


def verify_aws_request(request: AWSRequest, now: datetime) -> AuthResult | None:
    parts = urlsplit(request.url)
    headers = [(k, v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()]
    if not any(k.lower() == "host" for k, _ in headers):
        headers.append(("Host", parts.netloc))
    return authenticate(request.method, parts.path, parts.query, headers, secrets, now, REGION)


def quoted(key: str) -> str:
    from botocore.utils import percent_encode

    return str(percent_encode(key, safe="/~"))


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_botocore_header_signature_verifies(key: str) -> None:
    now = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    url = f"http://127.0.0.1:9000/bucket/{quoted(key)}?tagging&x-id=PutObject"
    request = botocore_signed("PUT", url, {"Content-Type": "text/plain",
                                           "x-amz-meta-Name": "  two   spaces  "},
                              body=b"hello", now=now)
    result = verify_aws_request(request, now)
    assert result is not None
    assert result.payload is PayloadMode.SIGNED
    assert result.payload_sha256 == hashlib.sha256(b"hello").hexdigest()


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_botocore_presigned_url_verifies(key: str) -> None:
    now = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    url = f"https://s3.example.com/bucket/{quoted(key)}?response-content-type=a%2Fb%20c"
    request = AWSRequest(method="GET", url=url, headers={})
    signer = S3SigV4QueryAuth(Credentials(AKID, SECRET), "s3", REGION, expires=600)
    import botocore.auth

    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: now.replace(tzinfo=None)
    try:
        signer.add_auth(request)
    finally:
        botocore.auth.get_current_datetime = original
    parts = urlsplit(request.url)
    headers = [("Host", "s3.example.com")]
    result = authenticate("GET", parts.path, parts.query, headers, secrets,
                          now + timedelta(seconds=599), REGION)
    assert result is not None and result.presigned
    with pytest.raises(errors.AccessDenied):
        authenticate("GET", parts.path, parts.query, headers, secrets,
                     now + timedelta(seconds=601), REGION)


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_sign_request_and_presign_url_verify(key: str) -> None:
    now = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    url = f"http://localhost:8080/b/{quoted(key)}?list-type=2&prefix=a%20b"
    sent = sign_request("GET", url, {"X-Amz-Meta-A": "1", "User-Agent": "x"}, AKID, SECRET,
                        REGION, now)
    parts = urlsplit(url)
    result = authenticate("GET", parts.path, parts.query, list(sent.items()), secrets, now,
                          REGION)
    assert result is not None and result.payload is PayloadMode.UNSIGNED
    assert sent["host"] == "localhost:8080"
    presigned = urlsplit(presign_url("PUT", url, AKID, SECRET, REGION, now, 60))
    result = authenticate("PUT", presigned.path, presigned.query,
                          [("Host", "localhost:8080")], secrets, now, REGION)
    assert result is not None and result.presigned


def test_sign_request_agrees_with_botocore() -> None:
    now = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
    url = "http://127.0.0.1:9000/bucket/a%20b?uploads"
    body_hash = hashlib.sha256(b"xyz").hexdigest()
    ours = sign_request("POST", url, {"Content-Type": "text/plain"}, AKID, SECRET, REGION, now,
                        payload_sha256=body_hash)
    theirs = botocore_signed("POST", url, {"Content-Type": "text/plain"}, b"xyz", now=now)
    assert ours["authorization"] == theirs.headers["Authorization"]


# ------------------------------------------------------------ real boto3 clients


class _Raw:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


def boto3_requests(**config: Any) -> tuple[Any, list[AWSRequest]]:
    """A boto3 client whose requests are captured instead of sent."""
    seen: list[AWSRequest] = []
    client = boto3.client(
        "s3", endpoint_url="http://127.0.0.1:9000", region_name=REGION,
        aws_access_key_id=AKID, aws_secret_access_key=SECRET,
        config=Config(retries={"max_attempts": 1}, **config),
    )

    def capture(request: AWSRequest, **_: Any) -> AWSResponse:
        seen.append(request)
        return AWSResponse(request.url, 200, {}, _Raw())

    client.meta.events.register("before-send.s3", capture)
    return client, seen


@pytest.mark.parametrize("key", AWKWARD_KEYS)
def test_boto3_default_put_object_verifies(key: str) -> None:
    client, seen = boto3_requests()
    client.put_object(Bucket="bucket", Key=key, Body=b"hello world", Metadata={"k": "v"})
    client.get_object(Bucket="bucket", Key=key, Range="bytes=0-1")
    client.list_objects_v2(Bucket="bucket", Prefix="a b+c", Delimiter="/")
    now = datetime.now(UTC)
    modes = []
    for request in seen:
        result = verify_aws_request(request, now)
        assert result is not None
        modes.append(result.payload)
    # boto3 >= 1.36 sends a CRC32 trailer on PUT by default.
    assert modes[0] in (PayloadMode.STREAMING_UNSIGNED_TRAILER, PayloadMode.SIGNED)


def test_boto3_when_required_put_is_signed_payload() -> None:
    client, seen = boto3_requests(request_checksum_calculation="when_required")
    client.put_object(Bucket="bucket", Key="k", Body=b"hello")
    result = verify_aws_request(seen[0], datetime.now(UTC))
    assert result is not None and result.payload is PayloadMode.SIGNED
    assert result.payload_sha256 == hashlib.sha256(b"hello").hexdigest()


def test_boto3_presigned_url_verifies() -> None:
    client, _ = boto3_requests(signature_version="s3v4")
    url = client.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket", "Key": "a b/ü+~"}, ExpiresIn=300
    )
    parts = urlsplit(url)
    result = authenticate("GET", parts.path, parts.query, [("Host", parts.netloc)], secrets,
                          datetime.now(UTC), REGION)
    assert result is not None and result.presigned


# ------------------------------------------------------------ canonical URI


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("", "/"),
        ("/", "/"),
        ("/a b", "/a%20b"),
        ("/a%20b", "/a%20b"),
        ("/a+b", "/a%2Bb"),
        ("/a%2Bb", "/a%2Bb"),
        ("/a%2fb", "/a/b"),
        ("/%7Euser", "/~user"),
        ("/a//b/./../c", "/a//b/./../c"),
        ("/%C3%A9", "/%C3%A9"),
        ("/é", "/%C3%A9"),
        ("/%ff", "/%FF"),
        ("/%zz", "/%25zz"),
    ],
)
def test_canonical_uri(raw: str, canonical: str) -> None:
    assert canonical_uri(raw) == canonical


# ------------------------------------------------------------ faults and their errors


def good_headers(now: datetime, path: str = "/b/k", extra: dict[str, str] | None = None,
                 region: str = REGION) -> list[tuple[str, str]]:
    sent = sign_request("GET", f"http://h{path}", extra or {}, AKID, SECRET, region, now,
                        payload_sha256=hashlib.sha256(b"").hexdigest())
    return list(sent.items())


NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def replace(headers: list[tuple[str, str]], name: str, value: str) -> list[tuple[str, str]]:
    return [(k, value if k.lower() == name else v) for k, v in headers]


def test_anonymous_is_none() -> None:
    assert verify("GET", "/b/k", "list-type=2", [("Host", "h")], now=NOW) is None


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_authorization_is_anonymous(blank: str) -> None:
    # S3 answers it as an anonymous request (AccessDenied on a private bucket), not 400.
    assert verify("GET", "/b/k", "", [("Host", "h"), ("Authorization", blank)], now=NOW) is None
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, REGION, NOW, 60))
    result = verify("GET", url.path, url.query, [("Host", "h"), ("Authorization", blank)],
                    now=NOW)
    assert result is not None and result.presigned


def test_tampered_requests_fail() -> None:
    headers = good_headers(NOW)
    assert verify("GET", "/b/k", "", headers, now=NOW) is not None
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        verify("GET", "/b/k2", "", headers, now=NOW)
    assert "CanonicalRequest" in caught.value.extra
    for method, path, query in (("PUT", "/b/k", ""), ("GET", "/b/k", "acl")):
        with pytest.raises(errors.SignatureDoesNotMatch):
            verify(method, path, query, headers, now=NOW)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify("GET", "/b/k", "", replace(headers, "host", "other"), now=NOW)


def test_unknown_access_key() -> None:
    sent = sign_request("GET", "http://h/b/k", {}, "NOPE", SECRET, REGION, NOW)
    with pytest.raises(errors.InvalidAccessKeyId):
        verify("GET", "/b/k", "", list(sent.items()), now=NOW)


def test_wrong_secret() -> None:
    sent = sign_request("GET", "http://h/b/k", {}, AKID, "wrong", REGION, NOW)
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify("GET", "/b/k", "", list(sent.items()), now=NOW)


def test_wrong_region_names_expected_region() -> None:
    headers = good_headers(NOW, region="eu-west-1")
    with pytest.raises(errors.AuthorizationHeaderMalformed) as caught:
        verify("GET", "/b/k", "", headers, now=NOW)
    assert caught.value.extra["Region"] == REGION
    assert "'eu-west-1' is wrong; expecting 'us-east-1'" in caught.value.message


def test_wrong_region_presigned() -> None:
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, "eu-west-1", NOW, 60))
    with pytest.raises(errors.AuthorizationQueryParametersError) as caught:
        verify("GET", url.path, url.query, [("Host", "h")], now=NOW)
    assert caught.value.extra["Region"] == REGION


@pytest.mark.parametrize("offset_s", [-901, 901, -86400 * 3])
def test_clock_skew(offset_s: int) -> None:
    headers = good_headers(NOW + timedelta(seconds=offset_s))
    with pytest.raises(errors.RequestTimeTooSkewed) as caught:
        verify("GET", "/b/k", "", headers, now=NOW)
    assert caught.value.extra["MaxAllowedSkewMilliseconds"] == "900000"


@pytest.mark.parametrize("offset_s", [-899, 0, 899])
def test_clock_skew_within_window(offset_s: int) -> None:
    assert verify("GET", "/b/k", "", good_headers(NOW + timedelta(seconds=offset_s)), now=NOW)


def test_presigned_not_yet_valid() -> None:
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, REGION,
                               NOW + timedelta(hours=1), 60))
    with pytest.raises(errors.AccessDenied, match="not valid yet"):
        verify("GET", url.path, url.query, [("Host", "h")], now=NOW)


@pytest.mark.parametrize(("expires", "message"), [
    ("604801", "less than a week"), ("-1", "must be non-negative"),
    ("-604800", "must be non-negative"), ("abc", "should be a number"),
    ("", "should be a number"), ("٣", "should be a number"), ("9" * 5000, "should be a number"),
])
def test_presigned_expires_bounds(expires: str, message: str) -> None:
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, REGION, NOW, 60))
    query = url.query.replace("X-Amz-Expires=60", f"X-Amz-Expires={expires}")
    with pytest.raises(errors.AuthorizationQueryParametersError, match=message):
        verify("GET", url.path, query, [("Host", "h")], now=NOW)


def test_presigned_expires_zero_is_valid_and_expired() -> None:
    """X-Amz-Expires=0 is a lifetime of nothing: the URL is well formed, and expired."""
    request = AWSRequest(method="GET", url="http://h/b/k", headers={})
    import botocore.auth

    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: NOW.replace(tzinfo=None)
    try:
        S3SigV4QueryAuth(Credentials(AKID, SECRET), "s3", REGION, expires=0).add_auth(request)
    finally:
        botocore.auth.get_current_datetime = original
    url = urlsplit(request.url)
    assert "X-Amz-Expires=0" in url.query
    with pytest.raises(errors.AccessDenied, match="Request has expired"):
        verify("GET", url.path, url.query, [("Host", "h")], now=NOW + timedelta(seconds=1))


def test_presigned_week_is_allowed() -> None:
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, REGION, NOW, 604800))
    assert verify("GET", url.path, url.query, [("Host", "h")],
                  now=NOW + timedelta(days=7)) is not None


def test_presigned_missing_parameter() -> None:
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, REGION, NOW, 60))
    query = "&".join(p for p in url.query.split("&") if not p.startswith("X-Amz-Date"))
    with pytest.raises(errors.AuthorizationQueryParametersError):
        verify("GET", url.path, query, [("Host", "h")], now=NOW)


def test_presigned_tampered_signature() -> None:
    url = urlsplit(presign_url("GET", "http://h/b/k", AKID, SECRET, REGION, NOW, 60))
    query = url.query[:-1] + ("0" if url.query[-1] != "0" else "1")
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify("GET", url.path, query, [("Host", "h")], now=NOW)


def test_presigned_with_content_sha256_header() -> None:
    url = urlsplit(presign_url("PUT", "http://h/b/k", AKID, SECRET, REGION, NOW, 60))
    # S3 lets x-amz-content-sha256 go unsigned: its value is in the canonical request.
    result = verify("PUT", url.path, url.query,
                    [("Host", "h"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], now=NOW)
    assert result is not None and result.payload is PayloadMode.UNSIGNED
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify("PUT", url.path, url.query,
               [("Host", "h"), ("x-amz-content-sha256", "0" * 64)], now=NOW)
    # Any other unsigned x-amz-* header is refused, as AWS does.
    with pytest.raises(errors.AccessDenied, match="not signed"):
        verify("PUT", url.path, url.query, [("Host", "h"), ("x-amz-acl", "public-read")],
               now=NOW)


def test_sigv2_is_refused() -> None:
    with pytest.raises(errors.InvalidRequest, match="AWS4-HMAC-SHA256"):
        verify("GET", "/b/k", "", [("Host", "h"), ("Authorization", "AWS AKID:c2ln")], now=NOW)
    with pytest.raises(errors.InvalidRequest):
        verify("GET", "/b/k", "AWSAccessKeyId=AKID&Expires=1&Signature=x", [("Host", "h")],
               now=NOW)


def test_unknown_scheme_and_two_mechanisms() -> None:
    with pytest.raises(errors.InvalidArgument):
        verify("GET", "/b/k", "", [("Host", "h"), ("Authorization", "Bearer x")], now=NOW)
    headers = good_headers(NOW)
    with pytest.raises(errors.InvalidArgument, match="Only one auth mechanism"):
        verify("GET", "/b/k", "X-Amz-Algorithm=AWS4-HMAC-SHA256", headers, now=NOW)


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/s3/aws4_request",
        "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/s3, SignedHeaders=host, "
        "Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/ec2/aws4_request, "
        "SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKID/20240302/us-east-1/s3/aws4_request, "
        "SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKID/20240301/us-east-1/s3/aws4_request, "
        "SignedHeaders=, Signature=00",
        "AWS4-HMAC-SHA256 garbage",
    ],
)
def test_malformed_authorization(authorization: str) -> None:
    headers = [("Host", "h"), ("x-amz-date", "20240301T120000Z"),
               ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("Authorization", authorization)]
    with pytest.raises(errors.AuthorizationHeaderMalformed):
        verify("GET", "/b/k", "", headers, now=NOW)


def test_missing_date() -> None:
    headers = [(k, v) for k, v in good_headers(NOW) if k != "x-amz-date"]
    with pytest.raises(errors.AccessDenied, match="Date"):
        verify("GET", "/b/k", "", headers, now=NOW)


def test_missing_or_bad_content_sha256() -> None:
    headers = [(k, v) for k, v in good_headers(NOW) if k != "x-amz-content-sha256"]
    with pytest.raises((errors.InvalidRequest, errors.SignatureDoesNotMatch)):
        verify("GET", "/b/k", "", headers, now=NOW)
    sent = sign_request("GET", "http://h/b/k", {}, AKID, SECRET, REGION, NOW,
                        payload_sha256="not-a-hash")
    with pytest.raises(errors.InvalidArgument):
        verify("GET", "/b/k", "", list(sent.items()), now=NOW)


def test_unsigned_amz_header_is_refused() -> None:
    headers = [*good_headers(NOW), ("x-amz-copy-source", "/other/key")]
    with pytest.raises(errors.AccessDenied) as caught:
        verify("GET", "/b/k", "", headers, now=NOW)
    assert caught.value.extra["HeadersNotSigned"] == "x-amz-copy-source"


def test_repeated_headers_are_joined() -> None:
    now = NOW
    sent = sign_request("GET", "http://h/b/k", {"x-amz-meta-a": "1,2"}, AKID, SECRET, REGION,
                        now)
    headers = [(k, v) for k, v in sent.items() if k != "x-amz-meta-a"]
    headers += [("X-Amz-Meta-A", "1"), ("x-amz-meta-a", " 2 ")]
    assert verify("GET", "/b/k", "", headers, now=now) is not None


def test_non_ascii_header_values_are_signed_as_sent() -> None:
    """botocore signs a str header value as the UTF-8 bytes it sends; another client may send
    and sign a byte that is not UTF-8 (ISO-8859-1 'é'): either way the canonical request
    holds the bytes that came, not a re-encoding of them."""
    request = botocore_signed("PUT", "http://h/b/k", {"x-amz-meta-meta1": "Hello World\xe9"},
                              b"bar", now=NOW)
    wire = [(b"Host", b"h"), *((k.encode(), v.encode()) for k, v in request.headers.items())]
    assert (b"x-amz-meta-meta1", b"Hello World\xc3\xa9") in wire
    assert verify("PUT", "/b/k", "", text_headers(wire), now=NOW) is not None
    sent = sign_request("GET", "http://h/b/k", {"x-amz-meta-a": "caf\udce9"}, AKID, SECRET,
                        REGION, NOW)
    wire = [(k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in sent.items()]
    assert (b"x-amz-meta-a", b"caf\xe9") in wire
    assert verify("GET", "/b/k", "", text_headers(wire), now=NOW) is not None
    tampered = [(k, b"caf\xe8" if k == b"x-amz-meta-a" else v) for k, v in wire]
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        verify("GET", "/b/k", "", text_headers(tampered), now=NOW)
    caught.value.to_xml("id")          # the echoed request renders: no 500


def test_non_ascii_signature_never_matches() -> None:
    headers = good_headers(NOW)
    auth = dict(headers)["authorization"]
    bad = auth[: auth.index("Signature=") + 10] + "é" * 64
    with pytest.raises(errors.SignatureDoesNotMatch):
        verify("GET", "/b/k", "", replace(headers, "authorization", bad), now=NOW)


def test_boto3_default_presign_in_us_east_1_is_sigv2_and_refused() -> None:
    # botocore still presigns with SigV2 for us-east-1 unless signature_version='s3v4':
    # a v4-only endpoint answers as AWS does for v4-only regions.
    client, _ = boto3_requests()
    url = urlsplit(client.generate_presigned_url(
        "get_object", Params={"Bucket": "bucket", "Key": "k"}, ExpiresIn=300))
    assert "AWSAccessKeyId=" in url.query
    with pytest.raises(errors.InvalidRequest, match="AWS4-HMAC-SHA256"):
        authenticate("GET", url.path, url.query, [("Host", url.netloc)], secrets,
                     datetime.now(UTC), REGION)


# ------------------------------------------------------------ nothing crashes


@settings(max_examples=300, deadline=None)
@given(path=st.text(max_size=40), query=st.text(max_size=80),
       authorization=st.one_of(st.none(), st.text(max_size=200)),
       amz_date=st.text(max_size=20), sha=st.text(max_size=70))
def test_garbage_only_raises_s3_errors(
    path: str, query: str, authorization: str | None, amz_date: str, sha: str
) -> None:
    headers = [("Host", "h"), ("x-amz-date", amz_date), ("x-amz-content-sha256", sha)]
    if authorization is not None:
        headers.append(("Authorization", "AWS4-HMAC-SHA256 " + authorization))
    for q in (query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&" + query):
        try:
            authenticate("GET", path, q, headers, secrets, NOW, REGION)
        except errors.S3Error:
            pass
