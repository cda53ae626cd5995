"""Multipart upload records: the upload itself and each uploaded part.

Both live in the metadata partition of the object's index shard, next to the object's own
record: the upload under `U bucket_id key NUL upload_id`, its parts under
`P bucket_id upload_id part_number`, so ListParts is one ordered scan and Complete touches
one partition.

Complete and Abort each claim the upload before they touch its parts' data: a write of
the upload record stamped just above the one they read (MetaStore.put_above), which only
one of two racing claims can win; the loser answers 409 ConditionalRequestConflict, as AWS
answers a conflicting operation during a Complete. Complete's claim marks the record
(`completing_ms`) until it drops it; Abort's is the tombstone itself. Without the claim, an
Abort during a Complete freed the data of the object just committed, and two Completes
naming different parts each freed parts the other's object kept.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import msgpack

from gateway import acl as aclmod
from gateway import errors, limits
from gateway.catalog import Catalog
from gateway.manifest import BucketRecord, DataRef
from gateway.metastore import RecordCursor
from gateway.multipart_checksums import UploadChecksum

UPLOAD_V1 = 1
PART_V1 = 1


@dataclass(frozen=True)
class Upload:
    key: str
    upload_id: str
    initiated_ms: int
    headers: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    tags: tuple[tuple[str, str], ...] = ()
    checksum_alg: str = ""          # x-amz-checksum-algorithm at Create ("" = none)
    checksum_type: str = ""         # COMPOSITE or FULL_OBJECT ("" = the algorithm's default)
    acl: aclmod.Grants = ()         # x-amz-acl / x-amz-grant-* at Create, for the object
    lock: dict[str, str] = field(default_factory=dict)  # Object Lock headers at Create
    sse: bytes = b""                # the sealed data key every part is encrypted with
    # The tenant that signed CreateMultipartUpload ("" anonymous), who may be another than
    # the bucket's owner (who owns the object to be); None: not recorded (older records).
    initiator: str | None = None
    sse_customer: bool = False      # SSE-C: sealed under the customer's key (every part's)
    sse_kms: str = ""               # SSE-KMS: the key's ARN, context and bucket-key flag
    sse_kms_context: str = ""       # (as the manifest's, gateway/manifest.py)
    sse_bucket_key: bool = False
    # When a Complete claimed the upload (0: none did); kept until the Complete drops it.
    completing_ms: int = 0
    # Created without an algorithm, so its parts and object get AWS's default checksum
    # (gateway/multipart_checksums.py); False in records from before the default.
    checksum_default: bool = False

    @property
    def checksum(self) -> UploadChecksum:
        return UploadChecksum.stored(self.checksum_alg, self.checksum_type,
                                     self.checksum_default)

    def encode(self) -> bytes:
        out: bytes = msgpack.packb(
            [UPLOAD_V1, self.key, self.upload_id, self.initiated_ms, self.headers, self.meta,
             [list(t) for t in self.tags], self.checksum_alg, self.checksum_type,
             aclmod.pack(self.acl), self.lock, self.sse, self.initiator, self.sse_customer,
             self.sse_kms, self.sse_kms_context, self.sse_bucket_key, self.completing_ms,
             self.checksum_default],
            use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> Upload:
        b = msgpack.unpackb(raw, raw=False)
        if b[0] != UPLOAD_V1:
            raise errors.InternalError(f"upload record version {b[0]}")
        # The checksum type, the ACL, the lock headers, the data key, the initiator, the
        # data key's SSE-C flag, its KMS key, the Complete's claim and the default checksum
        # flag were added later within version 1: absent means "", the owner's alone, none,
        # plaintext, not recorded, the cluster's key, unclaimed, no default.
        kms = len(b) > 16
        return cls(b[1], b[2], b[3], dict(b[4]), dict(b[5]), tuple((x, y) for x, y in b[6]),
                   b[7], b[8] if len(b) > 8 else "", aclmod.unpack(b[9]) if len(b) > 9 else (),
                   dict(b[10]) if len(b) > 10 else {}, bytes(b[11]) if len(b) > 11 else b"",
                   b[12] if len(b) > 12 else None, len(b) > 13 and bool(b[13]),
                   str(b[14]) if kms else "", str(b[15]) if kms else "",
                   kms and bool(b[16]), int(b[17]) if len(b) > 17 else 0,
                   len(b) > 18 and bool(b[18]))


@dataclass(frozen=True)
class Part:
    number: int
    etag: str
    size: int
    mtime_ms: int
    data: DataRef | None          # None for an empty part
    checksum: str = ""

    def encode(self) -> bytes:
        out: bytes = msgpack.packb(
            [PART_V1, self.number, self.etag, self.size, self.mtime_ms,
             self.data.pack() if self.data else None, self.checksum], use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> Part:
        b: list[Any] = msgpack.unpackb(raw, raw=False)
        if b[0] != PART_V1:
            raise errors.InternalError(f"part record version {b[0]}")
        return cls(b[1], b[2], b[3], b[4], DataRef.unpack(b[5]) if b[5] else None, b[6])


def new_upload_id() -> str:
    return secrets.token_urlsafe(24)


class Uploads:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.store = catalog.store

    @staticmethod
    def _upload_key(bucket: BucketRecord, key: bytes, upload_id: str) -> bytes:
        return b"U" + bucket.bucket_id + key + b"\x00" + upload_id.encode()

    @staticmethod
    def _part_prefix(bucket: BucketRecord, upload_id: str) -> bytes:
        return b"P" + bucket.bucket_id + upload_id.encode() + b"\x00"

    async def create(self, bucket: BucketRecord, key: bytes, upload: Upload) -> None:
        partition = self.catalog.object_partition(bucket, key)
        await self.store.put(partition, self._upload_key(bucket, key, upload.upload_id),
                             upload.encode())

    async def get(self, bucket: BucketRecord, key: bytes, upload_id: str) -> Upload:
        return (await self.get_stamped(bucket, key, upload_id))[0]

    async def get_stamped(self, bucket: BucketRecord, key: bytes, upload_id: str
                          ) -> tuple[Upload, int]:
        """The upload and its record's stamp (what a claim writes above)."""
        partition = self.catalog.object_partition(bucket, key)
        rec = await self.store.get_live(partition, self._upload_key(bucket, key, upload_id))
        if rec is None or rec.value is None:
            raise errors.NoSuchUpload(UploadId=upload_id)
        return Upload.decode(rec.value), rec.ts

    async def claim(self, bucket: BucketRecord, key: bytes, upload: Upload, seen: int,
                    value: Upload | None) -> int:
        """Replace the upload record read at stamp `seen` with `value` (None: a tombstone),
        unless something wrote it since: then ConditionalRequestConflict. Returns the
        claim's stamp; what this gateway writes next is stamped above it."""
        partition = self.catalog.object_partition(bucket, key)
        won = await self.store.put_above(partition,
                                         self._upload_key(bucket, key, upload.upload_id),
                                         value.encode() if value is not None else None, seen)
        if not won:
            raise errors.ConditionalRequestConflict()
        self.store.clock.observe(seen + 1)
        return seen + 1

    async def release(self, bucket: BucketRecord, key: bytes, upload: Upload,
                      claimed: int) -> None:
        """Undo a Complete's claim that changed nothing (the upload is open again)."""
        await self.claim(bucket, key, upload, claimed, upload)

    async def is_open(self, bucket: BucketRecord, key: bytes, upload_id: str) -> bool:
        """Whether the upload is still there and unclaimed."""
        try:
            return not (await self.get(bucket, key, upload_id)).completing_ms
        except errors.NoSuchUpload:
            return False

    async def finish(self, bucket: BucketRecord, key: bytes, upload_id: str,
                     parts: list[Part]) -> None:
        """Drop the upload and its part records (tombstones)."""
        partition = self.catalog.object_partition(bucket, key)
        await self.store.put(partition, self._upload_key(bucket, key, upload_id), None)
        prefix = self._part_prefix(bucket, upload_id)
        for p in parts:
            await self.store.put(partition, prefix + p.number.to_bytes(4, "big"), None)

    async def drop(self, bucket: BucketRecord, key: bytes, upload_id: str,
                   now_ms: int) -> list[DataRef]:
        """Abort an upload: claim it, then its records go; returns its parts' data, for the
        caller to delete (nothing references it any more). A Complete's claim younger than
        limits.upload_claim_ms_max is a Complete at work: ConditionalRequestConflict. An
        older one is a Complete that stopped half way, perhaps after it committed the
        object: the records go but no data is returned (the nodes' orphan collector frees
        what nothing references)."""
        upload, seen = await self.get_stamped(bucket, key, upload_id)
        if upload.completing_ms and now_ms - upload.completing_ms < limits.upload_claim_ms_max:
            raise errors.ConditionalRequestConflict()
        await self.claim(bucket, key, upload, seen, None)
        parts = await self.parts(bucket, key, upload_id)
        await self.finish(bucket, key, upload_id, parts)
        return [] if upload.completing_ms else [p.data for p in parts if p.data is not None]

    async def put_part(self, bucket: BucketRecord, key: bytes, upload_id: str,
                       part: Part) -> Part | None:
        """Record a part; return the part it replaced, if any."""
        partition = self.catalog.object_partition(bucket, key)
        rec_key = self._part_prefix(bucket, upload_id) + part.number.to_bytes(4, "big")
        old = await self.store.get_live(partition, rec_key)
        await self.store.put(partition, rec_key, part.encode())
        return Part.decode(old.value) if old is not None and old.value else None

    def part_cursor(self, bucket: BucketRecord, key: bytes, upload_id: str,
                    after: int = 0) -> RecordCursor:
        partition = self.catalog.object_partition(bucket, key)
        prefix = self._part_prefix(bucket, upload_id)
        start = prefix + after.to_bytes(4, "big") if after else None
        return self.store.cursor(partition, prefix, start)

    async def parts(self, bucket: BucketRecord, key: bytes, upload_id: str) -> list[Part]:
        cursor = self.part_cursor(bucket, key, upload_id)
        out = []
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                out.append(Part.decode(rec.value))
        return out

    def upload_cursor(self, bucket: BucketRecord, prefix: bytes,
                      after: bytes | None) -> RecordCursor:
        """Uploads of a bucket under a key prefix, in (key, upload id) order."""
        shards = [
            self.store.cursor(self.catalog.shard_partition(bucket, s),
                              b"U" + bucket.bucket_id + prefix,
                              None if after is None else b"U" + bucket.bucket_id + after)
            for s in range(bucket.shards)
        ]
        return RecordCursor(shards)
