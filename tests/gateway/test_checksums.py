"""Checksums against botocore's own checksum classes and published check values; request
declarations and their errors; multipart composite and full-object arithmetic."""

from __future__ import annotations

import base64
import hashlib
import random

import botocore.session
import pytest
from botocore import httpchecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.checksums import (
    ChecksumAlgorithm,
    Checksummer,
    ChecksumType,
    algorithm_from_aws_name,
    algorithm_from_header_name,
    checksum_b64,
    combine_crc,
    composite_checksum,
    request_checksums,
    verify,
    verify_md5,
)


class _Md5Checksum:
    """botocore computes no MD5 checksum (it sends only a given one): hashlib's, with its
    checksum classes' handle()."""

    def handle(self, body: bytes) -> str:
        return base64.b64encode(hashlib.md5(body).digest()).decode()


BOTOCORE = {
    ChecksumAlgorithm.CRC32: httpchecksum.CrtCrc32Checksum,
    ChecksumAlgorithm.CRC32C: httpchecksum.CrtCrc32cChecksum,
    ChecksumAlgorithm.CRC64NVME: httpchecksum.CrtCrc64NvmeChecksum,
    ChecksumAlgorithm.SHA1: httpchecksum.Sha1Checksum,
    ChecksumAlgorithm.SHA256: httpchecksum.Sha256Checksum,
    # The 2025 ones: botocore's xxHashes are awscrt's, not the xxhash package the gateway uses.
    ChecksumAlgorithm.SHA512: httpchecksum.Sha512Checksum,
    ChecksumAlgorithm.MD5: _Md5Checksum,
    ChecksumAlgorithm.XXHASH64: httpchecksum.CrtXxhash64Checksum,
    ChecksumAlgorithm.XXHASH3: httpchecksum.CrtXxhash3Checksum,
    ChecksumAlgorithm.XXHASH128: httpchecksum.CrtXxhash128Checksum,
}
CRCS = [ChecksumAlgorithm.CRC32, ChecksumAlgorithm.CRC32C, ChecksumAlgorithm.CRC64NVME]


def _model_enum(shape: str) -> list[str]:
    model = botocore.session.get_session().get_service_model("s3")
    return list(model.shape_for(shape).enum)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    ("alg", "check"),
    [
        # The catalogue's check values: the CRC of b"123456789".
        (ChecksumAlgorithm.CRC32, 0xCBF43926),
        (ChecksumAlgorithm.CRC32C, 0xE3069283),
        (ChecksumAlgorithm.CRC64NVME, 0xAE8B14860A799888),
    ],
)
def test_crc_check_values(alg: ChecksumAlgorithm, check: int) -> None:
    summer = Checksummer(alg)
    summer.update(b"123456789")
    assert summer.digest() == check.to_bytes(alg.digest_bytes, "big")


@pytest.mark.parametrize(
    ("alg", "empty_hex"),
    [
        # xxHash's published digests of no input (seed 0), big-endian as S3 carries them.
        (ChecksumAlgorithm.XXHASH64, "ef46db3751d8e999"),
        (ChecksumAlgorithm.XXHASH3, "2d06800538d394c2"),
        (ChecksumAlgorithm.XXHASH128, "99aa06d3014798d86001c324468d497f"),
        (ChecksumAlgorithm.MD5, "d41d8cd98f00b204e9800998ecf8427e"),
    ],
)
def test_new_algorithms_check_values(alg: ChecksumAlgorithm, empty_hex: str) -> None:
    assert Checksummer(alg).digest().hex() == empty_hex
    assert len(bytes.fromhex(empty_hex)) == alg.digest_bytes


@pytest.mark.parametrize("alg", list(ChecksumAlgorithm))
def test_matches_botocore_streaming(alg: ChecksumAlgorithm) -> None:
    seed = 11
    print(f"seed={seed}")
    data = random.Random(seed).randbytes(300_001)
    summer = Checksummer(alg)
    view = memoryview(data)
    for start in range(0, len(data), 65_537):
        summer.update(view[start:start + 65_537])
    assert summer.b64() == BOTOCORE[alg]().handle(data)
    assert checksum_b64(alg, b"") == BOTOCORE[alg]().handle(b"")
    assert len(summer.digest()) == alg.digest_bytes


def test_names() -> None:
    assert algorithm_from_header_name("X-Amz-Checksum-CRC64NVME") is ChecksumAlgorithm.CRC64NVME
    assert algorithm_from_header_name("x-amz-checksum-md5") is ChecksumAlgorithm.MD5
    assert algorithm_from_header_name("x-amz-checksum-xxhash128") is ChecksumAlgorithm.XXHASH128
    assert algorithm_from_header_name("x-amz-checksum-blake3") is None
    assert algorithm_from_header_name("x-amz-checksum-mode") is None
    assert algorithm_from_aws_name("crc32c") is ChecksumAlgorithm.CRC32C
    assert algorithm_from_aws_name("XXHASH3") is ChecksumAlgorithm.XXHASH3
    assert algorithm_from_aws_name("BLAKE3") is None
    assert {a.aws_name for a in ChecksumAlgorithm} == set(_model_enum("ChecksumAlgorithm"))
    assert ChecksumAlgorithm.SHA1.header_name == "x-amz-checksum-sha1"


# ------------------------------------------------------------ request declarations


