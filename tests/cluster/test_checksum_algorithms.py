"""The checksum algorithms AWS added in 2025 (botocore's ChecksumAlgorithm enum): SHA512, MD5,
XXHASH64, XXHASH3 and XXHASH128, wherever the API reference carries them: PutObject and
UploadPart (x-amz-checksum-<alg>, verified), GET/HEAD with checksum mode, GetObjectAttributes,
listings, CopyObject's x-amz-checksum-algorithm, and multipart uploads, where they are
COMPOSITE only (AWS's user guide: full-object checksums are for the CRCs, which linearize).

botocore computes all but MD5 itself (SHA512 with hashlib, the xxHashes with awscrt), and
checks the values a GET with checksum mode answers; an MD5 is sent precomputed.
"""

from __future__ import annotations

import base64
import hashlib
import random
from typing import Any

import pytest
import xxhash
from botocore.exceptions import ClientError

from tests.cluster.harness import Cluster

MIB = 1024 * 1024
BUCKET = "algs"
NEW = ["SHA512", "MD5", "XXHASH64", "XXHASH3", "XXHASH128"]
_DIGESTS = {
    "SHA512": lambda b: hashlib.sha512(b).digest(),
    "MD5": lambda b: hashlib.md5(b).digest(),
    "XXHASH64": lambda b: xxhash.xxh64(b).digest(),
    "XXHASH3": lambda b: xxhash.xxh3_64(b).digest(),
    "XXHASH128": lambda b: xxhash.xxh3_128(b).digest(),
}


def _sum(alg: str, data: bytes) -> str:
    return base64.b64encode(_DIGESTS[alg](data)).decode()


@pytest.fixture(scope="module")
def s3(cluster: Cluster) -> Any:
    """A client that sends a checksum only when told, and checks every one a response
    carries (boto3's default, response_checksum_validation="when_supported")."""
    client = cluster.s3(send_checksums=False)
    client.create_bucket(Bucket=BUCKET)
    return client


def _declare(alg: str, data: bytes) -> dict[str, str]:
    """What a request passes to declare `alg`: botocore computes it, except an MD5."""
    return {"ChecksumMD5": _sum(alg, data)} if alg == "MD5" else {"ChecksumAlgorithm": alg}


@pytest.mark.parametrize("alg", NEW)
def test_put_is_verified_and_every_read_shows_it(s3: Any, alg: str) -> None:
    data = random.Random(alg).randbytes(200_000)
    key = f"put/{alg}"
    want = _sum(alg, data)
    put = s3.put_object(Bucket=BUCKET, Key=key, Body=data, **_declare(alg, data))
    assert (put[f"Checksum{alg}"], put["ChecksumType"]) == (want, "FULL_OBJECT")
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head[f"Checksum{alg}"], head["ChecksumType"]) == (want, "FULL_OBJECT")
    got = s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == data and got[f"Checksum{alg}"] == want
    attrs = s3.get_object_attributes(Bucket=BUCKET, Key=key, ObjectAttributes=["Checksum"])
    assert attrs["Checksum"] == {f"Checksum{alg}": want, "ChecksumType": "FULL_OBJECT"}
    entry = s3.list_objects_v2(Bucket=BUCKET, Prefix=key)["Contents"][0]
    assert (entry["ChecksumAlgorithm"], entry["ChecksumType"]) == ([alg], "FULL_OBJECT")
    wrong = {f"Checksum{alg}": _sum(alg, b"other bytes")}
    with pytest.raises(ClientError) as caught:
        s3.put_object(Bucket=BUCKET, Key=f"{key}/wrong", Body=data, **wrong)
    assert dict(caught.value.response["Error"]) == {
        "Code": "BadDigest",
        "Message": f"The {alg} you specified did not match the calculated checksum."}
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{key}/wrong")


@pytest.mark.parametrize("alg", ["MD5", "XXHASH128"])
def test_multipart_is_composite(s3: Any, alg: str) -> None:
    rnd = random.Random(alg)
    bodies = [rnd.randbytes(5 * MIB), rnd.randbytes(999)]
    key = f"mp/{alg}"
    with pytest.raises(ClientError) as caught:
        s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm=alg,
                                   ChecksumType="FULL_OBJECT")
    assert caught.value.response["Error"]["Message"] == (
        f"The FULL_OBJECT checksum type cannot be used with the {alg.lower()} checksum "
        "algorithm.")
    created = s3.create_multipart_upload(Bucket=BUCKET, Key=key, ChecksumAlgorithm=alg)
    assert (created["ChecksumAlgorithm"], created["ChecksumType"]) == (alg, "COMPOSITE")
    uid = created["UploadId"]
    parts = []
    for n, body in enumerate(bodies, start=1):
        done = s3.upload_part(Bucket=BUCKET, Key=key, UploadId=uid, PartNumber=n, Body=body,
                              **_declare(alg, body))
        assert done[f"Checksum{alg}"] == _sum(alg, body)
        parts.append({"PartNumber": n, "ETag": done["ETag"], f"Checksum{alg}": _sum(alg, body)})
    listed = s3.list_parts(Bucket=BUCKET, Key=key, UploadId=uid)
    assert [p[f"Checksum{alg}"] for p in listed["Parts"]] == [_sum(alg, b) for b in bodies]
    whole = _sum(alg, b"".join(_DIGESTS[alg](b) for b in bodies)) + "-2"
    done = s3.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=uid,
                                        MultipartUpload={"Parts": parts})
    assert (done[f"Checksum{alg}"], done["ChecksumType"]) == (whole, "COMPOSITE")
    head = s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
    assert (head[f"Checksum{alg}"], head["ChecksumType"]) == (whole, "COMPOSITE")
    part = s3.head_object(Bucket=BUCKET, Key=key, PartNumber=2, ChecksumMode="ENABLED")
    assert part[f"Checksum{alg}"] == _sum(alg, bodies[1])


def test_copy_computes_the_asked_algorithm(s3: Any) -> None:
    data = b"copied with a new checksum " * 100
    s3.put_object(Bucket=BUCKET, Key="copy/src", Body=data)
    for alg in NEW:
        done = s3.copy_object(Bucket=BUCKET, Key=f"copy/{alg}", ChecksumAlgorithm=alg,
                              CopySource={"Bucket": BUCKET, "Key": "copy/src"})
        result = done["CopyObjectResult"]
        assert (result[f"Checksum{alg}"], result["ChecksumType"]) == (
            _sum(alg, data), "FULL_OBJECT")
        head = s3.head_object(Bucket=BUCKET, Key=f"copy/{alg}", ChecksumMode="ENABLED")
        assert head[f"Checksum{alg}"] == _sum(alg, data)
