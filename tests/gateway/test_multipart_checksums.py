"""The multipart checksum rules (gateway/multipart_checksums.py), without a cluster."""

from __future__ import annotations

import msgpack
import pytest

from gateway import errors
from gateway.checksums import (
    ChecksumAlgorithm,
    ChecksumType,
    checksum_b64,
    request_checksums,
)
from gateway.manifest import Manifest
from gateway.multipart_checksums import (
    DEFAULT_UPLOAD,
    Listed,
    UploadChecksum,
    at_create,
    check_declared,
    check_part,
    declared_object_checksum,
    listed,
    object_checksum,
    part_algorithm,
)

CRC32, SHA256 = ChecksumAlgorithm.CRC32, ChecksumAlgorithm.SHA256
CRC64NVME = ChecksumAlgorithm.CRC64NVME
COMPOSITE_SHA256 = UploadChecksum(SHA256, ChecksumType.COMPOSITE)
FULL_CRC32 = UploadChecksum(CRC32, ChecksumType.FULL_OBJECT)
NONE = UploadChecksum(None, None)


def _create(**headers: str) -> UploadChecksum:
    return at_create(request_checksums(headers))


def test_create_defaults_and_refusals() -> None:
    assert _create() == DEFAULT_UPLOAD
    assert DEFAULT_UPLOAD.algorithm is CRC64NVME and DEFAULT_UPLOAD.asked is None
    assert at_create(request_checksums({}), sse_customer=True) == NONE
    assert _create(**{"x-amz-checksum-algorithm": "sha256"}) == COMPOSITE_SHA256
    assert _create(**{"x-amz-checksum-algorithm": "CRC64NVME"}).kind is ChecksumType.FULL_OBJECT
    for bad in ({"x-amz-checksum-type": "COMPOSITE"},
                {"x-amz-checksum-algorithm": "SHA1", "x-amz-checksum-type": "FULL_OBJECT"},
                {"x-amz-checksum-algorithm": "CRC64NVME", "x-amz-checksum-type": "COMPOSITE"}):
        with pytest.raises(errors.InvalidRequest):
            _create(**bad)


def test_stored_names_read_back() -> None:
    assert UploadChecksum.stored("", "") == NONE
    assert UploadChecksum.stored("", "", default=True) == DEFAULT_UPLOAD
    assert UploadChecksum.stored("SHA256", "") == COMPOSITE_SHA256      # an older record
    assert UploadChecksum.stored("CRC32", "FULL_OBJECT") == FULL_CRC32


def test_part_algorithm() -> None:
    assert part_algorithm(NONE, None) is None and part_algorithm(NONE, CRC32) is CRC32
    assert part_algorithm(COMPOSITE_SHA256, SHA256) is SHA256
    assert part_algorithm(FULL_CRC32, None) is CRC32        # computed by the gateway
    for upload, declared, actual in ((COMPOSITE_SHA256, None, "null"),
                                     (COMPOSITE_SHA256, CRC32, "crc32"),
                                     (FULL_CRC32, SHA256, "sha256")):
        with pytest.raises(errors.InvalidRequest) as exc:
            part_algorithm(upload, declared)
        assert exc.value.message.endswith(f"actual checksum Type: {actual}")


def test_listed_checksums() -> None:
    good = checksum_b64(CRC32, b"x")
    assert listed({}) is None
    assert listed({CRC32: good}) == Listed(CRC32, good)
    for values, shown in (({CRC32: "AAAA"}, "CRC32:AAAA;"),
                          ({SHA256: "x", CRC32: good}, f"CRC32:{good};SHA256:x;")):
        with pytest.raises(errors.InvalidArgument) as exc:
            listed(values)
        assert exc.value.extra == {"ArgumentName": "Checksum", "ArgumentValue": shown}


def test_check_part() -> None:
    value = checksum_b64(SHA256, b"part")
    assert check_part(COMPOSITE_SHA256, 1, Listed(SHA256, value), value)
    assert not check_part(COMPOSITE_SHA256, 1, Listed(SHA256, checksum_b64(SHA256, b"")),
                          value)
    assert check_part(FULL_CRC32, 1, None, "whatever")
    assert check_part(NONE, 1, None, "") and not check_part(NONE, 1, Listed(CRC32, "x"), "x")
    with pytest.raises(errors.InvalidRequest):
        check_part(COMPOSITE_SHA256, 2, None, value)
    with pytest.raises(errors.BadDigest):
        check_part(COMPOSITE_SHA256, 2, Listed(CRC32, checksum_b64(CRC32, b"")), value)


