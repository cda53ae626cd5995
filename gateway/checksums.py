"""S3 additional checksums: CRC32, CRC32C, CRC64NVME, SHA1, SHA256, and the five AWS added
in 2025, SHA512, MD5, XXHASH64, XXHASH3 and XXHASH128 (and Content-MD5).

Pure: streaming digests, the parsing of what a request declares, and the multipart
arithmetic (composite "checksum of checksums" and full-object CRC combination).

Rules:
- the CRCs come from awscrt, the library botocore itself uses, so both ends agree bit for
  bit; SHA and MD5 from hashlib; the xxHashes from xxhash (xxh64, xxh3_64, xxh3_128, seed
  0, their canonical big-endian digests: what awscrt's XXHash, botocore's, finalizes);
- only the CRCs combine into a FULL_OBJECT checksum of a multipart upload; the others are
  COMPOSITE there;
- values travel as base64 of the big-endian digest, exactly as S3 headers carry them;
- a request declares at most one checksum (header or trailer); anything malformed is an
  InvalidRequest (InvalidDigest for Content-MD5) with AWS's wording, before any byte is
  stored;
- an object written without one gets a DEFAULT_ALGORITHM checksum of its bytes, as AWS has
  given every new object since early 2025 (its "default data integrity protections").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

import xxhash
from awscrt import checksums as crt

from gateway import errors

CHECKSUM_HEADER_PREFIX = "x-amz-checksum-"
SDK_ALGORITHM_HEADER = "x-amz-sdk-checksum-algorithm"
TRAILER_HEADER = "x-amz-trailer"
CHECKSUM_TYPE_HEADER = "x-amz-checksum-type"
UPLOAD_ALGORITHM_HEADER = "x-amz-checksum-algorithm"   # CreateMultipartUpload


class ChecksumAlgorithm(Enum):
    CRC32 = "crc32"
    CRC32C = "crc32c"
    CRC64NVME = "crc64nvme"
    SHA1 = "sha1"
    SHA256 = "sha256"
    SHA512 = "sha512"
    MD5 = "md5"
    XXHASH64 = "xxhash64"
    XXHASH3 = "xxhash3"
    XXHASH128 = "xxhash128"

    @property
    def header_name(self) -> str:
        return CHECKSUM_HEADER_PREFIX + self.value

    @property
    def digest_bytes(self) -> int:
        return _DIGEST_BYTES[self]

    @property
    def is_crc(self) -> bool:
        return self in _CRC_UPDATE

    @property
    def aws_name(self) -> str:
        """The name in XML and x-amz-sdk-checksum-algorithm: CRC32, SHA256, ..."""
        return self.name


class ChecksumType(Enum):
    """How a multipart upload's checksum is made (x-amz-checksum-type)."""

    COMPOSITE = "COMPOSITE"
    FULL_OBJECT = "FULL_OBJECT"


# What AWS stores for an object written without a checksum (PutObject, CopyObject, POST):
# a full-object CRC64NVME, shown on GET/HEAD with checksum mode and in listings.
DEFAULT_ALGORITHM = ChecksumAlgorithm.CRC64NVME

_DIGEST_BYTES = {
    ChecksumAlgorithm.CRC32: 4,
    ChecksumAlgorithm.CRC32C: 4,
    ChecksumAlgorithm.CRC64NVME: 8,
    ChecksumAlgorithm.SHA1: 20,
    ChecksumAlgorithm.SHA256: 32,
    ChecksumAlgorithm.SHA512: 64,
    ChecksumAlgorithm.MD5: 16,
    ChecksumAlgorithm.XXHASH64: 8,
    ChecksumAlgorithm.XXHASH3: 8,
    ChecksumAlgorithm.XXHASH128: 16,
}
_CRC_UPDATE: dict[ChecksumAlgorithm, Callable[[bytes | memoryview, int], int]] = {
    ChecksumAlgorithm.CRC32: crt.crc32,
    ChecksumAlgorithm.CRC32C: crt.crc32c,
    ChecksumAlgorithm.CRC64NVME: crt.crc64nvme,
}
_CRC_COMBINE: dict[ChecksumAlgorithm, Callable[[int, int, int], int]] = {
    ChecksumAlgorithm.CRC32: crt.combine_crc32,
    ChecksumAlgorithm.CRC32C: crt.combine_crc32c,
    ChecksumAlgorithm.CRC64NVME: crt.combine_crc64nvme,
}


