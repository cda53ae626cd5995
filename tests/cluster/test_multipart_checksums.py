"""Additional checksums across a multipart upload, against a real cluster, with the errors
AWS answers (as recorded by AWS-validated suites: LocalStack's snapshots, OpenStack Swift's
s3api tests run against AWS): what Create accepts, what each UploadPart must carry, what
Complete must repeat, and the object's checksum that results."""

from __future__ import annotations

import base64
import hashlib
import random
import zlib
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from awscrt import checksums as crt
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

MIB = 1024 * 1024
BUCKET = "sums"
NOT_FOUND = ("One or more of the specified parts could not be found.  The part may not have "
             "been uploaded, or the specified entity tag may not match the part's entity tag.")


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    """A client that sends a checksum only when told to (boto3 adds CRC32 by default)."""
    client = boto3.client(
        "s3", endpoint_url=cluster.endpoint, region_name=cluster.config.region,
        aws_access_key_id=cluster.key.access_key, aws_secret_access_key=cluster.key.secret_key,
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                          request_checksum_calculation="when_required",
                          response_checksum_validation="when_required"))
    client.create_bucket(Bucket=BUCKET)
    return client


def _error(call: Callable[[], object]) -> dict[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return dict(caught.value.response["Error"])


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def _crc64nvme(data: bytes) -> str:
    return base64.b64encode(crt.crc64nvme(data).to_bytes(8, "big")).decode()


def _absent(s3: Any, key: str) -> bool:
    try:
        s3.head_object(Bucket=BUCKET, Key=key)
    except ClientError as exc:
        return bool(exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404)
    return False


def test_create_refuses_what_aws_refuses(s3: Any) -> None:
    def create(**kw: str) -> dict[str, str]:
        return _error(lambda: s3.create_multipart_upload(Bucket=BUCKET, Key="c", **kw))
    assert create(ChecksumAlgorithm="SHA256", ChecksumType="FULL_OBJECT") == {
        "Code": "InvalidRequest", "Message": "The FULL_OBJECT checksum type cannot be used "
                                             "with the sha256 checksum algorithm."}
    assert create(ChecksumAlgorithm="CRC64NVME", ChecksumType="COMPOSITE") == {
        "Code": "InvalidRequest", "Message": "The COMPOSITE checksum type cannot be used "
                                             "with the crc64nvme checksum algorithm."}
    assert create(ChecksumType="COMPOSITE") == {
        "Code": "InvalidRequest", "Message": "The x-amz-checksum-type header can only be used "
                                             "with the x-amz-checksum-algorithm header."}
    assert create(ChecksumAlgorithm="CRC32,CRC32C")["Message"] == (
        "Invalid types are specified in x-amz-checksum-algorithm header.")
    assert create(ChecksumAlgorithm="nope")["Message"] == (
        "Checksum algorithm provided is unsupported. Please try again with any of the valid "
        "types: [CRC32, CRC32C, SHA1, SHA256]")
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    made = s3.create_multipart_upload(Bucket=BUCKET, Key="c", ChecksumAlgorithm="CRC64NVME")
    assert (made["ChecksumAlgorithm"], made["ChecksumType"]) == ("CRC64NVME", "FULL_OBJECT")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="c", UploadId=made["UploadId"])


def test_upload_part_must_carry_the_uploads_algorithm(s3: Any) -> None:
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key="p", ChecksumAlgorithm="SHA256",
                                     ChecksumType="COMPOSITE")["UploadId"]

    def part(**kw: str) -> Any:
        return s3.upload_part(Bucket=BUCKET, Key="p", UploadId=uid, PartNumber=1,
                              Body=b"123456789", **kw)
    assert _error(lambda: part(ChecksumAlgorithm="CRC32"))["Message"] == (
        "Checksum Type mismatch occurred, expected checksum Type: sha256, actual checksum "
        "Type: crc32")
    assert _error(part)["Message"] == (
        "Checksum Type mismatch occurred, expected checksum Type: sha256, actual checksum "
        "Type: null")
    assert s3.list_parts(Bucket=BUCKET, Key="p", UploadId=uid).get("Parts", []) == []
    assert part(ChecksumAlgorithm="SHA256")["ChecksumSHA256"] == _sha256(b"123456789")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="p", UploadId=uid)
    # FULL_OBJECT: a part may come without one; the gateway computes it.
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key="p", ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    assert part()["ChecksumCRC32"] == _crc32(b"123456789")
    s3.abort_multipart_upload(Bucket=BUCKET, Key="p", UploadId=uid)


