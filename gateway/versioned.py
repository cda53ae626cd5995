"""Writes, deletes and lookups of object versions in a versioned bucket.

Layout (gateway/versions.py): every version has a record of its own; the key's current
record is a copy of the newest version (a tombstone when that is a delete marker), so that
GET, HEAD and ListObjects read one record as in an unversioned bucket. A version's current
record is stamped with the version's own stamp, so that the newest version wins the
current record on every replica, as it wins the head of the version list.

An object written before the bucket was first versioned has no version record: it is the
key's null version, current. Whatever replaces it first gives it one (at its old stamp),
or removes it when the new version is null too (versioning suspended).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway import errors, object_lock, versions
from gateway.catalog import Catalog
from gateway.manifest import BucketRecord, DataRef, Manifest
from gateway.s3xml import http_date

if TYPE_CHECKING:
    from gateway.counters import Counters
    from gateway.datapath import DataPath

# Rounds of _reconcile_current's write-then-check: each round that writes again lost to a
# concurrent delete's write, so a few suffice; the bound keeps a storm from spinning.
_RECONCILE_ROUNDS = 8


@dataclass
class Outcome:
    """What a write or delete did: the version it wrote or removed, the data that no
    version references any more, and how the bucket's counters move."""

    manifest: Manifest
    retire: list[DataRef] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0

    def add(self, m: Manifest) -> None:
        if not m.marker:
            self.objects, self.bytes = self.objects + 1, self.bytes + m.size

    def drop(self, m: Manifest) -> None:
        self.retire.extend(m.parts)
        if not m.marker:
            self.objects, self.bytes = self.objects - 1, self.bytes - m.size

    def settle(self, data: DataPath, counters: Counters, bucket: BucketRecord
               ) -> Coroutine[Any, Any, None] | None:
        """Retire the data no version references; the counters' update, for the caller
        to await or defer (None: they do not move)."""
        if self.retire:
            data.retire(self.retire)
        if self.objects or self.bytes:
            return counters.add(bucket, self.objects, self.bytes)
        return None


def delete_marker(now_ms: int) -> Manifest:
    return Manifest(0, "", now_ms, marker=True)


async def write_version(catalog: Catalog, bucket: BucketRecord, key: bytes, manifest: Manifest
                        ) -> Outcome:
    """Add a version (a delete marker too) as the key's newest: Enabled gives it an id of
    its own, Suspended makes it the null version, replacing the one there was."""
    if versions.SEPARATOR in key:   # it would end the key early in its version records
        raise errors.InvalidArgument("Object keys in a versioned bucket may not hold NUL",
                                     ArgumentName="key")
    stamp = catalog.store.clock.now()
    m = dataclasses.replace(manifest, version=stamp,
                            null=bucket.versioning == versions.SUSPENDED)
    _, (replaced, replaced_ts) = await asyncio.gather(
        catalog.put_version(bucket, key, stamp, m),
        catalog.put_current_at(bucket, key, None if m.marker else m, stamp))
    out = Outcome(m)
    out.add(m)
    if replaced is not None and replaced.version == 0:
        if m.null:
            out.drop(replaced)
        else:
            await catalog.put_version(bucket, key, replaced_ts, dataclasses.replace(
                replaced, version=replaced_ts, null=True))
    if m.null:
        for old, ts in await catalog.versions_of(bucket, key):
            if old.null and old.version != stamp:
                await catalog.put_version(bucket, key, old.version, None, seen=ts)
                out.drop(old)
    return out


@dataclass(frozen=True)
class Found:
    manifest: Manifest
    record_ts: int | None       # its version record's stamp; None: it has none (never
    #                             versioned: the current record is all there is)


async def find_version(catalog: Catalog, bucket: BucketRecord, key: bytes, version_id: str
                       ) -> Found | None:
    """The version a client names (InvalidArgument when the id is malformed)."""
    stamp = versions.parse_version_id(version_id)
    if stamp is not None:
        hit = await catalog.get_version(bucket, key, stamp)
        return None if hit is None else Found(hit[0], hit[1])
    current = await catalog.get_object(bucket, key)
    if current is not None and current[0].version == 0:
        return Found(current[0], None)
    if not bucket.versioning:
        return None
    for m, ts in await catalog.versions_of(bucket, key):
        if m.null:
            return Found(m, ts)
    return None