class _Hash(Protocol):
    """What hashlib's and xxhash's objects have in common."""

    def update(self, data: bytes | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


_HASH_NEW: dict[ChecksumAlgorithm, Callable[[], _Hash]] = {
    ChecksumAlgorithm.SHA1: hashlib.sha1,
    ChecksumAlgorithm.SHA256: hashlib.sha256,
    ChecksumAlgorithm.SHA512: hashlib.sha512,
    # An integrity check, not a security one (FIPS builds refuse MD5 otherwise).
    ChecksumAlgorithm.MD5: lambda: hashlib.md5(usedforsecurity=False),
    ChecksumAlgorithm.XXHASH64: xxhash.xxh64,
    ChecksumAlgorithm.XXHASH3: xxhash.xxh3_64,
    ChecksumAlgorithm.XXHASH128: xxhash.xxh3_128,
}
assert set(_CRC_UPDATE) | set(_HASH_NEW) == set(ChecksumAlgorithm) == set(_DIGEST_BYTES)
_BY_HEADER = {alg.header_name: alg for alg in ChecksumAlgorithm}
_BY_AWS_NAME = {alg.aws_name: alg for alg in ChecksumAlgorithm}


def algorithm_from_header_name(name: str) -> ChecksumAlgorithm | None:
    """x-amz-checksum-crc32 (any case) -> CRC32; None for any other header."""
    return _BY_HEADER.get(name.strip().lower())


def algorithm_from_aws_name(name: str) -> ChecksumAlgorithm | None:
    """CRC32 / crc32 (as in x-amz-sdk-checksum-algorithm or XML) -> CRC32."""
    return _BY_AWS_NAME.get(name.strip().upper())


class Checksummer:
    """Streaming digest of one algorithm."""

    def __init__(self, alg: ChecksumAlgorithm) -> None:
        self.alg = alg
        self._crc = 0
        self._crc_update = _CRC_UPDATE.get(alg)
        self._hash = None if self._crc_update else _HASH_NEW[alg]()

    def update(self, data: bytes | memoryview) -> None:
        if self._crc_update is not None:
            self._crc = self._crc_update(data, self._crc)
        else:
            assert self._hash is not None
            self._hash.update(data)

    def digest(self) -> bytes:
        if self._hash is not None:
            return self._hash.digest()
        return self._crc.to_bytes(self.alg.digest_bytes, "big")

    def b64(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")


def checksum_b64(alg: ChecksumAlgorithm, data: bytes | memoryview) -> str:
    summer = Checksummer(alg)
    summer.update(data)
    return summer.b64()


def checksum_type_of(value_b64: str) -> ChecksumType:
    """How a stored value was made: "-N" (never in base64) marks a checksum of N part
    checksums; anything else covers the whole object, as every single PUT's does."""
    return ChecksumType.COMPOSITE if "-" in value_b64 else ChecksumType.FULL_OBJECT


# ---------------------------------------------------------------- what a request declares


@dataclass(frozen=True)
class RequestChecksums:
    # The one to compute, verify and store; for CreateMultipartUpload, the one its parts use
    # (x-amz-checksum-algorithm).
    algorithm: ChecksumAlgorithm | None
    value_b64: str | None                 # from a header; None when absent or in a trailer
    in_trailer: bool                      # the value arrives in the aws-chunked trailers
    content_md5: bytes | None             # decoded Content-MD5, to check against the body
    checksum_type: ChecksumType | None    # x-amz-checksum-type (CreateMultipartUpload)


def decode_b64_digest(value: str, expected_bytes: int) -> bytes | None:
    """The digest, or None when `value` is not canonical base64 of that many bytes."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == expected_bytes else None


def _invalid(header: str) -> errors.S3Error:
    return errors.InvalidRequest(f"Value for {header} header is invalid.")


def _header_checksum(headers: Mapping[str, str]) -> tuple[ChecksumAlgorithm, str] | None:
    found = []
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith(CHECKSUM_HEADER_PREFIX) or lower in (
            CHECKSUM_TYPE_HEADER, UPLOAD_ALGORITHM_HEADER, "x-amz-checksum-mode",
        ):
            continue
        alg = algorithm_from_header_name(lower)
        if alg is None:
            raise errors.InvalidRequest(
                f"The algorithm type you specified in {lower} header is invalid."
            )
        if decode_b64_digest(value, alg.digest_bytes) is None:
            raise _invalid(lower)
        found.append((alg, value.strip()))
    if len(found) > 1:
        raise errors.InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    return found[0] if found else None


def _trailer_checksum(headers: Mapping[str, str]) -> ChecksumAlgorithm | None:
    declared = _get(headers, TRAILER_HEADER)
    if declared is None:
        return None
    names = [n.strip().lower() for n in declared.split(",") if n.strip()]
    algs = [algorithm_from_header_name(n) for n in names]
    if any(a is None for a in algs):
        raise errors.InvalidRequest(
            "The value specified in the x-amz-trailer header is not supported"
        )
    if len(algs) > 1:
        raise errors.InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    return algs[0] if algs else None


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, found in headers.items():
        if key.lower() == name:
            return found
    return None


def _content_md5(headers: Mapping[str, str]) -> bytes | None:
    value = _get(headers, "content-md5")
    if value is None:
        return None
    digest = decode_b64_digest(value, 16)
    if digest is None:
        raise errors.InvalidDigest(**{"Content-MD5": value})   # AWS names what it was given
    return digest


def _checksum_type(headers: Mapping[str, str]) -> ChecksumType | None:
    value = _get(headers, CHECKSUM_TYPE_HEADER)
    if value is None:
        return None
    try:
        return ChecksumType(value.strip().upper())
    except ValueError:
        raise _invalid(CHECKSUM_TYPE_HEADER) from None


def asked_algorithm(headers: Mapping[str, str]) -> ChecksumAlgorithm | None:
    """x-amz-checksum-algorithm (CreateMultipartUpload, CopyObject): the algorithm the
    request asks the store to compute."""
    value = _get(headers, UPLOAD_ALGORITHM_HEADER)
    if value is None:
        return None
    if "," in value:
        raise errors.InvalidRequest(
            f"Invalid types are specified in {UPLOAD_ALGORITHM_HEADER} header.")
    alg = algorithm_from_aws_name(value)
    if alg is None:
        # AWS's list, which leaves out the CRC64NVME it accepts.
        raise errors.InvalidRequest(
            "Checksum algorithm provided is unsupported. Please try again with any of the "
            "valid types: [CRC32, CRC32C, SHA1, SHA256]"
        )
    return alg


def request_checksums(headers: Mapping[str, str]) -> RequestChecksums:
    """Which checksum a request declares, from its headers; refuses what AWS refuses."""
    in_header = _header_checksum(headers)
    in_trailer = _trailer_checksum(headers)
    if in_header and in_trailer:
        raise errors.InvalidRequest(
            "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
        )
    alg = in_header[0] if in_header else in_trailer
    upload_alg = asked_algorithm(headers)
    if upload_alg is not None:
        if alg is not None and alg is not upload_alg:
            raise _invalid(UPLOAD_ALGORITHM_HEADER)
        alg = upload_alg
    sdk_value = _get(headers, SDK_ALGORITHM_HEADER)
    if sdk_value is not None:
        sdk = algorithm_from_aws_name(sdk_value)
        if sdk is None:
            raise _invalid(SDK_ALGORITHM_HEADER)
        if alg is None:
            raise errors.InvalidRequest(
                "x-amz-sdk-checksum-algorithm specified, but no corresponding "
                "x-amz-checksum-* or x-amz-trailer headers were found."
            )
        if sdk is not alg:
            raise _invalid(SDK_ALGORITHM_HEADER)
    return RequestChecksums(
        algorithm=alg,
        value_b64=in_header[1] if in_header else None,
        in_trailer=in_trailer is not None,
        content_md5=_content_md5(headers),
        checksum_type=_checksum_type(headers),
    )


def verify(alg: ChecksumAlgorithm, expected_b64: str, actual_b64: str) -> None:
    """BadDigest when a declared checksum does not match the body's."""
    expected = decode_b64_digest(expected_b64, alg.digest_bytes)
    if expected is None:
        raise _invalid(alg.header_name)
    if expected != base64.b64decode(actual_b64):
        raise errors.BadDigest(
            f"The {alg.aws_name} you specified did not match the calculated checksum."
        )


def verify_md5(expected: bytes, actual: bytes) -> None:
    if expected != actual:
        raise errors.BadDigest("The Content-MD5 you specified did not match what we received.")


# ---------------------------------------------------------------- multipart


def composite_checksum(alg: ChecksumAlgorithm, part_checksums_b64: Sequence[str]) -> str:
    """AWS's COMPOSITE checksum: the checksum of the parts' raw digests, then "-N"."""
    summer = Checksummer(alg)
    for value in part_checksums_b64:
        digest = decode_b64_digest(value, alg.digest_bytes)
        if digest is None:
            raise _invalid(alg.header_name)
        summer.update(digest)
    return f"{summer.b64()}-{len(part_checksums_b64)}"


def combine_crc(alg: ChecksumAlgorithm, crcs_and_lengths: Sequence[tuple[str, int]]) -> str:
    """FULL_OBJECT checksum of a multipart upload: its parts' CRCs combined, as if the
    whole object had been read at once (CRC(A||B) from CRC(A), CRC(B) and len(B))."""
    combine = _CRC_COMBINE.get(alg)
    if combine is None:
        raise errors.InvalidRequest(
            f"The FULL_OBJECT checksum type is not supported for {alg.aws_name}."
        )
    total = 0
    for index, (value, length) in enumerate(crcs_and_lengths):
        digest = decode_b64_digest(value, alg.digest_bytes)
        if digest is None or length < 0:
            raise _invalid(alg.header_name)
        crc = int.from_bytes(digest, "big")
        total = crc if index == 0 else combine(total, crc, length)
    return base64.b64encode(total.to_bytes(alg.digest_bytes, "big")).decode("ascii")