def _sha256_upload(s3: Any, key: str, seed: int, tail_bytes: int
                   ) -> tuple[str, list[bytes], list[str]]:
    """A SHA256 upload of a 5 MiB part and a short last one, each sent with its checksum:
    its id, the parts' bodies and their ETags."""
    rnd = random.Random(seed)
    bodies = [rnd.randbytes(5 * MIB), rnd.randbytes(tail_bytes)]
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm="SHA256")["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=b,
                            ChecksumAlgorithm="SHA256")["ETag"]
             for n, b in enumerate(bodies, start=1)]
    return uid, bodies, etags


def test_complete_composite_checks_each_listed_checksum(s3: Any) -> None:
    key = "composite"
    uid, bodies, etags = _sha256_upload(s3, key, 7, 1000)
    sums = [_sha256(b) for b in bodies]

    def complete(parts: list[dict[str, Any]], **kw: str) -> Any:
        return s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                            MultipartUpload={"Parts": parts}, **kw)

    def parts(**second: str) -> list[dict[str, Any]]:
        return [{"PartNumber": 1, "ETag": etags[0], "ChecksumSHA256": sums[0]},
                {"PartNumber": 2, "ETag": etags[1], **second}]
    assert _error(lambda: complete(parts())) == {
        "Code": "InvalidRequest",
        "Message": "The upload was created using a sha256 checksum. The complete request "
                   "must include the checksum for each part. It was missing for part 2 in "
                   "the request."}
    wrong = _sha256(b"other")
    assert _error(lambda: complete(parts(ChecksumSHA256=wrong))) == {
        "Code": "InvalidPart", "Message": NOT_FOUND, "UploadId": uid, "PartNumber": "2",
        "ETag": etags[1].strip('"')}
    assert _error(lambda: complete(parts(ChecksumSHA256="bm90IGEgZGlnZXN0"))) == {
        "Code": "InvalidArgument",
        "Message": "Invalid Base64 or multiple checksums present in request",
        "ArgumentName": "Checksum", "ArgumentValue": "SHA256:bm90IGEgZGlnZXN0;"}
    both = {"ChecksumCRC32": _crc32(bodies[1]), "ChecksumSHA256": sums[1]}
    assert _error(lambda: complete(parts(**both)))["ArgumentValue"] == (
        f"CRC32:{both['ChecksumCRC32']};SHA256:{sums[1]};")
    assert _error(lambda: complete(parts(ChecksumCRC32=both["ChecksumCRC32"]))) == {
        "Code": "BadDigest",
        "Message": "The crc32 you specified for part 2 did not match what we received."}
    digests = b"".join(hashlib.sha256(b).digest() for b in bodies)
    expected = f"{_sha256(digests)}-2"
    good = parts(ChecksumSHA256=sums[1])
    assert _error(lambda: complete(good, ChecksumSHA256=expected[:-2] + "-a")) == {
        "Code": "InvalidRequest", "Message": "Value for x-amz-checksum-sha256 header is invalid."}
    mismatch = {"Code": "BadDigest",
                "Message": "The sha256 you specified did not match the calculated checksum."}
    assert _error(lambda: complete(good, ChecksumSHA256=expected[:-1] + "3")) == mismatch
    assert _error(lambda: complete(good, ChecksumSHA256=_sha256(b"x"))) == mismatch
    # AWS compares a declared composite with the listed checksums before the parts.
    assert _error(lambda: complete(parts(ChecksumSHA256=wrong),
                                   ChecksumSHA256=expected))["Code"] == "BadDigest"
    assert _absent(s3, key)
    done = complete(good, ChecksumSHA256=expected[:-2])
    assert (done["ChecksumSHA256"], done["ChecksumType"]) == (expected, "COMPOSITE")
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (expected, "COMPOSITE")


def test_complete_full_object_needs_no_part_checksums(s3: Any) -> None:
    rnd = random.Random(8)
    bodies = [rnd.randbytes(5 * MIB), rnd.randbytes(777)]
    key = "full"
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm="CRC32",
                                     ChecksumType="FULL_OBJECT")["UploadId"]
    etags = [s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n,
                            Body=b)["ETag"] for n, b in enumerate(bodies, start=1)]
    parts = [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, start=1)]
    whole = _crc32(b"".join(bodies))

    def complete(**kw: str) -> Any:
        return s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                            MultipartUpload={"Parts": parts}, **kw)
    assert _error(lambda: complete(ChecksumCRC32=_crc32(b"x"))) == {
        "Code": "BadDigest",
        "Message": "The crc32 you specified did not match the calculated checksum."}
    done = complete(ChecksumCRC32=whole)
    assert (done["ChecksumCRC32"], done["ChecksumType"]) == (whole, "FULL_OBJECT")