def test_header_checksum_declared() -> None:
    value = checksum_b64(ChecksumAlgorithm.CRC32, b"x")
    found = request_checksums({"X-Amz-Checksum-Crc32": value,
                               "x-amz-sdk-checksum-algorithm": "CRC32",
                               "x-amz-checksum-mode": "ENABLED"})
    assert found.algorithm is ChecksumAlgorithm.CRC32
    assert found.value_b64 == value and not found.in_trailer and found.content_md5 is None


def test_trailer_checksum_declared() -> None:
    found = request_checksums({"x-amz-trailer": "x-amz-checksum-crc64nvme",
                               "x-amz-sdk-checksum-algorithm": "CRC64NVME"})
    assert found.algorithm is ChecksumAlgorithm.CRC64NVME
    assert found.in_trailer and found.value_b64 is None


def test_nothing_declared() -> None:
    found = request_checksums({"content-type": "text/plain"})
    assert found.algorithm is None and found.checksum_type is None


def test_multipart_upload_algorithm() -> None:
    found = request_checksums({"x-amz-checksum-algorithm": "SHA256",
                               "x-amz-checksum-type": "COMPOSITE"})
    assert found.algorithm is ChecksumAlgorithm.SHA256
    assert found.checksum_type is ChecksumType.COMPOSITE and found.value_b64 is None
    with pytest.raises(errors.InvalidRequest, match="unsupported"):
        request_checksums({"x-amz-checksum-algorithm": "BLAKE3"})
    assert request_checksums({"x-amz-checksum-algorithm": "sha512"}).algorithm is (
        ChecksumAlgorithm.SHA512)


def test_content_md5_and_type() -> None:
    md5 = hashlib.md5(b"x").digest()
    found = request_checksums({"Content-MD5": b64(md5), "x-amz-checksum-type": "full_object"})
    assert found.content_md5 == md5 and found.checksum_type is ChecksumType.FULL_OBJECT
    with pytest.raises(errors.InvalidDigest):
        request_checksums({"Content-MD5": "nope"})
    with pytest.raises(errors.InvalidDigest):
        request_checksums({"Content-MD5": b64(b"short")})
    with pytest.raises(errors.InvalidRequest):
        request_checksums({"x-amz-checksum-type": "BOTH"})


@pytest.mark.parametrize(
    "headers",
    [
        {"x-amz-checksum-crc32": "!!!!"},
        {"x-amz-checksum-crc32": b64(b"12345")},
        {"x-amz-checksum-sha256": b64(b"1" * 31)},
        {"x-amz-checksum-crc32": "AAAAAA"},
        {"x-amz-checksum-crc32": "AAAAAA==", "x-amz-checksum-crc32c": "AAAAAA=="},
        {"x-amz-checksum-blake3": b64(b"1" * 32)},
        {"x-amz-checksum-xxhash128": b64(b"1" * 8)},
        {"x-amz-sdk-checksum-algorithm": "CRC32"},
        {"x-amz-sdk-checksum-algorithm": "MD5", "x-amz-checksum-crc32": "AAAAAA=="},
        {"x-amz-sdk-checksum-algorithm": "CRC32C", "x-amz-checksum-crc32": "AAAAAA=="},
        {"x-amz-trailer": "x-amz-checksum-blake3"},
        {"x-amz-trailer": "x-amz-checksum-crc32,x-amz-checksum-sha1"},
        {"x-amz-trailer": "x-amz-checksum-crc32", "x-amz-checksum-sha1": b64(b"1" * 20)},
    ],
)
def test_invalid_declarations(headers: dict[str, str]) -> None:
    with pytest.raises(errors.InvalidRequest):
        request_checksums(headers)


def test_verify() -> None:
    alg = ChecksumAlgorithm.CRC32C
    good = checksum_b64(alg, b"body")
    verify(alg, good, good)
    with pytest.raises(errors.BadDigest, match="CRC32C"):
        verify(alg, checksum_b64(alg, b"other"), good)
    verify_md5(b"1" * 16, b"1" * 16)
    with pytest.raises(errors.BadDigest):
        verify_md5(b"1" * 16, b"2" * 16)


# ------------------------------------------------------------ multipart


@pytest.mark.parametrize("alg", list(ChecksumAlgorithm))
def test_composite_is_checksum_of_part_digests(alg: ChecksumAlgorithm) -> None:
    parts = [b"a" * 100, b"b" * 7, b""]
    part_b64 = [BOTOCORE[alg]().handle(p) for p in parts]
    raw = b"".join(base64.b64decode(v) for v in part_b64)
    assert composite_checksum(alg, part_b64) == f"{BOTOCORE[alg]().handle(raw)}-3"
    with pytest.raises(errors.InvalidRequest):
        composite_checksum(alg, ["garbage"])


@pytest.mark.parametrize("alg", CRCS)
@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=8),
       seed=st.integers(min_value=0, max_value=2**32))
def test_combined_crc_equals_whole_object_crc(
    alg: ChecksumAlgorithm, sizes: list[int], seed: int
) -> None:
    rng = random.Random(seed)
    parts = [rng.randbytes(n) for n in sizes]
    combined = combine_crc(alg, [(checksum_b64(alg, p), len(p)) for p in parts])
    assert combined == BOTOCORE[alg]().handle(b"".join(parts))


def test_combine_crc_refuses_hashes_and_garbage() -> None:
    with pytest.raises(errors.InvalidRequest):
        combine_crc(ChecksumAlgorithm.SHA256, [(checksum_b64(ChecksumAlgorithm.SHA256, b""), 0)])
    with pytest.raises(errors.InvalidRequest):
        combine_crc(ChecksumAlgorithm.CRC32, [("AAAA", 1)])
