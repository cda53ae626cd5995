"""AWS's default data integrity (since early 2025): an object written without a checksum
gets a full-object CRC64NVME, shown by PutObject, GET/HEAD with checksum mode,
GetObjectAttributes and CopyObject, and every listing entry names its checksum algorithm
and type (LocalStack's AWS-validated snapshots of test_s3_list_operations, recorded
21-01-2025: ChecksumAlgorithm and ChecksumType FULL_OBJECT on ListObjectsV2 and
ListObjectVersions entries).

The client here sends no checksum (request_checksum_calculation="when_required"), as an
SDK older than December 2024 or a plain HTTP client does.
"""

from __future__ import annotations

import base64
import random
from typing import Any

import boto3
import pytest
from awscrt import checksums as crt
from botocore.config import Config as BotoConfig

from tests.cluster.harness import Cluster

MIB = 1024 * 1024


def _crc64nvme(data: bytes) -> str:
    return base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    client = boto3.client(
        "s3", endpoint_url=cluster.endpoint, region_name=cluster.config.region,
        aws_access_key_id=cluster.key.access_key,
        aws_secret_access_key=cluster.key.secret_key,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          request_checksum_calculation="when_required"))
    sent: list[dict[str, str]] = []
    client.meta.events.register("before-send.s3.PutObject",
                                lambda request, **_: sent.append(dict(request.headers)))
    client.create_bucket(Bucket="crc")
    client.put_object(Bucket="crc", Key="probe", Body=b"x")
    assert not any(k.lower().startswith("x-amz-checksum") for k in sent[0]), sent[0]
    return client


@pytest.mark.parametrize("size", [11, 3 * MIB + 5])     # inline, and erasure-coded stripes
def test_put_without_checksum_gets_crc64nvme(s3: Any, size: int) -> None:
    body = random.Random(size).randbytes(size)
    want = _crc64nvme(body)
    key = f"plain/{size}"
    put = s3.put_object(Bucket="crc", Key=key, Body=body)
    assert (put.get("ChecksumCRC64NVME"), put.get("ChecksumType")) == (want, "FULL_OBJECT")
    for got in (s3.head_object(Bucket="crc", Key=key, ChecksumMode="ENABLED"),
                s3.get_object(Bucket="crc", Key=key, ChecksumMode="ENABLED")):
        assert (got.get("ChecksumCRC64NVME"), got.get("ChecksumType")) == (want, "FULL_OBJECT")
    assert "ChecksumCRC64NVME" not in s3.head_object(Bucket="crc", Key=key)  # mode not asked
    attrs = s3.get_object_attributes(Bucket="crc", Key=key, ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {"ChecksumCRC64NVME": want, "ChecksumType": "FULL_OBJECT"}


def test_a_client_checksum_is_kept_not_the_default(s3: Any) -> None:
    put = s3.put_object(Bucket="crc", Key="sha", Body=b"abc", ChecksumAlgorithm="SHA256")
    got = s3.head_object(Bucket="crc", Key="sha", ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert "ChecksumCRC64NVME" not in got


def test_copy_result_carries_the_copys_checksum(s3: Any) -> None:
    """CopyObjectResult has ChecksumType and the value (AWS's API reference: present when
    the source was written without a checksum); x-amz-checksum-algorithm asks for another,
    computed over the copied bytes."""
    body = random.Random(7).randbytes(2 * MIB)
    s3.put_object(Bucket="crc", Key="src", Body=body)
    got = s3.copy_object(Bucket="crc", Key="dst", CopySource={"Bucket": "crc", "Key": "src"})
    result = got["CopyObjectResult"]
    assert (result.get("ChecksumCRC64NVME"), result.get("ChecksumType")) == (
        _crc64nvme(body), "FULL_OBJECT")
    head = s3.head_object(Bucket="crc", Key="dst", ChecksumMode="ENABLED")
    assert head["ChecksumCRC64NVME"] == _crc64nvme(body)
    got = s3.copy_object(Bucket="crc", Key="dst-crc32", ChecksumAlgorithm="CRC32",
                         CopySource={"Bucket": "crc", "Key": "src"})
    want = base64.b64encode(crt.crc32(body).to_bytes(4, "big")).decode()
    assert got["CopyObjectResult"].get("ChecksumCRC32") == want
    assert "ChecksumCRC64NVME" not in got["CopyObjectResult"]


def test_copy_of_a_composite_checksum_is_one_part(s3: Any) -> None:
    """A multipart source's COMPOSITE value describes parts the copy does not have."""
    upload = s3.create_multipart_upload(Bucket="crc", Key="mp", ChecksumAlgorithm="CRC32")
    body = random.Random(3).randbytes(5 * MIB)
    part = s3.upload_part(Bucket="crc", Key="mp", UploadId=upload["UploadId"], PartNumber=1,
                          Body=body, ChecksumAlgorithm="CRC32")
    s3.complete_multipart_upload(Bucket="crc", Key="mp", UploadId=upload["UploadId"],
                                 MultipartUpload={"Parts": [{
                                     "PartNumber": 1, "ETag": part["ETag"],
                                     "ChecksumCRC32": part["ChecksumCRC32"]}]})
    got = s3.copy_object(Bucket="crc", Key="mp-copy", CopySource={"Bucket": "crc", "Key": "mp"})
    assert got["CopyObjectResult"].get("ChecksumType") == "FULL_OBJECT"
    assert got["CopyObjectResult"].get("ChecksumCRC32") == part["ChecksumCRC32"]


def _raw_body(s3: Any, event: str, call: Any) -> bytes:
    seen: list[bytes] = []

    def keep(http_response: Any, **_: Any) -> None:
        seen.append(http_response.content)
    s3.meta.events.register(f"after-call.s3.{event}", keep)
    try:
        call()
    finally:
        s3.meta.events.unregister(f"after-call.s3.{event}", keep)
    return seen[0]


def test_listings_name_the_checksum(s3: Any) -> None:
    s3.create_bucket(Bucket="crc-list")
    s3.put_bucket_versioning(Bucket="crc-list", VersioningConfiguration={"Status": "Enabled"})
    for key in ("a", "b"):
        s3.put_object(Bucket="crc-list", Key=key, Body=key.encode() * 100)
    s3.delete_object(Bucket="crc-list", Key="b")       # a delete marker has no checksum
    want = {"ChecksumAlgorithm": ["CRC64NVME"], "ChecksumType": "FULL_OBJECT"}
    for listed in (s3.list_objects(Bucket="crc-list")["Contents"],
                   s3.list_objects_v2(Bucket="crc-list")["Contents"]):
        assert [(o["Key"], {k: o.get(k) for k in want}) for o in listed] == [("a", want)]
    versions = s3.list_object_versions(Bucket="crc-list")
    assert [(v["Key"], {k: v.get(k) for k in want}) for v in versions["Versions"]] == [
        ("a", want), ("b", want)]
    assert "ChecksumAlgorithm" not in versions["DeleteMarkers"][0]
    # botocore's Object and ObjectVersion shapes: ETag, ChecksumAlgorithm, ChecksumType, Size
    order = (b"</ETag><ChecksumAlgorithm>CRC64NVME</ChecksumAlgorithm>"
             b"<ChecksumType>FULL_OBJECT</ChecksumType><Size>")
    assert order in _raw_body(s3, "ListObjectsV2",
                              lambda: s3.list_objects_v2(Bucket="crc-list"))
    assert order in _raw_body(s3, "ListObjectVersions",
                              lambda: s3.list_object_versions(Bucket="crc-list"))
