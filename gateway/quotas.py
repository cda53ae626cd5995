"""Quotas per tenant and per bucket (bytes, objects), checked before a write stores anything.

Quota records sit beside tenant and key records (gateway.tenants' partition):
`quota:t:<tenant>` and `quota:b:<bucket>`, msgpack with a format version; 0 means no limit.
A gateway caches each record for `quota_cache_s`, so a new quota binds within seconds.
Usage comes from the bucket counters (gateway.counters), exact across gateways; a tenant's
is the sum over its buckets, computed only when that tenant has a quota.

The check is conservative: the incoming bytes are added to the current usage without
subtracting an object the write replaces, and an object count is charged unless the key
already exists. Writes already in flight when the quota is reached may overshoot it by
what they carry (the check does not reserve space); the next write is refused.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import msgpack

from gateway import errors
from gateway.catalog import Catalog
from gateway.counters import Counters, Usage
from gateway.manifest import BucketRecord
from gateway.metastore import MetaStore
from gateway.tenants import PARTITION_NAME

QUOTA_V1 = 1
quota_cache_s = 2.0           # how long a gateway trusts a cached quota record


class QuotaExceeded(errors.S3Error):
    code = "QuotaExceeded"
    status = 403
    default_message = "This write would exceed a storage quota."


class Scope(Enum):
    TENANT = "t"
    BUCKET = "b"


@dataclass(frozen=True)
class Quota:
    bytes_max: int = 0        # 0: no limit
    objects_max: int = 0      # 0: no limit

    @property
    def unlimited(self) -> bool:
        return self.bytes_max == 0 and self.objects_max == 0

    def encode(self) -> bytes:
        out: bytes = msgpack.packb([QUOTA_V1, self.bytes_max, self.objects_max])
        return out

    @classmethod
    def decode(cls, raw: bytes) -> Quota:
        body = msgpack.unpackb(raw)
        if body[0] != QUOTA_V1:
            raise ValueError(f"quota record version {body[0]}")
        return cls(int(body[1]), int(body[2]))


def record_key(scope: Scope, name: str) -> bytes:
    return f"quota:{scope.value}:{name}".encode()


def over(quota: Quota, usage: Usage, add_bytes: int, add_objects: int) -> str | None:
    """Why the write breaks the quota, or None. Pure."""
    if quota.bytes_max and usage.bytes + add_bytes > quota.bytes_max:
        return (f"{usage.bytes} of {quota.bytes_max} bytes used; "
                f"this write adds {add_bytes}")
    if quota.objects_max and usage.objects + add_objects > quota.objects_max:
        return f"{usage.objects} of {quota.objects_max} objects stored"
    return None


class Quotas:
    def __init__(self, store: MetaStore, catalog: Catalog, counters: Counters) -> None:
        self.store, self.catalog, self.counters = store, catalog, counters
        self._cache: dict[bytes, tuple[float, Quota]] = {}

    @property
    def partition(self) -> int:
        return self.store.partition(PARTITION_NAME)

    async def get(self, scope: Scope, name: str) -> Quota:
        key = record_key(scope, name)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < quota_cache_s:
            return hit[1]
        rec = await self.store.get_live(self.partition, key)
        quota = Quota.decode(rec.value) if rec is not None and rec.value else Quota()
        self._cache[key] = (now, quota)
        return quota

    async def set(self, scope: Scope, name: str, quota: Quota) -> None:
        value = None if quota.unlimited else quota.encode()
        await self.store.put(self.partition, record_key(scope, name), value)
        self._cache.pop(record_key(scope, name), None)

    async def _tenant_usage(self, tenant: str) -> Usage:
        objects = nbytes = 0
        for b in await self.catalog.list_buckets():
            if b.owner == tenant:
                u = await self.counters.usage(b)
                objects, nbytes = objects + u.objects, nbytes + u.bytes
        return Usage(objects, nbytes)

    async def check(self, bucket: BucketRecord, add_bytes: int, key: bytes | None) -> None:
        """Raise QuotaExceeded if writing `add_bytes` (a new object at `key`, unless it
        exists; key None: no new object) breaks the bucket's or its owner's quota."""
        bucket_quota = await self.get(Scope.BUCKET, bucket.name)
        tenant_quota = await self.get(Scope.TENANT, bucket.owner)
        if bucket_quota.unlimited and tenant_quota.unlimited:
            return
        new_objects = 0
        if key is not None and (bucket_quota.objects_max or tenant_quota.objects_max):
            # every write to a versioned bucket is a new version, counted as an object
            new_objects = 1 if bucket.versioning or not await self.catalog.get_object(
                bucket, key) else 0
        if not bucket_quota.unlimited:
            why = over(bucket_quota, await self.counters.usage(bucket), add_bytes, new_objects)
            if why:
                raise QuotaExceeded(f"Bucket quota exceeded: {why}", BucketName=bucket.name)
        if not tenant_quota.unlimited:
            why = over(tenant_quota, await self._tenant_usage(bucket.owner), add_bytes,
                       new_objects)
            if why:
                raise QuotaExceeded(f"Tenant quota exceeded: {why}", BucketName=bucket.name)