def test_complete_without_an_algorithm_lists_no_checksums(s3: Any) -> None:
    key = "plain"
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                          Body=b"123456789")["ETag"]
    listed = [{"PartNumber": 1, "ETag": etag, "ChecksumCRC32": _crc32(b"123456789")}]
    assert _error(lambda: s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=uid, MultipartUpload={"Parts": listed})) == {
        "Code": "InvalidPart", "Message": NOT_FOUND, "UploadId": uid, "PartNumber": "1",
        "ETag": etag.strip('"')}
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": etag}]})
    # If-None-Match: * on Complete: the key exists now, nothing is written.
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    etag = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                          Body=b"again")["ETag"]
    assert _error(lambda: s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=uid, IfNoneMatch="*",
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]}))["Code"] == (
        "PreconditionFailed")
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"123456789"
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


def test_upload_part_copy_gets_the_uploads_checksum(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="src", Body=b"0123456789")
    key = "copied"
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm="SHA256")["UploadId"]
    copied = s3.upload_part_copy(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                                 CopySource={"Bucket": BUCKET, "Key": "src"},
                                 CopySourceRange="bytes=2-5")["CopyPartResult"]
    assert copied["ChecksumSHA256"] == _sha256(b"2345")
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": copied["ETag"],
                   "ChecksumSHA256": copied["ChecksumSHA256"]}]})
    assert done["ChecksumSHA256"] == _sha256(hashlib.sha256(b"2345").digest()) + "-1"


def test_list_parts_and_uploads_show_the_checksum(s3: Any) -> None:
    key = "listed"
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key,
                                     ChecksumAlgorithm="CRC32C")["UploadId"]
    for n in (2, 10):
        s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=b"123456789",
                       ChecksumAlgorithm="CRC32C")
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    crc32c = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=2,
                            Body=b"123456789", ChecksumAlgorithm="CRC32C")["ChecksumCRC32C"]
    assert [(p["PartNumber"], p["ChecksumCRC32C"]) for p in listed["Parts"]] == [
        (2, crc32c), (10, crc32c)]
    assert (listed["ChecksumAlgorithm"], listed["ChecksumType"]) == ("CRC32C", "COMPOSITE")
    ups = {u["Key"]: u for u in s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]}
    assert (ups[key]["ChecksumAlgorithm"], ups[key]["ChecksumType"]) == ("CRC32C", "COMPOSITE")
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)
    # Without an algorithm, nothing is tracked and nothing shown, whatever a part carried.
    uid = s3.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1, Body=b"1",
                   ChecksumAlgorithm="CRC32")
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert "ChecksumAlgorithm" not in listed and "ChecksumCRC32" not in listed["Parts"][0]
    ups = {u["Key"]: u for u in s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]}
    assert "ChecksumAlgorithm" not in ups[key]
    s3.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid)


def test_object_attributes_list_each_parts_checksum(s3: Any) -> None:
    key = "attrs"
    uid, bodies, etags = _sha256_upload(s3, key, 9, 5)
    parts = [{"PartNumber": n, "ChecksumSHA256": _sha256(b), "ETag": e}
             for n, (b, e) in enumerate(zip(bodies, etags, strict=True), start=1)]
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    got = s3.get_object_attributes(Bucket=BUCKET, Key=key,
                                   ObjectAttributes=["Checksum", "ObjectParts"])
    # AWS shows the composite value there without its "-2" (Complete, HEAD, GET keep it).
    assert done["ChecksumSHA256"].endswith("-2")
    assert got["Checksum"] == {"ChecksumSHA256": done["ChecksumSHA256"].removesuffix("-2"),
                               "ChecksumType": "COMPOSITE"}
    assert got["ObjectParts"]["Parts"] == [
        {"PartNumber": n, "Size": len(b), "ChecksumSHA256": _sha256(b)}
        for n, b in enumerate(bodies, start=1)]
    rest = s3.get_object_attributes(Bucket=BUCKET, Key=key, ObjectAttributes=["ObjectParts"],
                                    MaxParts=1, PartNumberMarker=1)["ObjectParts"]
    assert (rest["IsTruncated"], rest["NextPartNumberMarker"], rest["TotalPartsCount"]) == (
        False, 2, 2)
    assert [p["ChecksumSHA256"] for p in rest["Parts"]] == [_sha256(bodies[1])]


