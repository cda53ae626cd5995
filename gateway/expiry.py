"""Lifecycle actions: objects expired and incomplete multipart uploads aborted as a bucket's
lifecycle rules say (gateway.lifecycle holds the rules and the date arithmetic).

Every gateway scans every bucket that has such rules once per `scan_s`, starting at a random
point of its first period. Running twice is harmless: an object is deleted by a tombstone
stamped just above the version that was read and found due (Catalog.expire_object), so a
second scan, another gateway, or an overwrite that lands meanwhile never loses data or counts
a removal twice (two gateways tombstoning one version at the same instant, their writes
interleaved across replicas, may both see the other's and neither count it: the bucket
counters then overstate by that object; rare, as scans start at random
points of the hour); an upload already dropped is skipped. Lifecycle actions are not requests:
they are neither metered nor audited, as AWS does not bill them.

`COFFRE_LIFECYCLE_DAY_S` shortens the lifecycle day (tests, as Ceph RGW's lc debug interval);
`COFFRE_LIFECYCLE_SCAN_S` sets the scan period (0: no scans).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable

from gateway import errors, lifecycle, list_versions, s3xml, versioned
from gateway.listing import list_page
from gateway.manifest import BucketRecord, Manifest
from gateway.state import State
from gateway.uploads import Upload, Uploads

log = logging.getLogger("coffre.lifecycle")

day_ms = int(float(os.environ.get("COFFRE_LIFECYCLE_DAY_S", "86400")) * 1000)
scan_s = float(os.environ.get("COFFRE_LIFECYCLE_SCAN_S", "3600"))
page_keys = 1000
assert day_ms >= 1 and scan_s >= 0


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclasses.dataclass
class Tally:
    expired: int = 0
    aborted: int = 0


def scan_prefixes(prefixes: Iterable[str]) -> list[str]:
    """The fewest prefixes whose listings cover every given one (a prefix of another
    covers it): each key is then listed once per scan."""
    out: list[str] = []
    for p in sorted(set(prefixes)):
        if not out or not p.startswith(out[-1]):
            out.append(p)
    return out


def _untagged(rules: lifecycle.Rules) -> lifecycle.Rules:
    """The rules with their tag conditions dropped: what a listing entry (no tags) can be
    checked against before its manifest is read."""
    return tuple(dataclasses.replace(r, filter=dataclasses.replace(r.filter, tags=()))
                 for r in rules)


def _expiring(rules: lifecycle.Rules) -> list[str]:
    return [r.filter.prefix for r in rules if r.enabled and (
        r.expiration_days is not None or r.expiration_date_ms is not None)]


def _versioning(rules: lifecycle.Rules) -> list[str]:
    return [r.filter.prefix for r in rules if r.enabled and (
        r.noncurrent_days is not None or r.expired_object_delete_marker)]


def _aborting(rules: lifecycle.Rules) -> list[str]:
    return [r.filter.prefix for r in rules if r.enabled and r.abort_days is not None]


def expiration_headers(bucket: BucketRecord, key: bytes, m: Manifest) -> dict[str, str]:
    """x-amz-expiration for an object a rule will expire (PUT, GET, HEAD answers)."""
    if not bucket.lifecycle:
        return {}
    hit = lifecycle.expiry(bucket.lifecycle, key.decode(), m.size, m.tags, m.mtime_ms,
                           day_ms)
    if hit is None:
        return {}
    return {"x-amz-expiration": lifecycle.expiration_header(*hit)}


def abort_headers(bucket: BucketRecord, key: str, initiated_ms: int) -> dict[str, str]:
    """x-amz-abort-date and x-amz-abort-rule-id for an upload a rule will abort."""
    if not bucket.lifecycle:
        return {}
    hit = lifecycle.abort_due(bucket.lifecycle, key, initiated_ms, day_ms)
    if hit is None:
        return {}
    return {"x-amz-abort-date": s3xml.http_date(hit[0]), "x-amz-abort-rule-id": hit[1]}


class Expirer:
    def __init__(self, state: State, now_ms: Callable[[], int] = _wall_ms) -> None:
        self.state = state
        self.uploads = Uploads(state.catalog)
        self.now_ms = now_ms

    async def run(self) -> None:
        await asyncio.sleep(random.uniform(0, scan_s))
        while True:
            try:
                tally = await self.scan()
                if tally.expired or tally.aborted:
                    log.info("lifecycle: %d objects expired, %d uploads aborted",
                             tally.expired, tally.aborted)
            except Exception:   # a lost quorum, a node down: the next scan tries again
                log.exception("lifecycle scan failed")
            await asyncio.sleep(scan_s)

    async def scan(self) -> Tally:
        tally = Tally()
        for bucket in await self.state.catalog.list_buckets():
            if lifecycle.has_expiration(bucket.lifecycle):
                tally.expired += await self._expire_bucket(bucket)
            if bucket.versioning and lifecycle.has_version_rules(bucket.lifecycle):
                tally.expired += await self._expire_versions(bucket)
            if lifecycle.has_abort(bucket.lifecycle):
                tally.aborted += await self._abort_bucket(bucket)
        return tally

    async def _expire_bucket(self, bucket: BucketRecord) -> int:
        loose, now, done = _untagged(bucket.lifecycle), self.now_ms(), 0
        for prefix in scan_prefixes(_expiring(bucket.lifecycle)):
            after: str | None = None
            while True:
                page = await list_page(self.state.catalog, bucket, prefix, None, page_keys,
                                       after)
                for e in page.entries:
                    hit = lifecycle.expiry(loose, e.key, e.size, (), e.last_modified_ms,
                                           day_ms)
                    if hit is not None and hit[0] <= now:
                        done += await self._expire_one(bucket, e.key, now)
                if not page.truncated or page.next_key is None:
                    break
                after = page.next_key
        return done

    async def _expire_one(self, bucket: BucketRecord, key: str, now: int) -> int:
        """Delete one object if its manifest (tags included) says it is due."""
        catalog = self.state.catalog
        found = await catalog.get_object(bucket, key.encode())
        if found is None:
            return 0
        m, ts = found
        hit = lifecycle.expiry(bucket.lifecycle, key, m.size, m.tags, m.mtime_ms, day_ms)
        if hit is None or hit[0] > now:
            return 0
        if bucket.versioning:
            return await self._expire_versioned(bucket, key.encode())
        if not await catalog.expire_object(bucket, key.encode(), ts):
            return 0                 # overwritten since it was read: the new one stays
        if m.parts:
            self.state.data.retire(m.parts)
        await self.state.counters.add(bucket, -1, -m.size)
        return 1

    async def _expire_versioned(self, bucket: BucketRecord, key: bytes) -> int:
        """Expiring the current version of a versioned bucket adds a delete marker, as a
        DELETE does: the version stays (noncurrent), so an overwrite that lands between
        the read and the marker loses nothing either, it only ends up behind the marker."""
        outcome = await versioned.write_version(
            self.state.catalog, bucket, key, versioned.delete_marker(int(time.time() * 1000)))
        await self._settle(bucket, outcome)  # a suspended bucket's null version goes
        return 1

    async def _expire_versions(self, bucket: BucketRecord) -> int:
        """Noncurrent versions past their NoncurrentVersionExpiration, and delete markers
        left alone (ExpiredObjectDeleteMarker), from the bucket's version listing: each
        key's versions are judged together, newest first."""
        done = 0
        for prefix in scan_prefixes(_versioning(bucket.lifecycle)):
            key_marker = version_marker = ""
            group: list[list_versions.Version] = []
            while True:
                page = await list_versions.versions_page(
                    self.state.catalog, bucket, prefix, None, page_keys, key_marker,
                    version_marker)
                for v in page.entries:
                    if group and v.key != group[0].key:
                        done += await self._expire_key_versions(bucket, group)
                        group = []
                    group.append(v)
                if not page.truncated or page.next_key is None:
                    break
                key_marker, version_marker = page.next_key, page.next_version_id or ""
            if group:
                done += await self._expire_key_versions(bucket, group)
        return done

    async def _expire_key_versions(self, bucket: BucketRecord,
                                   group: list[list_versions.Version]) -> int:
        rules, key, now = bucket.lifecycle, group[0].key, self.now_ms()
        if len(group) == 1 and group[0].marker and lifecycle.removes_lone_markers(rules, key):
            return await self._remove_version(bucket, key, group[0].version_id)
        loose, done = _untagged(rules), 0
        for i in range(1, len(group)):      # group[0] is the current version
            v = group[i]
            hit = lifecycle.noncurrent_due(loose, key, v.size, (), group[i - 1].mtime_ms,
                                           i - 1, day_ms)
            if hit is None or hit[0] > now:
                continue
            if loose != rules:      # a rule has tags: check them on the version itself
                found = await versioned.find_version(self.state.catalog, bucket,
                                                     key.encode(), v.version_id)
                tags = found.manifest.tags if found else ()
                hit = lifecycle.noncurrent_due(rules, key, v.size, tags,
                                               group[i - 1].mtime_ms, i - 1, day_ms)
                if hit is None or hit[0] > now:
                    continue
            done += await self._remove_version(bucket, key, v.version_id)
        return done

    async def _remove_version(self, bucket: BucketRecord, key: str, version_id: str) -> int:
        try:
            outcome = await versioned.delete_version(self.state.catalog, bucket, key.encode(),
                                                     version_id)
        except errors.AccessDenied:     # Object Lock keeps it: lifecycle waits, as on AWS
            return 0
        if outcome is None:
            return 0
        await self._settle(bucket, outcome)
        return 1

    async def _settle(self, bucket: BucketRecord, outcome: versioned.Outcome) -> None:
        counted = outcome.settle(self.state.data, self.state.counters, bucket)
        if counted is not None:
            await counted

    async def _abort_bucket(self, bucket: BucketRecord) -> int:
        now, done = self.now_ms(), 0
        for prefix in scan_prefixes(_aborting(bucket.lifecycle)):
            async for up in self._uploads(bucket, prefix):
                hit = lifecycle.abort_due(bucket.lifecycle, up.key, up.initiated_ms, day_ms)
                if hit is not None and hit[0] <= now:
                    try:
                        dropped = await self.uploads.drop(bucket, up.key.encode(),
                                                          up.upload_id, now)
                    except (errors.NoSuchUpload, errors.ConditionalRequestConflict):
                        continue        # gone meanwhile, or a Complete has it
                    self.state.data.forget(dropped)
                    done += 1
        return done

    async def _uploads(self, bucket: BucketRecord, prefix: str) -> AsyncIterator[Upload]:
        cursor = self.uploads.upload_cursor(bucket, prefix.encode(), None)
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                yield Upload.decode(rec.value)


async def cleanup_ctx(state: State) -> AsyncIterator[None]:
    """Runs the scans for as long as the gateway serves (aiohttp cleanup context body)."""
    if scan_s <= 0:
        yield
        return
    task = asyncio.create_task(Expirer(state).run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
