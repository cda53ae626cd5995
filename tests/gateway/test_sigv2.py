"""SigV2 verification against botocore's own SigV2 signers (header and presigned forms)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import urlsplit

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway import errors, sigv2, sigv4

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
CREDS = Credentials(AK, SK)
KEYS = ["plain.txt", "with space.txt", "a+b=c", "unicodé/ключ", "~tilde", "x%y"]


def _lookup(ak: str) -> str | None:
    return SK if ak == AK else None


def _verify(req: AWSRequest, now: datetime) -> str:
    prepared = req.prepare()
    split = urlsplit(prepared.url)
    return sigv2.authenticate(prepared.method, split.path, split.query,
                              list(prepared.headers.items()), _lookup, now)


@pytest.mark.parametrize("key", KEYS)
def test_header_signatures_from_botocore_verify(key: str) -> None:
    from urllib.parse import quote
    url = "http://127.0.0.1:9000/bucket/" + quote(key) + "?tagging"
    req = AWSRequest(method="PUT", url=url, data=b"x",
                     headers={"Content-Type": "text/plain", "x-amz-meta-a": "1"})
    HmacV1Auth(CREDS).add_auth(req)
    assert _verify(req, datetime.now(UTC)) == AK
    req.headers.replace_header("x-amz-meta-a", "2")
    with pytest.raises(errors.S3Error) as exc:
        _verify(req, datetime.now(UTC))
    assert exc.value.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("key", KEYS)
def test_presigned_urls_from_botocore_verify_and_expire(key: str) -> None:
    from urllib.parse import quote
    url = "http://127.0.0.1:9000/bucket/" + quote(key) + "?response-content-type=text/csv"
    req = AWSRequest(method="GET", url=url)
    HmacV1QueryAuth(CREDS, expires=60).add_auth(req)
    assert _verify(req, datetime.now(UTC)) == AK
    with pytest.raises(errors.S3Error) as exc:
        _verify(req, datetime.now(UTC) + timedelta(seconds=120))
    assert exc.value.code == "AccessDenied"


@pytest.mark.parametrize("query", ["", "acl", "policy", "list-type=2&prefix=a"])
def test_bucket_alone_path_style_verifies_as_botocore_signs_it(query: str) -> None:
    """botocore sends path-style bucket calls to /bucket and signs /bucket/ (its authPath):
    both forms name the bucket, and S3 accepts either."""
    for auth_path in ("/bucket/", None):
        req = AWSRequest(method="GET", url="http://h/bucket" + (f"?{query}" if query else ""))
        req.auth_path = auth_path
        HmacV1Auth(CREDS).add_auth(req)
        assert _verify(req, datetime.now(UTC)) == AK
    assert sigv2.resource_forms("/bucket") == ["/bucket", "/bucket/"]
    assert sigv2.resource_forms("/bucket/") == ["/bucket/"]
    assert sigv2.resource_forms("/bucket/key") == ["/bucket/key"]
    assert sigv2.resource_forms("/") == ["/"]


def test_key_resource_is_not_widened() -> None:
    req = AWSRequest(method="GET", url="http://h/bucket/key")
    req.auth_path = "/bucket/key/"
    HmacV1Auth(CREDS).add_auth(req)
    with pytest.raises(errors.SignatureDoesNotMatch):
        _verify(req, datetime.now(UTC))


@pytest.mark.parametrize("header", ["AWS HAHAHA", "AWS :c2ln", "AWS AKIDEXAMPLE:", "AWS  "])
def test_authorization_without_key_and_signature_is_invalid_argument(header: str) -> None:
    headers = [("Host", "h"), ("Date", "Mon, 01 Jan 2024 00:00:00 GMT"),
               ("Authorization", header)]
    with pytest.raises(errors.InvalidArgument, match="Expected AwsAccessKeyId:signature"):
        sigv2.authenticate("GET", "/bucket/k", "", headers, _lookup, datetime.now(UTC))


def _signed_with_date(name: str, value: str) -> list[tuple[str, str]]:
    headers = [("Host", "h"), (name, value)]
    date_line = "" if name == "x-amz-date" else value
    to_sign = sigv2.string_to_sign("GET", headers, date_line, "/bucket/k")
    return [*headers, ("Authorization", f"AWS {AK}:{sigv2.sign(SK, to_sign)}")]


@pytest.mark.parametrize(("name", "value", "code"), [
    ("x-amz-date", "", "AccessDenied"),
    ("x-amz-date", "Bad Date", "AccessDenied"),
    ("x-amz-date", "Tue, 07 Jul 1950 21:53:04 GMT", "AccessDenied"),
    ("x-amz-date", "Tue, 07 Jul 2010 21:53:04 GMT", "RequestTimeTooSkewed"),
    ("x-amz-date", "Tue, 07 Jul 9999 21:53:04 GMT", "RequestTimeTooSkewed"),
    ("Date", "Tue, 07 Jul 2010 21:53:04 -0000", "RequestTimeTooSkewed"),
    ("Date", "Fri, 31 Dec 9999 23:59:59 -2359", "RequestTimeTooSkewed"),
])
def test_bad_time_stamps_are_refused_as_s3_refuses_them(name: str, value: str,
                                                        code: str) -> None:
    """s3-tests' expectations, from AWS: a missing, empty, unparsable or pre-1970 time stamp
    is AccessDenied (checked before the signature); a valid one too far off is skewed."""
    with pytest.raises(errors.S3Error) as exc:
        sigv2.authenticate("GET", "/bucket/k", "", _signed_with_date(name, value), _lookup,
                           datetime.now(UTC))
    assert exc.value.code == code


def test_empty_x_amz_date_does_not_fall_back_to_date() -> None:
    headers = [("Date", format_datetime(datetime.now(UTC), usegmt=True)),
               *_signed_with_date("x-amz-date", "")]
    with pytest.raises(errors.AccessDenied, match="valid Date or x-amz-date"):
        sigv2.authenticate("GET", "/bucket/k", "", headers, _lookup, datetime.now(UTC))


def test_minus_0000_date_is_utc() -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    date = format_datetime(now.replace(tzinfo=None))       # "... -0000"
    assert date.endswith("-0000")
    headers = _signed_with_date("Date", date)
    assert sigv2.authenticate("GET", "/bucket/k", "", headers, _lookup, now) == AK


def test_non_ascii_header_values_are_signed_as_sent() -> None:
    req = AWSRequest(method="PUT", url="http://h/bucket/k", data=b"x",
                     headers={"x-amz-meta-meta1": "Hello World\xe9"})
    HmacV1Auth(CREDS).add_auth(req)
    prepared = req.prepare()
    wire = [(k.encode(), v.encode()) for k, v in prepared.headers.items()]  # as botocore sends
    assert sigv2.authenticate("PUT", "/bucket/k", "", sigv4.text_headers(wire), _lookup,
                              datetime.now(UTC)) == AK
    bad = [(k, v.replace(b"\xc3\xa9", b"\xe9")) for k, v in wire]
    with pytest.raises(errors.SignatureDoesNotMatch) as exc:
        sigv2.authenticate("PUT", "/bucket/k", "", sigv4.text_headers(bad), _lookup,
                           datetime.now(UTC))
    exc.value.to_xml("id")         # the echoed StringToSign renders: no 500


def test_unknown_key_and_skew() -> None:
    req = AWSRequest(method="GET", url="http://h/bucket/k")
    HmacV1Auth(Credentials("OTHER", SK)).add_auth(req)
    with pytest.raises(errors.S3Error) as exc:
        _verify(req, datetime.now(UTC))
    assert exc.value.code == "InvalidAccessKeyId"
    req = AWSRequest(method="GET", url="http://h/bucket/k")
    HmacV1Auth(CREDS).add_auth(req)
    with pytest.raises(errors.S3Error) as exc:
        _verify(req, datetime.now(UTC) + timedelta(hours=1))
    assert exc.value.code == "RequestTimeTooSkewed"
    assert sigv2.is_v2([("Authorization", "AWS a:b")], "")
    assert not sigv2.is_v2([("Authorization", "AWS4-HMAC-SHA256 x")], "")
