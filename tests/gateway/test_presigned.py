"""gateway.presigned: which query parameters of a presigned URL act as headers."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from gateway import presigned

V2 = {"AWSAccessKeyId": "AK", "Signature": "sig", "Expires": "9"}
V4 = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": "AK/x",
      "X-Amz-Date": "20260101T000000Z", "X-Amz-Expires": "60",
      "X-Amz-SignedHeaders": "host", "X-Amz-Signature": "sig"}


def _headers(**kw: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({"Host": "h", **kw}))


def test_presigned_x_amz_parameters_become_headers() -> None:
    for auth in (V2, V4):
        query = MultiDict({**auth, "x-amz-meta-foo": "bar", "x-amz-acl": "public-read",
                           "X-Amz-Copy-Source": "b/k", "versionId": "v"})
        got = presigned.request_headers(_headers(), query)
        assert got["x-amz-meta-foo"] == "bar" and got["x-amz-acl"] == "public-read"
        assert got["x-amz-copy-source"] == "b/k"
        assert "versionId" not in got and "Host" in got
        # The signature's own parameters stay in the query.
        assert not {"x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-expires",
                    "x-amz-signedheaders", "x-amz-signature"} & {k.lower() for k in got}


def test_headers_win_and_framing_stays() -> None:
    query = MultiDict([*V4.items(), ("x-amz-meta-a", "query"), ("x-amz-meta-b", "first"),
                       ("x-amz-meta-b", "second"), ("x-amz-content-sha256", "UNSIGNED"),
                       ("x-amz-decoded-content-length", "5"), ("x-amz-checksum-crc32", "x"),
                       ("x-amz-sdk-checksum-algorithm", "CRC32")])
    got = presigned.request_headers(_headers(**{"X-Amz-Meta-A": "header"}), query)
    assert got.get("x-amz-meta-a") == "header" and got.get("x-amz-meta-b") == "first"
    assert len([k for k in got if k.lower() == "x-amz-meta-a"]) == 1
    for name in ("x-amz-content-sha256", "x-amz-decoded-content-length",
                 "x-amz-checksum-crc32", "x-amz-sdk-checksum-algorithm"):
        assert name not in got


def test_only_presigned_requests() -> None:
    plain = _headers()
    assert presigned.request_headers(plain, {"x-amz-meta-a": "b"}) is plain
    signed = _headers(Authorization="AWS4-HMAC-SHA256 Credential=...")
    assert presigned.request_headers(signed, {**V4, "x-amz-meta-a": "b"}) is signed
    assert presigned.request_headers(plain, {"Signature": "s", "x-amz-meta-a": "b"}) is plain
    assert presigned.request_headers(plain, V2) is plain      # nothing to add