def test_declared_object_checksum() -> None:
    sums = [(checksum_b64(SHA256, b"a"), 1), (checksum_b64(SHA256, b"b"), 1)]
    whole = object_checksum(COMPOSITE_SHA256, sums)["SHA256"]
    assert whole.endswith("-2")
    header = {"X-Amz-Checksum-Sha256": whole}
    assert declared_object_checksum(header, COMPOSITE_SHA256) == whole
    assert declared_object_checksum(header, NONE) is None
    check_declared(COMPOSITE_SHA256, whole, whole)
    check_declared(COMPOSITE_SHA256, whole[:-2], whole)
    with pytest.raises(errors.BadDigest):
        check_declared(COMPOSITE_SHA256, whole[:-1] + "3", whole)
    for bad in (whole[:-2] + "-a", "AAAA"):
        with pytest.raises(errors.InvalidRequest):
            declared_object_checksum({"x-amz-checksum-sha256": bad}, COMPOSITE_SHA256)
    # A FULL_OBJECT value has no "-N" to take.
    with pytest.raises(errors.InvalidRequest):
        declared_object_checksum({"x-amz-checksum-crc32": "AAAAAA==-1"}, FULL_CRC32)


def test_manifest_keeps_part_checksums_and_old_records_read() -> None:
    m = Manifest(10, '"e-2"', 1, checksums={"SHA256": "x-2"}, part_sizes=(5, 5),
                 part_checksums=("a", "b"))
    raw = m.encode()
    assert Manifest.decode(raw) == m and len(msgpack.unpackb(raw)) == 24
    # Written before the field (any tail length up to the KMS group): none recorded.
    for n in (12, 23):
        old = msgpack.unpackb(raw)[:n]
        assert Manifest.decode(msgpack.packb(old)).part_checksums == ()


def test_the_default_upload_checksum() -> None:
    """Parts always carry the CRC64NVME (besides any they declare); Complete lists none and
    its header is not checked (none was asked for); the object's is the parts' combined."""
    assert part_algorithm(DEFAULT_UPLOAD, None) is CRC64NVME
    assert part_algorithm(DEFAULT_UPLOAD, SHA256) is CRC64NVME
    value = checksum_b64(CRC64NVME, b"part")
    assert check_part(DEFAULT_UPLOAD, 1, None, value)
    assert not check_part(DEFAULT_UPLOAD, 1, Listed(CRC64NVME, value), value)
    assert declared_object_checksum({"x-amz-checksum-crc64nvme": value}, DEFAULT_UPLOAD) is None
    parts = [(checksum_b64(CRC64NVME, b"ab"), 2), (checksum_b64(CRC64NVME, b"cde"), 3)]
    assert object_checksum(DEFAULT_UPLOAD, parts) == {
        "CRC64NVME": checksum_b64(CRC64NVME, b"abcde")}
    # A part stored before the default (none, or another algorithm's): no object checksum.
    assert object_checksum(DEFAULT_UPLOAD, [parts[0], ("", 3)]) == {}
    assert object_checksum(DEFAULT_UPLOAD, [parts[0], (checksum_b64(CRC32, b"c"), 1)]) == {}


@pytest.mark.parametrize("alg", [ChecksumAlgorithm.SHA512, ChecksumAlgorithm.MD5,
                                 ChecksumAlgorithm.XXHASH64, ChecksumAlgorithm.XXHASH3,
                                 ChecksumAlgorithm.XXHASH128])
def test_the_2025_algorithms_are_composite_only(alg: ChecksumAlgorithm) -> None:
    """AWS: full-object checksums of a multipart upload are for the CRCs alone (they
    linearize); SHA-512, MD5 and the xxHashes are COMPOSITE."""
    name = alg.aws_name
    assert _create(**{"x-amz-checksum-algorithm": name}) == UploadChecksum(
        alg, ChecksumType.COMPOSITE)
    with pytest.raises(errors.InvalidRequest) as exc:
        _create(**{"x-amz-checksum-algorithm": name, "x-amz-checksum-type": "FULL_OBJECT"})
    assert exc.value.message == (f"The FULL_OBJECT checksum type cannot be used with the "
                                 f"{alg.value} checksum algorithm.")
    upload = UploadChecksum(alg, ChecksumType.COMPOSITE)
    sums = [(checksum_b64(alg, b"a"), 1), (checksum_b64(alg, b"b"), 1)]
    whole = object_checksum(upload, sums)[name]
    assert whole.endswith("-2") and declared_object_checksum(
        {alg.header_name: whole.rsplit("-", 1)[0]}, upload) == whole.rsplit("-", 1)[0]


def test_manifests_name_any_algorithm_and_older_ones_read_alike() -> None:
    """A manifest names its checksums by AWS's names (strings, never numbers): the new
    algorithms need no new field, and a record written before them reads as it did."""
    new = Manifest(3, '"e"', 1, checksums={"XXHASH128": checksum_b64(
        ChecksumAlgorithm.XXHASH128, b"abc")})
    assert Manifest.decode(new.encode()) == new
    old = [2, 3, '"e"', 1, {}, {}, b"abc", [], [], {"CRC64NVME": "AAAAAAAAAAA="}, [], []]
    assert Manifest.decode(msgpack.packb(old, use_bin_type=True)).checksums == {
        "CRC64NVME": "AAAAAAAAAAA="}