def test_a_part_read_shows_that_parts_checksum(s3: Any) -> None:
    key = "by-part"
    uid, bodies, etags = _sha256_upload(s3, key, 10, 7)
    s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": n, "ETag": e, "ChecksumSHA256": _sha256(b)}
                  for n, (b, e) in enumerate(zip(bodies, etags, strict=True), start=1)]})
    head = s3.head_object(Bucket=BUCKET, Key=key, PartNumber=2, ChecksumMode="ENABLED")
    assert (head["ChecksumSHA256"], head["ChecksumType"]) == (_sha256(bodies[1]), "COMPOSITE")
    got = s3.get_object(Bucket=BUCKET, Key=key, PartNumber=1, ChecksumMode="ENABLED")
    assert got["ChecksumSHA256"] == _sha256(bodies[0]) and got["Body"].read() == bodies[0]
    # A range that is not the whole object: the object's checksum does not cover it.
    head = s3.head_object(Bucket=BUCKET, Key=key, Range="bytes=0-9", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" not in head
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"].endswith("-2")


def test_an_upload_without_an_algorithm_gets_the_default_crc64nvme(s3: Any) -> None:
    """AWS's default data integrity: the object of an upload created without an algorithm
    gets a FULL_OBJECT CRC64NVME (the API reference's Checksum and GetObject/HeadObject:
    "or if the object was uploaded without a checksum (and Amazon S3 added the default
    checksum, CRC64NVME)"), from its parts' CRC64NVMEs, which an UploadPart answers. The
    upload names no algorithm and, as AWS answers (LocalStack's snapshots, versitygw), no
    part checksum is listed, by ListParts or GetObjectAttributes, nor given for a part read
    of a FULL_OBJECT object; a part may declare another algorithm, which is checked."""
    rnd = random.Random(11)
    bodies = [rnd.randbytes(5 * MIB), rnd.randbytes(3000)]
    key = "defaulted"
    created = s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    uid = created["UploadId"]
    assert "ChecksumAlgorithm" not in created and "ChecksumType" not in created
    first = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=1,
                           Body=bodies[0])
    assert first["ChecksumCRC64NVME"] == _crc64nvme(bodies[0])
    assert _error(lambda: s3.upload_part(
        Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=2, Body=bodies[1],
        ChecksumCRC32=_crc32(b"other")))["Code"] == "BadDigest"
    second = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=2,
                            Body=bodies[1], ChecksumCRC32=_crc32(bodies[1]))
    assert second["ChecksumCRC32"] == _crc32(bodies[1])
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert "ChecksumAlgorithm" not in listed and "ChecksumType" not in listed
    assert [sorted(p) for p in listed["Parts"]] == [
        ["ETag", "LastModified", "PartNumber", "Size"]] * 2
    ups = {u["Key"]: u for u in s3.list_multipart_uploads(Bucket=BUCKET)["Uploads"]}
    assert "ChecksumAlgorithm" not in ups[key]
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": first["ETag"]},
                  {"PartNumber": 2, "ETag": second["ETag"]}]})
    whole = _crc64nvme(b"".join(bodies))
    assert (done["ChecksumCRC64NVME"], done["ChecksumType"]) == (whole, "FULL_OBJECT")
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head["ChecksumCRC64NVME"], head["ChecksumType"]) == (whole, "FULL_OBJECT")
    got = s3.get_object_attributes(Bucket=BUCKET, Key=key,
                                   ObjectAttributes=["Checksum", "ObjectParts"])
    assert got["Checksum"] == {"ChecksumCRC64NVME": whole, "ChecksumType": "FULL_OBJECT"}
    assert "Parts" not in got["ObjectParts"]
    part = s3.head_object(Bucket=BUCKET, Key=key, PartNumber=1, ChecksumMode="ENABLED")
    assert "ChecksumCRC64NVME" not in part and part["ContentLength"] == len(bodies[0])
    entry = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"][0]
    assert (entry["ChecksumAlgorithm"], entry["ChecksumType"]) == (["CRC64NVME"], "FULL_OBJECT")
