"""What boto3 cannot send: raw HTTP against a real gateway — bad and skewed signatures,
signed and trailer aws-chunked bodies (tampered, malformed, wrong checksums), presigned
URLs, Expect: 100-continue, truncated bodies, unimplemented operations."""

from __future__ import annotations

import base64
import gzip
import http.client
import socket
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
import xxhash
from botocore.auth import HmacV1QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway import sigv4, sigv4_client
from gateway.chunked import encode_chunked
from gateway.sigv4 import PayloadMode
from tests.cluster.harness import Cluster

STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"


@pytest.fixture(scope="module")
def bucket(cluster: Cluster) -> str:
    cluster.s3().create_bucket(Bucket="raw")
    return "raw"


def _send(cluster: Cluster, method: str, path: str, body: bytes = b"",
          headers: dict[str, str] | None = None, *, sign: bool = True,
          payload: str = sigv4.UNSIGNED_PAYLOAD, now: datetime | None = None,
          secret: str | None = None) -> tuple[int, dict[str, str], bytes]:
    url = cluster.endpoint + path
    hdrs = dict(headers or {})
    if sign:
        hdrs = sigv4_client.sign_request(method, url, hdrs, cluster.key.access_key,
                                         secret or cluster.key.secret_key, cluster.config.region,
                                         now or datetime.now(UTC), payload)
    host, port = cluster.config.listen.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, body=body, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def _code(body: bytes) -> str:
    root = ElementTree.fromstring(body)
    # AWS ends every error with both ids, and sends no Resource.
    assert root.find("RequestId") is not None and root.find("HostId") is not None
    assert root.find("Resource") is None
    return root.findtext("Code") or ""


def _exists(cluster: Cluster, key: str) -> bool:
    status, _, _ = _send(cluster, "HEAD", f"/raw/{key}")
    return status == 200


def test_bad_signature_unknown_key_and_skew(cluster: Cluster, bucket: str) -> None:
    status, hdrs, body = _send(cluster, "GET", "/", secret="wrong-secret")
    assert (status, _code(body)) == (403, "SignatureDoesNotMatch")
    assert "x-amz-request-id" in hdrs
    hdrs2 = sigv4_client.sign_request("GET", cluster.endpoint + "/", {}, "NOSUCHKEY", "x",
                                      cluster.config.region, datetime.now(UTC))
    status, _, body = _send(cluster, "GET", "/", headers=hdrs2, sign=False)
    assert (status, _code(body)) == (403, "InvalidAccessKeyId")
    status, _, body = _send(cluster, "GET", "/", now=datetime.now(UTC) - timedelta(hours=1))
    assert (status, _code(body)) == (403, "RequestTimeTooSkewed")
    status, _, body = _send(cluster, "GET", "/raw", sign=False)
    assert (status, _code(body)) == (403, "AccessDenied")


def _chunked_headers(cluster: Cluster, key: str, body_len: int, mode: str,
                     extra: dict[str, str]) -> tuple[dict[str, str], sigv4.AuthResult]:
    base = {"x-amz-decoded-content-length": str(body_len), "content-encoding": "aws-chunked",
            **extra}
    hdrs = sigv4_client.sign_request("PUT", f"{cluster.endpoint}/raw/{key}", base,
                                     cluster.key.access_key, cluster.key.secret_key,
                                     cluster.config.region, datetime.now(UTC), mode)
    auth = sigv4.authenticate("PUT", f"/raw/{key}", "", list(hdrs.items()),
                              lambda _a: cluster.key.secret_key, datetime.now(UTC),
                              cluster.config.region)
    assert auth is not None
    return hdrs, auth


def test_signed_chunked_upload(cluster: Cluster, bucket: str) -> None:
    body = bytes(range(256)) * 1000
    hdrs, auth = _chunked_headers(cluster, "chunked", len(body), STREAMING, {})
    wire = encode_chunked(body, PayloadMode.STREAMING_SIGNED, 64 * 1024, auth)
    hdrs["content-length"] = str(len(wire))
    status, _, resp = _send(cluster, "PUT", "/raw/chunked", wire, hdrs, sign=False)
    assert status == 200, resp
    status, got_hdrs, got = _send(cluster, "GET", "/raw/chunked")
    assert status == 200 and got == body
    assert "aws-chunked" not in got_hdrs.get("content-encoding", "")


