"""Metadata records: bucket records and object manifests, msgpack with a format version.

A manifest says everything needed to serve an object: its size, ETag and headers, and
where its bytes are — inline, or as erasure-coded data (one `DataRef` per part; a simple PUT
has one part). Every record starts with its format version so that old records stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack

from gateway import errors

MANIFEST_V1 = 1
BUCKET_V1 = 1


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

    def encode(self) -> bytes:
        body = [
            MANIFEST_V1, self.size, self.etag, self.mtime_ms, self.headers, self.meta,
            self.inline, [p.pack() for p in self.parts], [list(t) for t in self.tags],
            self.checksums, list(self.part_sizes),
        ]
        out: bytes = msgpack.packb(body, use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> Manifest:
        try:
            body = msgpack.unpackb(raw, raw=False)
            if body[0] != MANIFEST_V1:
                raise ValueError(f"manifest version {body[0]}")
            return cls(
                size=int(body[1]), etag=str(body[2]), mtime_ms=int(body[3]),
                headers=dict(body[4]), meta=dict(body[5]),
                inline=bytes(body[6]) if body[6] is not None else None,
                parts=tuple(DataRef.unpack(p) for p in body[7]),
                tags=tuple((str(a), str(b)) for a, b in body[8]),
                checksums=dict(body[9]), part_sizes=tuple(body[10]),
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

    def encode(self) -> bytes:
        out: bytes = msgpack.packb(
            [BUCKET_V1, self.name, self.bucket_id, self.owner, self.created_ms, self.k,
             self.m, self.shards, [list(t) for t in self.tags]],
            use_bin_type=True,
        )
        return out

    @classmethod
    def decode(cls, raw: bytes) -> BucketRecord:
        try:
            b = msgpack.unpackb(raw, raw=False)
            if b[0] != BUCKET_V1:
                raise ValueError(f"bucket record version {b[0]}")
            return cls(str(b[1]), bytes(b[2]), str(b[3]), int(b[4]), int(b[5]), int(b[6]),
                       int(b[7]), tuple((str(x), str(y)) for x, y in b[8]))
        except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
            raise errors.InternalError(f"unreadable bucket record: {exc}") from None
