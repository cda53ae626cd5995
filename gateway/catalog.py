"""Where metadata records live: bucket records and each bucket's sharded object index.

Bucket records all sit in one metadata partition (there are few buckets, and ListBuckets is
then one ordered scan). A bucket's object index is split into `shards` partitions by a hash
of the key; a listing merges the shards. Record keys carry the bucket's random id, so a
deleted and re-created bucket never sees its predecessor's objects.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import xxhash

from gateway import errors, object_lock, versions
from gateway.manifest import BucketRecord, Manifest
from gateway.metastore import MetaStore
from storage.client import MetaRecord


@dataclass(frozen=True)
class Overtaken:
    """A conditional write that another write beat to the key: what won (None: a delete)."""
    manifest: Manifest | None


_BUCKETS_PARTITION_NAME = b"coffre:buckets"
_BUCKET_PREFIX = b"B"
_OBJECT_PREFIX = b"O"


class Catalog:
    def __init__(self, store: MetaStore, cache_s: float) -> None:
        self.store = store
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, BucketRecord | None]] = {}

    # ---- buckets ---------------------------------------------------------------------

    @property
    def _bucket_partition(self) -> int:
        return self.store.partition(_BUCKETS_PARTITION_NAME)

    async def find_bucket(self, name: str) -> BucketRecord | None:
        hit = self._cache.get(name)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.cache_s:
            return hit[1]
        rec = await self.store.get_live(self._bucket_partition, _BUCKET_PREFIX + name.encode())
        bucket = BucketRecord.decode(rec.value) if rec is not None and rec.value else None
        self._cache[name] = (now, bucket)
        return bucket

    def cached(self, name: str) -> BucketRecord | None:
        """The bucket record this gateway last read, however old; None: none in memory."""
        hit = self._cache.get(name)
        return None if hit is None else hit[1]

    async def bucket(self, name: str) -> BucketRecord:
        bucket = await self.find_bucket(name)
        if bucket is None:
            raise errors.NoSuchBucket(BucketName=name)
        return bucket

    async def create_bucket(self, name: str, owner: str, k: int, m: int,
                            shards: int, ownership: str = "", locked: bool = False,
                            tags: tuple[tuple[str, str], ...] = ()) -> BucketRecord:
        """Create, or raise BucketAlreadyOwnedByYou / BucketAlreadyExists. `locked`: with
        Object Lock, and so versioned from the start; `tags`: its tag set."""
        self._cache.pop(name, None)
        existing = await self.find_bucket(name)
        if existing is not None:
            if existing.owner == owner:
                raise errors.BucketAlreadyOwnedByYou(BucketName=name)
            raise errors.BucketAlreadyExists(BucketName=name)
        rec = BucketRecord(name, os.urandom(8), owner, int(time.time() * 1000), k, m, shards,
                           tags, ownership=ownership,
                           versioning=versions.ENABLED if locked else "",
                           object_lock=object_lock.LockConfig() if locked else None)
        await self.store.put(self._bucket_partition, _BUCKET_PREFIX + name.encode(),
                             rec.encode())
        self._cache[name] = (time.monotonic(), rec)
        return rec

    async def save_bucket(self, rec: BucketRecord) -> None:
        await self.store.put(self._bucket_partition, _BUCKET_PREFIX + rec.name.encode(),
                             rec.encode())
        self._cache[rec.name] = (time.monotonic(), rec)

    async def delete_bucket(self, rec: BucketRecord) -> None:
        await self.store.put(self._bucket_partition, _BUCKET_PREFIX + rec.name.encode(), None)
        self._cache.pop(rec.name, None)

    async def list_buckets(self) -> list[BucketRecord]:
        cursor = self.store.cursor(self._bucket_partition, _BUCKET_PREFIX, None)
        out = []
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                out.append(BucketRecord.decode(rec.value))
        return out

    # ---- objects ---------------------------------------------------------------------

    def shard_of(self, bucket: BucketRecord, key: bytes) -> int:
        return xxhash.xxh3_64_intdigest(key) % bucket.shards

    def shard_partition(self, bucket: BucketRecord, shard: int) -> int:
        return self.store.partition(b"coffre:index:" + bucket.bucket_id + shard.to_bytes(4))

    def object_home(self, bucket: BucketRecord, key: bytes) -> bytes:
        """The name of the partition that shard_partition hashes for the key: its data ids
        carry it, so a node can ask there whether a record still references them."""
        return b"coffre:index:" + bucket.bucket_id + self.shard_of(bucket, key).to_bytes(4)

    def object_partition(self, bucket: BucketRecord, key: bytes) -> int:
        return self.shard_partition(bucket, self.shard_of(bucket, key))

    @staticmethod
    def object_record_key(bucket: BucketRecord, key: bytes) -> bytes:
        return _OBJECT_PREFIX + bucket.bucket_id + key

    async def get_object(self, bucket: BucketRecord, key: bytes) -> tuple[Manifest, int] | None:
        """The live manifest of a key and its timestamp, or None."""
        rec = await self.store.get_live(self.object_partition(bucket, key),
                                        self.object_record_key(bucket, key))
        if rec is None or rec.value is None:
            return None
        return Manifest.decode(rec.value), rec.ts

    async def get_object_stamped(self, bucket: BucketRecord, key: bytes
                                 ) -> tuple[Manifest | None, int]:
        """The live manifest of a key (None: none) and the stamp of its newest record,
        a delete's too (0: never written): what a conditional write commits above."""
        rec = await self.head_record(bucket, key)
        if rec is None:
            return None, 0
        return (None if rec.value is None else Manifest.decode(rec.value)), rec.ts

    async def put_object_if_current(self, bucket: BucketRecord, key: bytes,
                                    manifest: Manifest, seen_ts: int) -> Overtaken | None:
        """Write `manifest` over the record read at stamp `seen_ts`, unless a write landed
        on the key since: then nothing counts of this one, and what won is answered (the
        commit of a conditional write, decided where AWS decides it). A write that won
        is written again one stamp above: a rival conditional write of the same stamp
        that lost may have reached a replica first, and that copy must not stay."""
        partition, rkey = self.object_partition(bucket, key), self.object_record_key(bucket, key)
        value = manifest.encode()
        winner = await self.store.put_above_seeing(partition, rkey, value, seen_ts)
        if winner is not None:
            return Overtaken(None if winner.value is None else Manifest.decode(winner.value))
        await self.store.put_above(partition, rkey, value, seen_ts + 1)
        self.store.clock.observe(seen_ts + 2)
        return None

    async def head_record(self, bucket: BucketRecord, key: bytes) -> MetaRecord | None:
        return await self.store.get(self.object_partition(bucket, key),
                                    self.object_record_key(bucket, key))

    async def put_object(self, bucket: BucketRecord, key: bytes, manifest: Manifest) -> int:
        return await self.store.put(self.object_partition(bucket, key),
                                    self.object_record_key(bucket, key), manifest.encode())

    async def replace_object(self, bucket: BucketRecord, key: bytes, manifest: Manifest
                             ) -> Manifest | None:
        """put_object, returning the live manifest it replaced (None: there was none)."""
        _, previous = await self.store.put_previous(self.object_partition(bucket, key),
                                                    self.object_record_key(bucket, key),
                                                    manifest.encode())
        return None if previous is None or previous.value is None else (
            Manifest.decode(previous.value))

    async def delete_object(self, bucket: BucketRecord, key: bytes) -> int:
        return await self.store.put(self.object_partition(bucket, key),
                                    self.object_record_key(bucket, key), None)

    async def expire_object(self, bucket: BucketRecord, key: bytes, seen_ts: int) -> bool:
        """Delete the object version stamped `seen_ts` (read just before), and only it: an
        overwrite that landed since wins over the tombstone. True when it was removed."""
        return await self.put_current_above(bucket, key, None, seen_ts)

    async def put_current_above(self, bucket: BucketRecord, key: bytes,
                                manifest: Manifest | None, seen_ts: int) -> bool:
        """Replace the current record read just before (stamp `seen_ts`) and only it: a
        write that landed since wins. True when nothing newer was found."""
        return await self.store.put_above(
            self.object_partition(bucket, key), self.object_record_key(bucket, key),
            None if manifest is None else manifest.encode(), seen_ts)

    # ---- versions (gateway/versions.py; written by gateway/versioned.py) ---------------

    async def put_current_at(self, bucket: BucketRecord, key: bytes, manifest: Manifest | None,
                             stamp: int) -> tuple[Manifest | None, int]:
        """The key's current record (None: a tombstone) stamped with its version's stamp:
        the live manifest it replaced and that one's stamp (a newer version, if one is
        there, keeps the record)."""
        older = await self.store.put_at(
            self.object_partition(bucket, key), self.object_record_key(bucket, key),
            None if manifest is None else manifest.encode(), stamp)
        if older is None or older.value is None:
            return None, 0
        return Manifest.decode(older.value), older.ts

    async def put_version(self, bucket: BucketRecord, key: bytes, stamp: int,
                          manifest: Manifest | None, seen: int = 0) -> None:
        """Write (None: remove) the record of the version stamped `stamp`; a removal is
        stamped above the record read (`seen`) so that it loses to nothing newer. (The
        record's own stamp only orders writes of it; the version's order is in its key.)"""
        partition = self.object_partition(bucket, key)
        rkey = versions.record_key(bucket.bucket_id, key, stamp)
        if manifest is None:
            await self.store.put_above(partition, rkey, None, seen)
        else:
            await self.store.put(partition, rkey, manifest.encode())

    async def get_version(self, bucket: BucketRecord, key: bytes, stamp: int
                          ) -> tuple[Manifest, int] | None:
        """The version stamped `stamp` (a delete marker too) and its record's stamp."""
        rec = await self.store.get_live(self.object_partition(bucket, key),
                                        versions.record_key(bucket.bucket_id, key, stamp))
        return None if rec is None or rec.value is None else (Manifest.decode(rec.value),
                                                              rec.ts)

    async def has_versions(self, bucket: BucketRecord) -> bool:
        """Whether any version record is left (a versioned bucket is empty only without)."""
        if not bucket.versioning:
            return False
        partitions = {self.shard_partition(bucket, s) for s in range(bucket.shards)}
        for partition in sorted(partitions):
            cursor = self.store.cursor(partition, versions.PREFIX + bucket.bucket_id, None,
                                       first_page=8)
            while (rec := await cursor.pop()) is not None:
                if rec.value is not None:
                    return True
        return False

    async def versions_of(self, bucket: BucketRecord, key: bytes, limit: int = 0
                          ) -> list[tuple[Manifest, int]]:
        """A key's versions newest first (at most `limit`, 0: all), with their record
        stamps."""
        cursor = self.store.cursor(self.object_partition(bucket, key),
                                   versions.key_prefix(bucket.bucket_id, key), None,
                                   first_page=limit or 100)
        out: list[tuple[Manifest, int]] = []
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                out.append((Manifest.decode(rec.value), rec.ts))
                if len(out) == limit:
                    break
        return out

    @staticmethod
    def key_of(bucket: BucketRecord, record_key: bytes) -> bytes:
        return record_key[len(_OBJECT_PREFIX) + len(bucket.bucket_id):]

    @staticmethod
    def record_key_of(bucket: BucketRecord, key: bytes) -> bytes:
        return _OBJECT_PREFIX + bucket.bucket_id + key