def test_tampered_chunk_stores_nothing(cluster: Cluster, bucket: str) -> None:
    body = b"a" * 200_000
    hdrs, auth = _chunked_headers(cluster, "tampered", len(body), STREAMING, {})
    wire = bytearray(encode_chunked(body, PayloadMode.STREAMING_SIGNED, 64 * 1024, auth))
    at = wire.index(b"aaaa", 200)
    wire[at] = ord("b")
    hdrs["content-length"] = str(len(wire))
    status, _, resp = _send(cluster, "PUT", "/raw/tampered", bytes(wire), hdrs, sign=False)
    assert (status, _code(resp)) == (403, "SignatureDoesNotMatch")
    assert not _exists(cluster, "tampered")


def _crc32(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "big")


@pytest.mark.parametrize(("name", "digest"), [
    ("crc32", _crc32),
    ("xxhash3", lambda data: xxhash.xxh3_64(data).digest()),    # one of AWS's 2025 ones
])
def test_trailer_checksum_checked(cluster: Cluster, bucket: str, name: str,
                                  digest: Callable[[bytes], bytes]) -> None:
    body = b"open data " * 10_000
    good = base64.b64encode(digest(body)).decode()
    bad = base64.b64encode(digest(body + b"!")).decode()
    header = f"x-amz-checksum-{name}"
    for key, value, want in ((f"trail-ok-{name}", good, 200), (f"trail-bad-{name}", bad, 400)):
        extra = {"x-amz-trailer": header, "x-amz-sdk-checksum-algorithm": name.upper()}
        hdrs, _ = _chunked_headers(cluster, key, len(body), TRAILER, extra)
        wire = encode_chunked(body, PayloadMode.STREAMING_UNSIGNED_TRAILER, 8192,
                              trailers=[(header, value)])
        hdrs["content-length"] = str(len(wire))
        status, _, resp = _send(cluster, "PUT", f"/raw/{key}", wire, hdrs, sign=False)
        assert status == want, resp
        if want == 400:
            assert _code(resp) == "BadDigest"
    assert _exists(cluster, f"trail-ok-{name}") and not _exists(cluster, f"trail-bad-{name}")
    status, hdrs2, _ = _send(cluster, "HEAD", f"/raw/trail-ok-{name}",
                             headers={"x-amz-checksum-mode": "ENABLED"})
    assert hdrs2.get(header) == good


def test_malformed_framing_stores_nothing(cluster: Cluster, bucket: str) -> None:
    body = b"z" * 1000
    hdrs, _ = _chunked_headers(cluster, "malformed", len(body), TRAILER, {})
    wire = b"zz-not-hex\r\n" + body + b"\r\n0\r\n\r\n"
    hdrs["content-length"] = str(len(wire))
    status, _, resp = _send(cluster, "PUT", "/raw/malformed", wire, hdrs, sign=False)
    assert status == 400, resp
    assert not _exists(cluster, "malformed")


def test_content_md5_mismatch(cluster: Cluster, bucket: str) -> None:
    wrong = base64.b64encode(b"\x00" * 16).decode()
    status, _, resp = _send(cluster, "PUT", "/raw/md5", b"hello", {"Content-MD5": wrong})
    assert (status, _code(resp)) == (400, "BadDigest")
    assert not _exists(cluster, "md5")


def test_presigned_urls(cluster: Cluster, bucket: str) -> None:
    _send(cluster, "PUT", "/raw/pre", b"presigned body")
    url = sigv4_client.presign_url("GET", f"{cluster.endpoint}/raw/pre", cluster.key.access_key,
                                   cluster.key.secret_key, cluster.config.region,
                                   datetime.now(UTC), 300)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"presigned body"
    old = sigv4_client.presign_url("GET", f"{cluster.endpoint}/raw/pre", cluster.key.access_key,
                                   cluster.key.secret_key, cluster.config.region,
                                   datetime.now(UTC) - timedelta(seconds=400), 300)
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(old, timeout=10)
    assert exc.value.code == 403


def expecting_put(cluster: Cluster, path: str, length: int,
                  headers: dict[str, str] | None = None) -> bytes:
    """The signed head of a PUT of `length` bytes that asks for 100 Continue first."""
    hdrs = sigv4_client.sign_request("PUT", cluster.endpoint + path,
                                     {"Expect": "100-continue", "Content-Length": str(length),
                                      **(headers or {})},
                                     cluster.key.access_key, cluster.key.secret_key,
                                     cluster.config.region, datetime.now(UTC))
    head = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    return f"PUT {path} HTTP/1.1\r\n{head}\r\n".encode()


def gateway_socket(cluster: Cluster) -> socket.socket:
    host, port = cluster.config.listen.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def test_expect_100_continue(cluster: Cluster, bucket: str) -> None:
    body = b"x" * 100_000
    with gateway_socket(cluster) as sock:
        sock.sendall(expecting_put(cluster, "/raw/expect", len(body)))
        first = sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 100"), first
        sock.sendall(body)
        rest = sock.recv(4096)
        assert rest.split(b"\r\n", 1)[0].endswith(b"200 OK"), rest
    assert _exists(cluster, "expect")


