"""Metadata records: bucket records and object manifests, msgpack with a format version.

A manifest says everything needed to serve an object: its size, ETag and headers, and
where its bytes are — inline, or as erasure-coded data (one `DataRef` per part; a simple PUT
has one part). Every record starts with its format version so that old records stay readable.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import msgpack

from gateway import acl as aclmod
from gateway import bucket_logging as loggingmod
from gateway import cors as corsmod
from gateway import errors
from gateway import lifecycle as lifecyclemod
from gateway import object_lock as lockmod
from gateway import sse as ssemod
from gateway import versions as versionsmod
from gateway import website as websitemod

MANIFEST_V1 = 1
MANIFEST_V2 = 2         # v2 adds the object ACL
BUCKET_V1 = 1
BUCKET_V2 = 2           # v2 adds ACL, policy, CORS rules and the public access block
# A v2 record may end with more elements, the lifecycle rules, the website configuration,
# the object ownership, the versioning status, Object Lock, default encryption and server
# access logging ([19]): records written before them stay readable (none), and a reader
# that does not know them ignores them.


@dataclass(frozen=True)
class DataRef:
    """One erasure-coded run of bytes: `size` bytes cut into stripes of k blocks."""

    data_id: bytes          # random; its hash places the fragments on the data ring
    size: int
    k: int
    m: int
    block: int              # block bytes per stripe (the last stripe's are shorter)
    etag: str = ""          # the part's ETag (multipart), quoted
    fragment_sums: tuple[int, ...] = ()   # xxh3 of each whole fragment, for repair checks

    def pack(self) -> list[Any]:
        return [self.data_id, self.size, self.k, self.m, self.block, self.etag,
                list(self.fragment_sums)]

    @classmethod
    def unpack(cls, raw: list[Any]) -> DataRef:
        return cls(bytes(raw[0]), int(raw[1]), int(raw[2]), int(raw[3]), int(raw[4]),
                   str(raw[5]), tuple(raw[6]))


@dataclass(frozen=True)
class Manifest:
    size: int
    etag: str                                   # quoted, as the ETag header carries it
    mtime_ms: int
    headers: dict[str, str] = field(default_factory=dict)   # content-type and friends
    meta: dict[str, str] = field(default_factory=dict)      # x-amz-meta-* (names lowered)
    inline: bytes | None = None                  # the whole body, for small objects
    parts: tuple[DataRef, ...] = ()              # erasure-coded data, in object order
    tags: tuple[tuple[str, str], ...] = ()
    checksums: dict[str, str] = field(default_factory=dict)  # algorithm -> base64 value
    part_sizes: tuple[int, ...] = ()             # multipart: each part's size, for partNumber
    acl: aclmod.Grants = ()                         # empty: the bucket owner only (private)
    # Versioned buckets (gateway/versions.py): the stamp of this version's record (0: none,
    # written while the bucket had never been versioned: a null version), whether its id is
    # "null", and whether it is a delete marker (then nothing else in it means anything).
    version: int = 0
    null: bool = False
    marker: bool = False
    # Object Lock (gateway/object_lock.py): this version's retention ("" = none) and legal
    # hold (None: never set, which GetObjectLegalHold tells apart from one put OFF).
    lock_mode: str = ""
    retain_until_ms: int = 0
    legal_hold: bool | None = None
    sse: bytes = b""            # the sealed data key (gateway/sse.py); b"": plaintext
    sse_customer: bool = False  # SSE-C: it is sealed under the customer's key, not the cluster's
    # SSE-KMS (gateway/sse_kms.py): the KMS key's ARN ("" none) the data key is sealed
    # under, the encryption context bound into that seal, and the bucket-key flag echoed.
    sse_kms: str = ""
    sse_kms_context: str = ""
    sse_bucket_key: bool = False
    # Multipart with a checksum algorithm: each part's checksum (base64), beside part_sizes
    # (GetObjectAttributes lists them).
    part_checksums: tuple[str, ...] = ()
    # The multipart upload this object was completed from ("" none): a retried Complete of
    # that upload answers with this object instead of NoSuchUpload, as AWS's does.
    upload_id: str = ""

    @property
    def retention(self) -> lockmod.Retention | None:
        return lockmod.Retention(self.lock_mode, self.retain_until_ms) if self.lock_mode \
            else None

    @property
    def version_id(self) -> str:
        return versionsmod.version_id(self.version, self.null)

    def encode(self) -> bytes:
        body = [
            MANIFEST_V2, self.size, self.etag, self.mtime_ms, self.headers, self.meta,
            self.inline, [p.pack() for p in self.parts], [list(t) for t in self.tags],
            self.checksums, list(self.part_sizes), aclmod.pack(self.acl),
        ]
        # Optional tail groups, each written only when it or a later one is set: the common
        # record (unversioned, unlocked, plaintext) stays as short as before them.
        groups: list[list[Any]] = [
            # stamps are ~90-bit (gateway/hlc.py), beyond msgpack's integers
            [self.version.to_bytes(12, "big"), self.null, self.marker],
            [self.lock_mode, self.retain_until_ms, self.legal_hold],
            [self.sse],
            [self.sse_customer],
            [self.sse_kms, self.sse_kms_context, self.sse_bucket_key],
            [list(self.part_checksums)],
            [self.upload_id],
        ]
        used = [bool(self.version or self.null or self.marker),
                bool(self.lock_mode) or self.legal_hold is not None, bool(self.sse),
                self.sse_customer, bool(self.sse_kms), bool(self.part_checksums),
                bool(self.upload_id)]
        last = max((i for i, u in enumerate(used) if u), default=-1)
        for group in groups[:last + 1]:
            body += group
        out: bytes = msgpack.packb(body, use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        try:
            body = msgpack.unpackb(raw, raw=False)
            if body[0] not in (MANIFEST_V1, MANIFEST_V2):
                raise ValueError(f"manifest version {body[0]}")
            versioned, locked, sealed = len(body) > 14, len(body) > 17, len(body) > 18
            by_customer = len(body) > 19 and bool(body[19])
            kms, part_sums, completed = len(body) > 22, len(body) > 23, len(body) > 24
            return cls(
                size=int(body[1]), etag=str(body[2]), mtime_ms=int(body[3]),
                headers=dict(body[4]), meta=dict(body[5]),
                inline=bytes(body[6]) if body[6] is not None else None,
                parts=tuple(DataRef.unpack(p) for p in body[7]),
                tags=tuple((str(a), str(b)) for a, b in body[8]),
                checksums=dict(body[9]), part_sizes=tuple(body[10]),
                acl=aclmod.unpack(body[11]) if body[0] >= MANIFEST_V2 else (),
                version=int.from_bytes(body[12], "big") if versioned else 0,
                null=versioned and bool(body[13]), marker=versioned and bool(body[14]),
                lock_mode=str(body[15]) if locked else "",
                retain_until_ms=int(body[16]) if locked else 0,
                legal_hold=None if not locked or body[17] is None else bool(body[17]),
                sse=bytes(body[18]) if sealed else b"", sse_customer=by_customer,
                sse_kms=str(body[20]) if kms else "",
                sse_kms_context=str(body[21]) if kms else "",
                sse_bucket_key=kms and bool(body[22]),
                part_checksums=tuple(str(c) for c in body[23]) if part_sums else (),
                upload_id=str(body[24]) if completed else "",
            )
        except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise errors.InternalError(f"unreadable manifest: {exc}") from None


@dataclass(frozen=True)
class BucketRecord:
    name: str
    bucket_id: bytes        # random: a re-created bucket never sees the old one's objects
    owner: str              # tenant id
    created_ms: int
    k: int                  # storage policy, fixed for the bucket's life
    m: int
    shards: int             # index shards, fixed at creation
    tags: tuple[tuple[str, str], ...] = ()
    acl: aclmod.Grants = ()                # empty: the owner only (private)
    policy: str = ""                    # bucket policy JSON as put ("" = none)
    cors: corsmod.Rules = ()
    # BlockPublicAcls, IgnorePublicAcls, BlockPublicPolicy, RestrictPublicBuckets
    public_access_block: tuple[bool, bool, bool, bool] | None = None
    lifecycle: lifecyclemod.Rules = ()
    website: websitemod.Website | None = None
    ownership: str = ""                 # OwnershipControls' ObjectOwnership ("" = none set)
    versioning: str = ""                # "", Enabled or Suspended (never back to "")
    object_lock: lockmod.LockConfig | None = None   # None: no Object Lock (ever, so far)
    encryption: ssemod.BucketDefault | None = None  # default encryption (gateway/sse.py)
    logging: loggingmod.LoggingConfig | None = None     # server access logging; None: off
    accelerate: str = ""                # Transfer Acceleration: "" (never set), Enabled, Suspended

    def encode(self) -> bytes:
        pab = None if self.public_access_block is None else list(self.public_access_block)
        encryption = _pack_encryption(self.encryption)
        out: bytes = msgpack.packb(
            [BUCKET_V2, self.name, self.bucket_id, self.owner, self.created_ms, self.k,
             self.m, self.shards, [list(t) for t in self.tags],
             aclmod.pack(self.acl), self.policy, corsmod.pack(self.cors), pab,
             lifecyclemod.pack(self.lifecycle), websitemod.pack(self.website),
             self.ownership, self.versioning, lockmod.pack(self.object_lock),
             encryption[0], loggingmod.pack(self.logging), *encryption[1:], self.accelerate],
            use_bin_type=True,
        )
        return out

    @classmethod
    def decode(cls, raw: bytes) -> BucketRecord:
        try:
            b = msgpack.unpackb(raw, raw=False)
            if b[0] not in (BUCKET_V1, BUCKET_V2):
                raise ValueError(f"bucket record version {b[0]}")
            rec = cls(str(b[1]), bytes(b[2]), str(b[3]), int(b[4]), int(b[5]), int(b[6]),
                      int(b[7]), tuple((str(x), str(y)) for x, y in b[8]))
            if b[0] == BUCKET_V1:
                return rec
            pab = None if b[12] is None else (bool(b[12][0]), bool(b[12][1]),
                                               bool(b[12][2]), bool(b[12][3]))
            rules = lifecyclemod.unpack(b[13]) if len(b) > 13 else ()
            site = websitemod.unpack(b[14]) if len(b) > 14 else None
            owning = str(b[15]) if len(b) > 15 else ""
            versioning = str(b[16]) if len(b) > 16 else ""
            lock = lockmod.unpack(b[17]) if len(b) > 17 else None
            # [18] the algorithm alone (records before KMS), [19] logging, [20:22] KMS's.
            encryption = _unpack_encryption(b[18:19] + b[20:22])
            logging = loggingmod.unpack(b[19]) if len(b) > 19 else None
            accelerate = str(b[22]) if len(b) > 22 else ""      # [22]: records since it
            return dataclasses.replace(rec, acl=aclmod.unpack(b[9]), policy=str(b[10]),
                                       cors=corsmod.unpack(b[11]), public_access_block=pab,
                                       lifecycle=rules, website=site, ownership=owning,
                                       versioning=versioning, object_lock=lock,
                                       encryption=encryption, logging=logging,
                                       accelerate=accelerate)
        except (ValueError, TypeError, IndexError, KeyError,
                msgpack.UnpackException) as exc:
            raise errors.InternalError(f"unreadable bucket record: {exc}") from None


def _pack_encryption(default: ssemod.BucketDefault | None) -> list[Any]:
    # The algorithm first, alone in records written before KMS: "" for none.
    if default is None:
        return ["", "", False]
    return [default.algorithm, default.kms_key, default.bucket_key]


def _unpack_encryption(raw: list[Any]) -> ssemod.BucketDefault | None:
    if not raw or not raw[0]:
        return None
    return ssemod.BucketDefault(str(raw[0]), str(raw[1]) if len(raw) > 1 else "",
                                len(raw) > 2 and bool(raw[2]))
