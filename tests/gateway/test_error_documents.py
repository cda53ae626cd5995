"""Error documents as AWS writes them: element order, the two ids, SignatureDoesNotMatch's
details (real AWS bodies, and LocalStack's AWS-validated snapshots of
test_presigned_url_signature_authentication for SigV2 and SigV4)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import urlsplit
from xml.etree import ElementTree

import pytest
from botocore.auth import HmacV1Auth, HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway import errors, request_ids, sigv2, sigv4, sigv4_client

AK, SK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
V4_ORDER = ["Code", "Message", "AWSAccessKeyId", "StringToSign", "SignatureProvided",
            "StringToSignBytes", "CanonicalRequest", "CanonicalRequestBytes",
            "RequestId", "HostId"]
V2_ORDER = ["Code", "Message", "AWSAccessKeyId", "StringToSign", "SignatureProvided",
            "StringToSignBytes", "RequestId", "HostId"]


def _lookup(ak: str) -> str | None:
    return SK if ak == AK else None


def _parsed(err: errors.S3Error, request_id: str = "4442587FB7D0A2F9"
            ) -> tuple[list[str], dict[str, str]]:
    root = ElementTree.fromstring(err.to_xml(request_id))
    assert root.tag == "Error"
    return [c.tag for c in root], {c.tag: c.text or "" for c in root}


def test_own_elements_then_request_id_then_host_id_and_no_resource() -> None:
    err = errors.InvalidRange(RangeRequested="bytes=1024-4096", ActualObjectSize="8")
    tags, values = _parsed(err)
    assert tags == ["Code", "Message", "RangeRequested", "ActualObjectSize", "RequestId",
                    "HostId"]
    assert values["RequestId"] == "4442587FB7D0A2F9"
    assert values["HostId"] == request_ids.host_id("4442587FB7D0A2F9")


def test_host_id_is_opaque_base64_per_request() -> None:
    first, second = request_ids.new_request_id(), request_ids.new_request_id()
    assert first != second
    host = request_ids.host_id(first)
    assert len(base64.b64decode(host, validate=True)) == 56 and len(host) == 76
    assert host == request_ids.host_id(first) != request_ids.host_id(second)
    headers: dict[str, str] = {}
    request_ids.stamp(headers, first)
    assert headers == {"x-amz-request-id": first, "x-amz-id-2": host}


def _hex(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode("utf-8", "surrogateescape"))


def _check_shown(err: errors.S3Error, order: list[str], signed: str) -> dict[str, str]:
    tags, values = _parsed(err)
    assert tags == order
    assert values["AWSAccessKeyId"] == AK
    assert values["StringToSignBytes"] == _hex(values["StringToSign"])
    if "CanonicalRequest" in values:
        assert values["CanonicalRequestBytes"] == _hex(values["CanonicalRequest"])
    body = err.to_xml("ID").decode()
    assert SK not in body and signed not in body     # neither the secret nor what it signs
    return values


@pytest.mark.parametrize("presigned", [False, True])
def test_sigv4_mismatch_shows_what_was_signed(presigned: bool) -> None:
    url = "http://h/bucket/k"
    if presigned:
        split = urlsplit(sigv4_client.presign_url("GET", url, AK, "wrong", "us-east-1", NOW,
                                                  60))
        path, query, headers = split.path, split.query, [("Host", "h")]
        given = dict(p.split("=", 1) for p in query.split("&"))["X-Amz-Signature"]
    else:
        sent = sigv4_client.sign_request("GET", url, {}, AK, "wrong", "us-east-1", NOW)
        path, query, headers = "/bucket/k", "", list(sent.items())
        given = sent["authorization"].rsplit("=", 1)[1]
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        sigv4.authenticate("GET", path, query, headers, _lookup, NOW, "us-east-1")
    canonical = caught.value.extra["CanonicalRequest"]
    scope = sigv4.credential_scope(NOW.strftime("%Y%m%dT%H%M%SZ"), "us-east-1")
    expected = sigv4.hmac_hex(sigv4.signing_key(SK, NOW.strftime("%Y%m%d"), "us-east-1"),
                              sigv4.string_to_sign(NOW.strftime("%Y%m%dT%H%M%SZ"), scope,
                                                   canonical))
    values = _check_shown(caught.value, V4_ORDER, expected)
    assert values["SignatureProvided"] == given
    assert values["StringToSign"].startswith("AWS4-HMAC-SHA256\n")
    assert canonical.startswith("GET\n/bucket/k\n")


@pytest.mark.parametrize("presigned", [False, True])
def test_sigv2_mismatch_shows_what_was_signed(presigned: bool) -> None:
    req = AWSRequest(method="GET", url="http://h/bucket/k")
    creds = Credentials(AK, "wrong")
    (HmacV1QueryAuth(creds, expires=3600) if presigned else HmacV1Auth(creds)).add_auth(req)
    prepared = req.prepare()
    split = urlsplit(prepared.url)
    with pytest.raises(errors.SignatureDoesNotMatch) as caught:
        sigv2.authenticate("GET", split.path, split.query, list(prepared.headers.items()),
                           _lookup, datetime.now(UTC))
    signed = sigv2.sign(SK, caught.value.extra["StringToSign"])
    values = _check_shown(caught.value, V2_ORDER, signed)
    given = sigv2.sign("wrong", values["StringToSign"])
    assert values["SignatureProvided"] == given
    assert values["StringToSign"].startswith("GET\n") and values["StringToSign"].endswith(
        "/bucket/k")


def test_string_to_sign_bytes_are_the_bytes_sent() -> None:
    # A header byte that is not UTF-8 (kept as a surrogate) shows as the byte it was.
    err = errors.signature_mismatch(AK, "caf\udce9", "sig")
    assert err.extra["StringToSignBytes"] == "63 61 66 e9"
    assert err.extra["SignatureProvided"] == "sig"
    long = errors.signature_mismatch(AK, "x", "s" * 1000)
    assert len(long.extra["SignatureProvided"]) == 128