def test_truncated_body_stores_nothing(cluster: Cluster, bucket: str) -> None:
    url = f"{cluster.endpoint}/raw/truncated"
    hdrs = sigv4_client.sign_request("PUT", url, {"Content-Length": "1000000"},
                                     cluster.key.access_key, cluster.key.secret_key,
                                     cluster.config.region, datetime.now(UTC))
    host, port = cluster.config.listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        sock.sendall(f"PUT /raw/truncated HTTP/1.1\r\n{head}\r\n".encode() + b"y" * 300_000)
    assert not _exists(cluster, "truncated")
    status, _, _ = _send(cluster, "GET", "/")     # the gateway still serves
    assert status == 200


def test_unimplemented_is_501_and_errors_have_ids(cluster: Cluster, bucket: str) -> None:
    status, hdrs, body = _send(cluster, "PUT", "/raw?replication", b"<ReplicationConfiguration/>")
    assert (status, _code(body)) == (501, "NotImplemented")
    assert hdrs["x-amz-request-id"]
    status, _, body = _send(cluster, "GET", "/raw/%FF%FE")
    assert status == 400


def test_boto3_default_presigned_url(cluster: Cluster, bucket: str) -> None:
    """boto3's generate_presigned_url in us-east-1 signs with SigV2 by default: the link an
    open-data portal hands out must work, and stop working once expired."""
    s3 = cluster.s3()
    s3.put_object(Bucket="raw", Key="portal/data set.csv", Body=b"a,b\n1,2\n")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "raw",
                                                          "Key": "portal/data set.csv"},
                                    ExpiresIn=300)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.read() == b"a,b\n1,2\n"
    tampered = url.replace("data%20set", "data%20sets")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(tampered, timeout=10)
    assert exc.value.code == 403


def test_small_get_answers_whole_and_ranged_with_every_header(cluster: Cluster,
                                                              bucket: str) -> None:
    """A small object lives in its manifest and is answered in one piece: the headers a
    streamed answer has (ids, length, range, ETag) and the exact bytes."""
    body = bytes(range(256)) * 40                       # 10,240 bytes: stored inline
    etag = cluster.s3().put_object(Bucket="raw", Key="inline", Body=body)["ETag"]
    status, hdrs, got = _send(cluster, "GET", "/raw/inline")
    assert (status, got, hdrs["content-length"], hdrs["etag"]) == (200, body, "10240", etag)
    assert hdrs["x-amz-request-id"] and hdrs["x-amz-id-2"]
    assert "content-range" not in hdrs
    status, hdrs, got = _send(cluster, "GET", "/raw/inline", headers={"Range": "bytes=100-"})
    assert (status, got, hdrs["content-length"]) == (206, body[100:], str(len(body) - 100))
    assert hdrs["content-range"] == f"bytes 100-{len(body) - 1}/{len(body)}"
    assert hdrs["x-amz-request-id"] and hdrs["x-amz-id-2"]


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "identity, gzip"])
def test_content_encoding_is_stored_not_undone(cluster: Cluster, bucket: str,
                                               encoding: str) -> None:
    """S3 keeps a body as sent: Content-Encoding is metadata returned on GET, never a transfer
    form the server decompresses. Bytes that do not decode (a client labelling plain text
    gzip) are as valid as a real gzip stream, and both read back unchanged."""
    plain = b"not compressed at all " * 50
    packed = gzip.compress(plain)
    for n, body in enumerate((plain, packed)):
        key = f"enc-{encoding.replace(', ', '-')}-{n}"
        status, _, data = _send(cluster, "PUT", f"/raw/{key}", body,
                                {"Content-Encoding": encoding})
        assert status == 200, data
        status, headers, data = _send(cluster, "GET", f"/raw/{key}")
        assert status == 200 and data == body
        assert headers["content-encoding"] == encoding


def _error(body: bytes) -> tuple[list[str], dict[str, str]]:
    root = ElementTree.fromstring(body)
    return [c.tag for c in root], {c.tag: c.text or "" for c in root}


def _refused(url: str) -> tuple[dict[str, str], bytes]:
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url, timeout=10)
    assert exc.value.code == 403
    return {k.lower(): v for k, v in exc.value.headers.items()}, exc.value.read()


_SIGNED = ["AWSAccessKeyId", "StringToSign", "SignatureProvided", "StringToSignBytes"]
_V4_SIGNED = [*_SIGNED, "CanonicalRequest", "CanonicalRequestBytes"]


def _as_hex(text: str) -> str:
    return " ".join(f"{b:02x}" for b in text.encode())