async def get_version(catalog: Catalog, bucket: BucketRecord, key: bytes, version_id: str,
                      ) -> Manifest:
    """GetObject/HeadObject's version: NoSuchVersion when there is none, 405 for a delete
    marker (as AWS: the marker's id and x-amz-delete-marker in the answer)."""
    found = await find_version(catalog, bucket, key, version_id)
    if found is None:
        raise errors.NoSuchVersion(Key=key.decode("utf-8", "surrogateescape"),
                                   VersionId=version_id)
    m = found.manifest
    if m.marker:
        raise marker_refused(m, "GET")
    return m


def marker_refused(m: Manifest, method: str) -> errors.S3Error:
    """405 for a call on a delete marker (only DELETE removes one), with its headers."""
    return errors.with_headers(errors.MethodNotAllowed(
        Method=method, ResourceType="DeleteMarker"), {**marker_headers(m), "Allow": "DELETE"})


def marker_headers(m: Manifest) -> dict[str, str]:
    return {"x-amz-delete-marker": "true", "x-amz-version-id": m.version_id,
            "Last-Modified": http_date(m.mtime_ms)}


async def newest_marker(catalog: Catalog, bucket: BucketRecord, key: bytes
                        ) -> Manifest | None:
    """For a key with no current version: its newest version, when that is a delete
    marker (GET's answer then carries the marker's headers)."""
    if not bucket.versioning:
        return None
    newest = await catalog.versions_of(bucket, key, limit=1)
    return newest[0][0] if newest and newest[0][0].marker else None


async def delete_version(catalog: Catalog, bucket: BucketRecord, key: bytes, version_id: str,
                         bypass: bool = False) -> Outcome | None:
    """Remove one version for good (None: there is no such version, which S3 answers as a
    success); the key's current record then shows the newest version left. AccessDenied
    while Object Lock protects it (`bypass`: x-amz-bypass-governance-retention)."""
    found = await find_version(catalog, bucket, key, version_id)
    if found is None:
        return None
    target = found.manifest
    object_lock.check_removal(target.retention, target.legal_hold, bypass,
                              int(time.time() * 1000))
    if found.record_ts is not None:
        await catalog.put_version(bucket, key, target.version, None, seen=found.record_ts)
    await _reconcile_current(catalog, bucket, key, legacy_removed=found.record_ts is None)
    out = Outcome(target)
    out.drop(target)
    return out


async def _reconcile_current(catalog: Catalog, bucket: BucketRecord, key: bytes,
                             legacy_removed: bool) -> None:
    """Make the current record the newest version left (a tombstone when that is a delete
    marker or there is none); a never-versioned current object stays, unless it is the
    one removed. Stamped above the record read, so a write landing meanwhile wins.

    Deletes of other versions of the key may run at the same time, each choosing from the
    list as it saw it: one that saw a version since removed can write it back over a
    better choice. So a writer reads again after its write, until the record it reads is
    the newest version it reads; the last writer's check then holds."""
    for _ in range(_RECONCILE_ROUNDS):
        rec = await catalog.head_record(bucket, key)
        live = None if rec is None or rec.value is None else Manifest.decode(rec.value)
        if live is not None and live.version == 0 and not legacy_removed:
            return
        newest = await catalog.versions_of(bucket, key, limit=1)
        want = newest[0][0] if newest and not newest[0][0].marker else None
        if not legacy_removed and \
                (live.version if live else None) == (want.version if want else None):
            return
        await catalog.put_current_above(bucket, key, want, rec.ts if rec else 0)
        legacy_removed = False


async def update_version(catalog: Catalog, bucket: BucketRecord, key: bytes, old: Manifest,
                         new: Manifest) -> None:
    """Rewrite one version's metadata (tags, ACL): its version record, and the current
    record when it is the current version (unless a newer version landed meanwhile)."""
    if not old.version:     # never versioned: the current record is all there is
        await catalog.put_object(bucket, key, new)
        return
    await catalog.put_version(bucket, key, old.version, new)
    rec = await catalog.head_record(bucket, key)
    if rec is not None and rec.value is not None and \
            Manifest.decode(rec.value).version == old.version:
        await catalog.put_current_above(bucket, key, new, rec.ts)
