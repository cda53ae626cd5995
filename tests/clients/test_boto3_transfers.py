"""boto3's managed transfers against a real cluster, with its default settings (CRC32
checksums in aws-chunked trailers on every upload since botocore 1.36, multipart above
8 MiB) and with `request_checksum_calculation="when_required"` (no checksum unless the
operation demands one)."""

from __future__ import annotations

import base64
import hashlib
import io
import random
import zlib
from typing import Any

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

KIB = 1024
MIB = 1024 * KIB
SIZES_BYTES = (0, KIB, 9 * MIB)
SEED = 36
BUCKET = "transfers"
# Config keyword arguments for boto3 clients: botocore's defaults, then checksums only when
# an operation requires one.
SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "when_required": {"request_checksum_calculation": "when_required",
                      "response_checksum_validation": "when_required"},
}


@pytest.fixture(scope="module")
def bucket(cluster: Cluster) -> str:
    s3: Any = tools.boto3_client(cluster)
    s3.create_bucket(Bucket=BUCKET)
    return BUCKET


def _crc32_b64(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("size", SIZES_BYTES)
@pytest.mark.parametrize("setting", list(SETTINGS))
def test_upload_fileobj_round_trip(cluster: Cluster, bucket: str, setting: str,
                                   size: int) -> None:
    s3: Any = tools.boto3_client(cluster, **SETTINGS[setting])
    seed = SEED + size
    print(f"seed={seed}")
    body = random.Random(seed).randbytes(size)
    key = f"{setting}/obj-{size}"
    s3.upload_fileobj(io.BytesIO(body), bucket, key)
    head = s3.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == size
    if size < 8 * MIB:
        assert head["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    else:
        # Above the 8 MiB threshold upload_fileobj goes multipart: 8 MiB + 1 MiB.
        assert head["ETag"].endswith('-2"')
    out = io.BytesIO()
    s3.download_fileobj(bucket, key, out)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(body).digest()


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_put_object_checksum_comes_back(cluster: Cluster, bucket: str, setting: str) -> None:
    s3: Any = tools.boto3_client(cluster, **SETTINGS[setting])
    body = random.Random(SEED).randbytes(KIB)
    key = f"{setting}/checked"
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="CRC32")
    assert put["ChecksumCRC32"] == _crc32_b64(body)
    # A single PUT's checksum covers the whole object; AWS says so in x-amz-checksum-type.
    assert put.get("ChecksumType") == "FULL_OBJECT"
    got = s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["ChecksumCRC32"] == _crc32_b64(body)
    head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == _crc32_b64(body)
    assert head.get("ChecksumType") == "FULL_OBJECT"


def test_default_upload_stores_its_crc32(cluster: Cluster, bucket: str) -> None:
    # With default settings botocore computes a CRC32 for a plain put_object by itself.
    s3: Any = tools.boto3_client(cluster)
    body = b"checksummed by default\n"
    s3.put_object(Bucket=bucket, Key="default/implicit", Body=body)
    head = s3.head_object(Bucket=bucket, Key="default/implicit", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == _crc32_b64(body)


def test_default_multipart_has_composite_checksum(cluster: Cluster, bucket: str) -> None:
    s3: Any = tools.boto3_client(cluster)
    body = random.Random(SEED + 2).randbytes(9 * MIB)
    s3.upload_fileobj(io.BytesIO(body), bucket, "default/composite")
    parts = (body[: 8 * MIB], body[8 * MIB:])
    digests = b"".join(zlib.crc32(p).to_bytes(4, "big") for p in parts)
    head = s3.head_object(Bucket=bucket, Key="default/composite", ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") == f"{_crc32_b64(digests)}-2"
    assert head.get("ChecksumType") == "COMPOSITE"