def test_bad_signatures_show_what_was_signed(cluster: Cluster, bucket: str) -> None:
    """SignatureDoesNotMatch shows what AWS shows, in its order (a real AWS body; LocalStack's
    AWS-validated snapshots of test_presigned_url_signature_authentication): SigV4, header
    or presigned, adds the canonical request to SigV2's four; the body ends with the two
    ids the headers carry. Before: no bytes, no HostId, SigV2 without SignatureProvided."""
    access, region, now = cluster.key.access_key, cluster.config.region, datetime.now(UTC)
    status, hdrs, body = _send(cluster, "GET", "/raw/k", secret="wrong-secret")
    assert status == 403
    answers = [(hdrs, body, _V4_SIGNED)]
    url = sigv4_client.presign_url("GET", cluster.endpoint + "/raw/k", access, "wrong",
                                   region, now, 60)
    answers.append((*_refused(url), _V4_SIGNED))
    v2 = AWSRequest(method="GET", url=cluster.endpoint + "/raw/k")
    HmacV1QueryAuth(Credentials(access, "wrong"), expires=300).add_auth(v2)
    answers.append((*_refused(v2.prepare().url), _SIGNED))
    for hdrs, body, signed in answers:
        tags, values = _error(body)
        assert tags == ["Code", "Message", *signed, "RequestId", "HostId"]
        assert (values["Code"], values["AWSAccessKeyId"]) == ("SignatureDoesNotMatch", access)
        assert values["StringToSignBytes"] == _as_hex(values["StringToSign"])
        assert values.get("CanonicalRequestBytes", "") == _as_hex(
            values.get("CanonicalRequest", ""))
        assert (values["RequestId"], values["HostId"]) == (hdrs["x-amz-request-id"],
                                                            hdrs["x-amz-id-2"])
        assert cluster.key.secret_key not in body.decode()


def test_every_answer_has_its_own_host_id(cluster: Cluster, bucket: str) -> None:
    """x-amz-id-2 on every response, a streamed GET's included (it had none), opaque base64
    and different per request as on AWS (it was one hex string per process)."""
    body = bytes(range(256)) * 800                      # 200 KiB: streamed, not inline
    cluster.s3().put_object(Bucket="raw", Key="streamed", Body=body)
    seen = set()
    for _ in range(2):
        status, hdrs, got = _send(cluster, "GET", "/raw/streamed")
        assert (status, got) == (200, body)
        assert len(base64.b64decode(hdrs["x-amz-id-2"], validate=True)) == 56
        seen.add(hdrs["x-amz-id-2"])
    status, hdrs, got = _send(cluster, "GET", "/raw/no-such-key")
    tags, values = _error(got)
    assert (status, tags) == (404, ["Code", "Message", "Key", "RequestId", "HostId"])
    assert values["Key"] == "no-such-key" and values["HostId"] == hdrs["x-amz-id-2"]
    seen.add(hdrs["x-amz-id-2"])
    status, hdrs, _ = _send(cluster, "HEAD", "/raw/no-such-key")
    assert status == 404 and hdrs["x-amz-id-2"] not in seen
    assert len(seen) == 3


def _refused_head(cluster: Cluster, path: str, length: int) -> bytes:
    """The answer to a PUT's head alone (Expect: 100-continue, no body sent)."""
    with gateway_socket(cluster) as sock:
        sock.sendall(expecting_put(cluster, path, length))
        raw = b""
        while b"</Error>" not in raw and (data := sock.recv(4096)):
            raw += data
    return raw


def test_put_over_5_gib_names_the_sizes(cluster: Cluster, bucket: str) -> None:
    """A PutObject or UploadPart over 5 GiB is 400 EntityTooLarge naming the size proposed
    and the most allowed (ProposedSize, MaxSizeAllowed: AWS's document), answered from
    the head alone."""
    limit = 5 * 1024 ** 3
    uid = cluster.s3().create_multipart_upload(Bucket=bucket, Key="huge")["UploadId"]
    for path in ("/raw/huge", f"/raw/huge?partNumber=1&uploadId={uid}"):
        raw = _refused_head(cluster, path, limit + 1)
        assert raw.startswith(b"HTTP/1.1 400"), raw
        root = ElementTree.fromstring(raw[raw.index(b"<?xml"):])
        assert [(el.tag, el.text) for el in root][:4] == [
            ("Code", "EntityTooLarge"),
            ("Message", "Your proposed upload exceeds the maximum allowed size"),
            ("ProposedSize", str(limit + 1)), ("MaxSizeAllowed", str(limit))]
    cluster.s3().abort_multipart_upload(Bucket=bucket, Key="huge", UploadId=uid)
