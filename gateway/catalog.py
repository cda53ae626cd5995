"""Where metadata records live: bucket records and each bucket's sharded object index.

Bucket records all sit in one metadata partition (there are few buckets, and ListBuckets is
then one ordered scan). A bucket's object index is split into `shards` partitions by a hash
of the key; a listing merges the shards. Record keys carry the bucket's random id, so a
deleted and re-created bucket never sees its predecessor's objects.
"""

from __future__ import annotations

import os
import time

import xxhash

from gateway import errors
from gateway.manifest import BucketRecord, Manifest
from gateway.metastore import MetaStore
from storage.client import MetaRecord

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

    async def bucket(self, name: str) -> BucketRecord:
        bucket = await self.find_bucket(name)
        if bucket is None:
            raise errors.NoSuchBucket(BucketName=name)
        return bucket

    async def create_bucket(self, name: str, owner: str, k: int, m: int,
                            shards: int, ownership: str = "") -> BucketRecord:
        """Create, or raise BucketAlreadyOwnedByYou / BucketAlreadyExists."""
        self._cache.pop(name, None)
        existing = await self.find_bucket(name)
        if existing is not None:
            if existing.owner == owner:
                raise errors.BucketAlreadyOwnedByYou(BucketName=name)
            raise errors.BucketAlreadyExists(BucketName=name)
        rec = BucketRecord(name, os.urandom(8), owner, int(time.time() * 1000), k, m, shards,
                           ownership=ownership)
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
        return await self.store.put_above(self.object_partition(bucket, key),
                                          self.object_record_key(bucket, key), None, seen_ts)

    @staticmethod
    def key_of(bucket: BucketRecord, record_key: bytes) -> bytes:
        return record_key[len(_OBJECT_PREFIX) + len(bucket.bucket_id):]

    @staticmethod
    def record_key_of(bucket: BucketRecord, key: bytes) -> bytes:
        return _OBJECT_PREFIX + bucket.bucket_id + key
