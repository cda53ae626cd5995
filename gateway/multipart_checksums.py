"""The additional checksum of a multipart upload, from CreateMultipartUpload to Complete.

Pure: what each step must declare and what it may repeat, with AWS's errors and wording.

Rules (as AWS answers them):
- Create names the algorithm (x-amz-checksum-algorithm) and how the object's checksum is
  made (x-amz-checksum-type): COMPOSITE, the checksum of the parts' checksums with a "-N"
  suffix, or FULL_OBJECT, the parts' CRCs combined as if the object had been read at once.
  A type needs an algorithm; FULL_OBJECT needs a CRC; CRC64NVME is always FULL_OBJECT.
- every UploadPart of such an upload carries a checksum of that algorithm, or none when the
  type is FULL_OBJECT (the gateway then computes it);
- Complete repeats each part's checksum when the type is COMPOSITE (it may for FULL_OBJECT),
  and may declare the object's checksum in an x-amz-checksum-* header, which is verified;
- an upload created without an algorithm gets AWS's default instead: a FULL_OBJECT
  CRC64NVME of the object (Complete's answer, GET/HEAD with checksum mode,
  GetObjectAttributes, listings), combined from the CRC64NVME each part carries (computed
  here whatever else a part declares, and answered by an UploadPart that declares none).
  The client asked for no algorithm, so the upload names none (Create, ListParts,
  ListMultipartUploads), ListParts shows no part checksums, Complete may list none (a
  listed one is InvalidPart) and its object checksum header is not checked, and the
  object keeps no part checksums (AWS lists none for a FULL_OBJECT object). An SSE-C
  upload gets no default (AWS computes none for one); nor does an upload recorded before
  the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway import errors
from gateway.checksums import (
    CHECKSUM_TYPE_HEADER,
    DEFAULT_ALGORITHM,
    UPLOAD_ALGORITHM_HEADER,
    ChecksumAlgorithm,
    ChecksumType,
    RequestChecksums,
    algorithm_from_aws_name,
    combine_crc,
    composite_checksum,
    decode_b64_digest,
)

# A composite value: base64 of the digest of digests, "-", the number of parts.
_COMPOSITE = re.compile(r"^(?P<digest>[A-Za-z0-9+/=]+)-(?P<count>[0-9]+)$")


@dataclass(frozen=True)
class UploadChecksum:
    """An upload's checksum algorithm and type; both None for an upload without one.
    `default`: the client asked for none, and these are AWS's default (DEFAULT_UPLOAD)."""

    algorithm: ChecksumAlgorithm | None
    kind: ChecksumType | None
    default: bool = False

    @classmethod
    def stored(cls, alg_name: str, type_name: str, default: bool = False) -> UploadChecksum:
        """From the upload record's names ("" = none; an old record's type defaults) and
        its flag of the default checksum (False in records written before it)."""
        alg = algorithm_from_aws_name(alg_name) if alg_name else None
        if alg is None:
            return DEFAULT_UPLOAD if default else NO_CHECKSUM
        return cls(alg, ChecksumType(type_name) if type_name else _default_type(alg))

    @property
    def composite(self) -> bool:
        return self.kind is ChecksumType.COMPOSITE

    @property
    def asked(self) -> ChecksumAlgorithm | None:
        """The algorithm the client chose at Create (None for the default's)."""
        return None if self.default else self.algorithm


NO_CHECKSUM = UploadChecksum(None, None)
# AWS's default data integrity protection for an upload created without an algorithm.
DEFAULT_UPLOAD = UploadChecksum(DEFAULT_ALGORITHM, ChecksumType.FULL_OBJECT, default=True)


def _default_type(alg: ChecksumAlgorithm) -> ChecksumType:
    return ChecksumType.FULL_OBJECT if alg is ChecksumAlgorithm.CRC64NVME \
        else ChecksumType.COMPOSITE


def at_create(declared: RequestChecksums, sse_customer: bool = False) -> UploadChecksum:
    """CreateMultipartUpload's algorithm and type, or AWS's InvalidRequest; AWS's default
    when the request names none (none for an SSE-C upload)."""
    alg, kind = declared.algorithm, declared.checksum_type
    if alg is None:
        if kind is not None:
            raise errors.InvalidRequest(
                f"The {CHECKSUM_TYPE_HEADER} header can only be used with the "
                f"{UPLOAD_ALGORITHM_HEADER} header.")
        return NO_CHECKSUM if sse_customer else DEFAULT_UPLOAD
    kind = kind or _default_type(alg)
    if (kind is ChecksumType.FULL_OBJECT and not alg.is_crc) or (
            kind is ChecksumType.COMPOSITE and alg is ChecksumAlgorithm.CRC64NVME):
        raise errors.InvalidRequest(f"The {kind.value} checksum type cannot be used with "
                                    f"the {alg.value} checksum algorithm.")
    return UploadChecksum(alg, kind)


