"""Server-side encryption (SSE-S3, SSE-C; SSE-KMS: test_sse_kms.py) on a real cluster:
what the nodes keep on disk is ciphertext, every read path gives the plaintext back (whole,
ranges, parts, copies), an SSE-C object only to who gives its key, and requests for
encryption Coffre cannot do are refused, never served in the clear."""

from __future__ import annotations

import base64
import hashlib
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster
from tests.cluster.test_tenants import _post_form

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
    with pytest.raises(ClientError) as exc:
        s3.put_object(Bucket="sse-refused", Key="k", Body=b"x",
                      ServerSideEncryption="aws:kms:dsse")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    with pytest.raises(ClientError) as exc:
        s3.put_bucket_encryption(Bucket="sse-refused", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms:dsse"}}]})
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


# ---- SSE-C: customer-provided keys ---------------------------------------------------------


def _ssec(key: bytes, source: bool = False) -> dict[str, Any]:
    """boto3's parameters for a customer key (it sends the base64 key and its MD5)."""
    prefix = "CopySourceSSECustomer" if source else "SSECustomer"
    return {prefix + "Algorithm": "AES256", prefix + "Key": key}


def _md5_b64(key: bytes) -> str:
    return base64.b64encode(hashlib.md5(key).digest()).decode()


def _echoes(resp: Any, key: bytes) -> bool:
    return bool(resp.get("SSECustomerAlgorithm") == "AES256" and
                resp.get("SSECustomerKeyMD5") == _md5_b64(key) and _sse(resp) is None)


def test_sse_c_objects_open_only_with_their_key(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="ssec")
    key, other = os.urandom(32), os.urandom(32)
    bodies = {"small": _pattern(b"SSEC-INLINE", 2000), "big": _pattern(b"SSEC-CODED", 600_000)}
    etags = {}
    for name, body in bodies.items():
        put = s3.put_object(Bucket="ssec", Key=name, Body=body, **_ssec(key))
        assert _echoes(put, key)
        etags[name] = put["ETag"]
        # AWS: not the MD5 of the bytes, which a listing would show to anyone who may list.
        assert put["ETag"] != f'"{hashlib.md5(body).hexdigest()}"'
    assert not _on_disk(cluster, b"SSEC-INLINE") and not _on_disk(cluster, b"SSEC-CODED")
    assert not _on_disk(cluster, key) and not _on_disk(cluster, base64.b64encode(key))
    listed = {o["Key"]: o["ETag"] for o in s3.list_objects_v2(Bucket="ssec")["Contents"]}
    assert listed == etags
    attrs = {"Bucket": "ssec", "Key": "big", "ObjectAttributes": ["ETag", "ObjectSize"]}
    assert _error(s3.get_object_attributes, **attrs) == (400, "InvalidRequest")
    # (botocore does not encode the key for this operation: sent as it goes on the wire)
    assert s3.get_object_attributes(**attrs, SSECustomerAlgorithm="AES256",
                                    SSECustomerKey=base64.b64encode(key).decode(),
                                    SSECustomerKeyMD5=_md5_b64(key))["ObjectSize"] == 600_000
    for name, body in bodies.items():
        got = s3.get_object(Bucket="ssec", Key=name, **_ssec(key))
        assert got["Body"].read() == body and _echoes(got, key) and got["ETag"] == etags[name]
        head = s3.head_object(Bucket="ssec", Key=name, **_ssec(key))
        assert head["ContentLength"] == len(body) and _echoes(head, key)
        assert _error(s3.get_object, Bucket="ssec", Key=name) == (400, "InvalidRequest")
        assert _error(s3.head_object, Bucket="ssec", Key=name)[0] == 400
        assert _error(s3.get_object, Bucket="ssec", Key=name, **_ssec(other)) == \
            (403, "AccessDenied")
        assert _error(s3.head_object, Bucket="ssec", Key=name, **_ssec(other))[0] == 403
    rnd = random.Random(7)
    for _ in range(12):
        name = rnd.choice(list(bodies))
        lo = rnd.randrange(len(bodies[name]))
        hi = rnd.randrange(lo, len(bodies[name]))
        got = s3.get_object(Bucket="ssec", Key=name, Range=f"bytes={lo}-{hi}", **_ssec(key))
        assert got["Body"].read() == bodies[name][lo:hi + 1], (name, lo, hi)
    # A key for an object that has none; faulty keys: nothing is written.
    s3.put_object(Bucket="ssec", Key="plain", Body=b"plain")
    assert _error(s3.get_object, Bucket="ssec", Key="plain", **_ssec(key)) == \
        (400, "InvalidRequest")
    put = {"Bucket": "ssec", "Key": "bad", "Body": b"x"}
    assert _error(s3.put_object, **put, **_ssec(os.urandom(16))) == (400, "InvalidArgument")
    assert _error(s3.put_object, **put, SSECustomerAlgorithm="AES256",
                  SSECustomerKey=base64.b64encode(key).decode(),
                  SSECustomerKeyMD5=_md5_b64(other)) == (400, "InvalidArgument")
    assert _error(s3.put_object, **put, SSECustomerAlgorithm="AES128", SSECustomerKey=key) == \
        (400, "InvalidEncryptionAlgorithmError")
    assert "bad" not in {o["Key"] for o in s3.list_objects_v2(Bucket="ssec")["Contents"]}
    # A bucket's default encryption gives way to the customer's key.
    s3.put_bucket_encryption(Bucket="ssec", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    assert _echoes(s3.put_object(Bucket="ssec", Key="both", Body=b"b", **_ssec(key)), key)
    assert _error(s3.get_object, Bucket="ssec", Key="both") == (400, "InvalidRequest")


def test_sse_c_multipart_copies_and_post(cluster: Cluster) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="ssec-mp")
    key, other = os.urandom(32), os.urandom(32)
    source = os.urandom(300_000)
    s3.put_object(Bucket="ssec-mp", Key="src", Body=source, **_ssec(key))
    up = s3.create_multipart_upload(Bucket="ssec-mp", Key="mp", **_ssec(key))
    assert _echoes(up, key)
    part = {"Bucket": "ssec-mp", "Key": "mp", "UploadId": up["UploadId"]}
    first = _pattern(b"SSEC-PART", 5 * MIB)
    assert _error(s3.upload_part, PartNumber=1, Body=first, **part) == (400, "InvalidRequest")
    assert _error(s3.upload_part, PartNumber=1, Body=first, **part, **_ssec(other)) == \
        (400, "InvalidArgument")
    p1 = s3.upload_part(PartNumber=1, Body=first, **part, **_ssec(key))
    assert _echoes(p1, key)
    copy_src = {"CopySource": {"Bucket": "ssec-mp", "Key": "src"},
                "CopySourceRange": "bytes=1000-200999"}
    assert _error(s3.upload_part_copy, PartNumber=2, **copy_src, **part, **_ssec(key)) == \
        (400, "InvalidRequest")         # the source's key is missing
    p2 = s3.upload_part_copy(PartNumber=2, **copy_src, **part, **_ssec(key),
                             **_ssec(key, source=True))
    assert _echoes(p2, key)
    done = s3.complete_multipart_upload(**part, MultipartUpload={"Parts": [
        {"PartNumber": 1, "ETag": p1["ETag"]},
        {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]}]})
    assert done["ETag"].endswith('-2"') and _sse(done) is None
    assert "ChecksumCRC64NVME" not in done      # AWS computes no default for an SSE-C upload
    whole = first + source[1000:201000]
    got = s3.get_object(Bucket="ssec-mp", Key="mp", **_ssec(key))
    assert got["Body"].read() == whole and _echoes(got, key)
    across = s3.get_object(Bucket="ssec-mp", Key="mp", Range=f"bytes={5 * MIB - 10}-"
                           f"{5 * MIB + 9}", **_ssec(key))["Body"].read()
    assert across == whole[5 * MIB - 10:5 * MIB + 10]
    assert _error(s3.get_object, Bucket="ssec-mp", Key="mp", **_ssec(other))[0] == 403
    assert not _on_disk(cluster, b"SSEC-PART")
    # Copies: SSE-C to plain, plain to SSE-C, and to itself under another key (rotation).
    src = {"Bucket": "ssec-mp", "Key": "src"}
    assert _error(s3.copy_object, Bucket="ssec-mp", Key="x", CopySource=src) == \
        (400, "InvalidRequest")
    assert _error(s3.copy_object, Bucket="ssec-mp", Key="x", CopySource=src,
                  **_ssec(other, source=True)) == (403, "AccessDenied")
    out = s3.copy_object(Bucket="ssec-mp", Key="clear", CopySource=src,
                         **_ssec(key, source=True))
    assert out.get("SSECustomerAlgorithm") is None
    assert s3.get_object(Bucket="ssec-mp", Key="clear")["Body"].read() == source
    out = s3.copy_object(Bucket="ssec-mp", Key="again", CopySource={"Bucket": "ssec-mp",
                         "Key": "clear"}, **_ssec(other))
    assert _echoes(out, other)
    assert s3.get_object(Bucket="ssec-mp", Key="again", **_ssec(other))["Body"].read() == source
    s3.copy_object(Bucket="ssec-mp", Key="src", CopySource=src, **_ssec(key, source=True),
                   **_ssec(other))
    assert s3.get_object(Bucket="ssec-mp", Key="src", **_ssec(other))["Body"].read() == source
    assert _error(s3.get_object, Bucket="ssec-mp", Key="src", **_ssec(key))[0] == 403
    # A browser form names the key as fields.
    ssec_fields = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
                   "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
                   "x-amz-server-side-encryption-customer-key-MD5": _md5_b64(key)}
    post = s3.generate_presigned_post("ssec-mp", "form", Fields=ssec_fields,
                                      Conditions=[{k: v} for k, v in ssec_fields.items()])
    status, body = _post_form(post["url"], dict(post["fields"]), "f", b"SSEC-FORM-BODY")
    assert status == 204, body
    assert not _on_disk(cluster, b"SSEC-FORM-BODY")
    got = s3.get_object(Bucket="ssec-mp", Key="form", **_ssec(key))
    assert got["Body"].read() == b"SSEC-FORM-BODY"
