"""Server-side encryption (SSE-S3) on a real cluster: what the nodes keep on disk is
ciphertext, every read path gives the plaintext back (whole, ranges, parts, copies), and
requests for encryption Coffre cannot do are refused, never served in the clear."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

MIB = 1024 * 1024


def _pattern(tag: bytes, size: int) -> bytes:
    """A body whose every 64 bytes hold `tag`: any fragment of it in the clear is found."""
    unit = (tag * (64 // len(tag) + 1))[:64]
    return (unit * (size // 64 + 1))[:size]


def _on_disk(cluster: Cluster, needle: bytes) -> bool:
    """Whether any node file (segments, LMDB) holds `needle`."""
    for path in (cluster.root / "nodes").rglob("*"):
        if path.is_file() and needle in path.read_bytes():
            return True
    return False


@contextmanager
def _headers(s3: Any, op: str, extra: dict[str, str]) -> Iterator[None]:
    """Send `extra` headers on every `op` call (names boto3 has no parameter for)."""
    def add(request: Any, **_: Any) -> None:
        for name, value in extra.items():
            request.headers[name] = value
    s3.meta.events.register_first(f"before-sign.s3.{op}", add)
    try:
        yield
    finally:
        s3.meta.events.unregister(f"before-sign.s3.{op}", add)


def _error(call: Any, **kw: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as exc:
        call(**kw)
    resp = exc.value.response
    return resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Code"]


def _sse(resp: Any) -> str | None:
    found = resp.get("ServerSideEncryption")
    return None if found is None else str(found)


def test_bucket_default_encrypts_at_rest(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="sse-plain")
    s3.create_bucket(Bucket="sse-default")
    with pytest.raises(ClientError) as exc:
        s3.get_bucket_encryption(Bucket="sse-default")
    assert exc.value.response["Error"]["Code"] == "ServerSideEncryptionConfigurationNotFoundError"
    s3.put_bucket_encryption(Bucket="sse-default", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    rule = s3.get_bucket_encryption(Bucket="sse-default")[
        "ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # The control: the same kind of bodies in a plain bucket are found on disk as they are.
    clear = {"small": _pattern(b"CLEAR-INLINE", 2000), "big": _pattern(b"CLEAR-CODED", 600_000)}
    secret = {"small": _pattern(b"SECRET-INLINE", 2000),
              "big": _pattern(b"SECRET-CODED", 600_000)}
    for key, body in clear.items():
        assert _sse(s3.put_object(Bucket="sse-plain", Key=key, Body=body)) is None
    for key, body in secret.items():
        assert _sse(s3.put_object(Bucket="sse-default", Key=key, Body=body)) == "AES256"
    assert _on_disk(cluster, b"CLEAR-INLINECLEAR-INLINE")
    assert _on_disk(cluster, b"CLEAR-CODEDCLEAR-CODED")
    assert not _on_disk(cluster, b"SECRET-INLINE")
    assert not _on_disk(cluster, b"SECRET-CODED")
    for key, body in secret.items():
        got = s3.get_object(Bucket="sse-default", Key=key)
        assert got["Body"].read() == body and _sse(got) == "AES256"
        assert _sse(s3.head_object(Bucket="sse-default", Key=key)) == "AES256"
    rnd = random.Random(5)
    for _ in range(20):
        key = rnd.choice(list(secret))
        lo = rnd.randrange(len(secret[key]))
        hi = rnd.randrange(lo, len(secret[key]))
        got = s3.get_object(Bucket="sse-default", Key=key, Range=f"bytes={lo}-{hi}")
        assert got["Body"].read() == secret[key][lo:hi + 1], (key, lo, hi)
    s3.delete_bucket_encryption(Bucket="sse-default")
    assert _sse(s3.put_object(Bucket="sse-default", Key="after", Body=b"x")) is None
    assert s3.get_object(Bucket="sse-default", Key="big")["Body"].read() == secret["big"]


def test_request_header_multipart_and_copies(cluster: Cluster, tmp_path: Path) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="sse-req")
    body = os.urandom(300_000)
    put = s3.put_object(Bucket="sse-req", Key="one", Body=body, ServerSideEncryption="AES256")
    assert _sse(put) == "AES256"
    assert s3.get_object(Bucket="sse-req", Key="one")["Body"].read() == body
    # Multipart: every part with the upload's key, and a part copied from the object.
    up = s3.create_multipart_upload(Bucket="sse-req", Key="mp", ServerSideEncryption="AES256")
    assert _sse(up) == "AES256"
    first = _pattern(b"SECRET-PART", 5 * MIB)
    e1 = s3.upload_part(Bucket="sse-req", Key="mp", UploadId=up["UploadId"], PartNumber=1,
                        Body=first)["ETag"]
    e2 = s3.upload_part_copy(Bucket="sse-req", Key="mp", UploadId=up["UploadId"],
                             PartNumber=2, CopySource={"Bucket": "sse-req", "Key": "one"},
                             CopySourceRange="bytes=1000-200999")["CopyPartResult"]["ETag"]
    done = s3.complete_multipart_upload(
        Bucket="sse-req", Key="mp", UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e1},
                                   {"PartNumber": 2, "ETag": e2}]})
    assert _sse(done) == "AES256"
    whole = first + body[1000:201000]
    assert s3.get_object(Bucket="sse-req", Key="mp")["Body"].read() == whole
    across = s3.get_object(Bucket="sse-req", Key="mp", Range=f"bytes={5 * MIB - 10}-"
                           f"{5 * MIB + 9}")["Body"].read()
    assert across == whole[5 * MIB - 10:5 * MIB + 10]
    assert not _on_disk(cluster, b"SECRET-PART")
    # Copies: encrypted to plain, plain to encrypted, inline and coded.
    s3.put_object(Bucket="sse-req", Key="tiny", Body=b"tiny secret", ServerSideEncryption="AES256")
    plain = s3.copy_object(Bucket="sse-req", Key="tiny-plain",
                           CopySource={"Bucket": "sse-req", "Key": "tiny"})
    assert _sse(plain) is None
    assert s3.get_object(Bucket="sse-req", Key="tiny-plain")["Body"].read() == b"tiny secret"
    sealed = s3.copy_object(Bucket="sse-req", Key="one-again", ServerSideEncryption="AES256",
                            CopySource={"Bucket": "sse-req", "Key": "one"})
    assert _sse(sealed) == "AES256"
    assert s3.get_object(Bucket="sse-req", Key="one-again")["Body"].read() == body


def test_encryption_it_cannot_do_is_refused(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="sse-refused")
    key = os.urandom(32)
    for extra in ({"ServerSideEncryption": "aws:kms"},
                  {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}):
        with pytest.raises(ClientError) as exc:
            s3.put_object(Bucket="sse-refused", Key="k", Body=b"x", **extra)
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501, extra
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_encryption(Bucket="sse-refused", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]})
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert "Contents" not in s3.list_objects_v2(Bucket="sse-refused")


def test_bad_encryption_headers_are_refused(cluster: Cluster) -> None:
    """Found by Ceph's s3-tests (test_put_obj_enc_conflict_*, test_sse_kms_read_declare,
    test_sse_s3_default_method_head): each was answered 200, a write stored unencrypted."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="sse-bad")
    put = {"Bucket": "sse-bad", "Key": "k", "Body": b"x"}
    assert _error(s3.put_object, SSEKMSKeyId="key-1", **put) == (400, "InvalidArgument")
    assert _error(s3.put_object, ServerSideEncryption="AES256", SSEKMSKeyId="key-1",
                  **put) == (400, "InvalidArgument")
    md5_only = {"x-amz-server-side-encryption-customer-key-MD5": "DWygnHRtgiJ77HCm+1rvHw=="}
    with _headers(s3, "PutObject", md5_only):
        assert _error(s3.put_object, **put) == (400, "InvalidArgument")
    assert _error(s3.put_object, ServerSideEncryption="AES256", SSECustomerAlgorithm="AES256",
                  SSECustomerKey=os.urandom(32), **put) == (400, "InvalidArgument")
    assert "Contents" not in s3.list_objects_v2(Bucket="sse-bad")
    s3.put_object(ServerSideEncryption="AES256", **put)
    for extra in ({"x-amz-server-side-encryption": "AES256"},
                  {"x-amz-server-side-encryption": "aws:kms"},
                  {"x-amz-server-side-encryption-aws-kms-key-id": "key-1"}):
        with _headers(s3, "GetObject", extra), _headers(s3, "HeadObject", extra):
            assert _error(s3.get_object, Bucket="sse-bad", Key="k") == (400, "InvalidArgument")
            assert _error(s3.head_object, Bucket="sse-bad", Key="k")[0] == 400
    assert s3.get_object(Bucket="sse-bad", Key="k")["Body"].read() == b"x"