def part_algorithm(upload: UploadChecksum, declared: ChecksumAlgorithm | None
                   ) -> ChecksumAlgorithm | None:
    """The algorithm an UploadPart's checksum is computed (and stored) with: the upload's.
    A part declaring another is refused before its body is read, and so is one declaring
    none when the upload's checksum is COMPOSITE (a FULL_OBJECT one is computed here). A
    part of an upload with the default may declare any (it is checked, and the default
    computed besides)."""
    if upload.algorithm is None:
        return declared
    if upload.default:
        return upload.algorithm
    if declared is not upload.algorithm and (declared is not None or upload.composite):
        actual = declared.value if declared is not None else "null"
        raise errors.InvalidRequest(
            "Checksum Type mismatch occurred, expected checksum Type: "
            f"{upload.algorithm.value}, actual checksum Type: {actual}")
    return upload.algorithm


# ---------------------------------------------------------------- CompleteMultipartUpload


@dataclass(frozen=True)
class Listed:
    """The checksum a Complete request lists for one part."""

    algorithm: ChecksumAlgorithm
    value: str


def listed(values: Mapping[ChecksumAlgorithm, str]) -> Listed | None:
    """A part's Checksum* elements: none, or exactly one valid base64 digest."""
    if not values:
        return None
    if len(values) == 1:
        ((alg, value),) = values.items()
        if decode_b64_digest(value, alg.digest_bytes) is not None:
            return Listed(alg, value)
    shown = "".join(f"{a.aws_name}:{values[a]};" for a in ChecksumAlgorithm if a in values)
    raise errors.InvalidArgument("Invalid Base64 or multiple checksums present in request",
                                 ArgumentName="Checksum", ArgumentValue=shown)


def check_part(upload: UploadChecksum, number: int, given: Listed | None,
               stored: str) -> bool:
    """One listed part's checksum against the part's own: False when they differ (the
    caller's InvalidPart); AWS's other errors raised."""
    alg = upload.asked
    if alg is None:
        return given is None        # nothing was tracked: a listed checksum matches nothing
    if given is None:
        if upload.composite:
            raise errors.InvalidRequest(
                f"The upload was created using a {alg.value} checksum. The complete request "
                f"must include the checksum for each part. It was missing for part {number} "
                "in the request.")
        return True
    if given.algorithm is not alg:
        raise errors.BadDigest(f"The {given.algorithm.value} you specified for part {number} "
                               "did not match what we received.")
    return given.value == stored


def declared_object_checksum(headers: Mapping[str, str], upload: UploadChecksum
                             ) -> str | None:
    """The object's checksum a Complete request declares in the upload's algorithm's
    header (a composite one with or without its "-N"); refused when malformed. AWS does
    not check one on an upload created without an algorithm."""
    alg = upload.asked
    if alg is None:
        return None
    value = next((v for k, v in headers.items() if k.lower() == alg.header_name), None)
    if value is None:
        return None
    value = value.strip()
    match = _COMPOSITE.match(value) if upload.composite else None
    digest = match.group("digest") if match else value
    if decode_b64_digest(digest, alg.digest_bytes) is None:
        raise errors.InvalidRequest(f"Value for {alg.header_name} header is invalid.")
    return value


def check_declared(upload: UploadChecksum, declared: str | None, computed: str) -> None:
    """BadDigest when the declared object checksum is not the computed one ("-N" may be
    left off a composite one, but when given it must count the parts)."""
    if declared is None or upload.algorithm is None:
        return
    without_count = computed.rsplit("-", 1)[0] if upload.composite else computed
    if declared not in (computed, without_count):
        raise errors.BadDigest(f"The {upload.algorithm.value} you specified did not match the "
                               "calculated checksum.")


def composite_of_listed(upload: UploadChecksum, given: Sequence[Listed | None]) -> str | None:
    """The composite checksum of the checksums a Complete lists, when all are the upload's
    algorithm's (AWS checks a declared object checksum against these first)."""
    alg = upload.algorithm
    if alg is None or not upload.composite or any(
            g is None or g.algorithm is not alg for g in given):
        return None
    return composite_checksum(alg, [g.value for g in given if g is not None])


def object_checksum(upload: UploadChecksum, parts: Sequence[tuple[str, int]]
                    ) -> dict[str, str]:
    """The object's checksum from its parts' (base64 value, size): composite "-N" or the
    full-object CRC; {} for an upload without an algorithm."""
    alg = upload.algorithm
    if alg is None:
        return {}
    if upload.default and any(decode_b64_digest(c, alg.digest_bytes) is None
                              for c, _ in parts):
        return {}   # a part stored by a gateway from before the default: nothing to combine
    if any(not c for c, _ in parts):    # a part recorded before every part had one
        raise errors.InvalidRequest(
            f"The upload was created using the {alg.aws_name} checksum algorithm; "
            "every part must be uploaded with its checksum.")
    if upload.composite:
        return {alg.aws_name: composite_checksum(alg, [c for c, _ in parts])}
    return {alg.aws_name: combine_crc(alg, parts)}

