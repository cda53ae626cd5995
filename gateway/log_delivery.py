"""Delivery of server access logs: each gateway process writes the lines it has buffered
(gateway/access_log.py) as new objects in their target buckets, every
`[gateway] access_log_flush_s` seconds, as soon as a batch reaches its size bound, and once
more at a clean shutdown.

A log object is written as a PUT would write it, with the target bucket's storage policy,
default encryption, versioning and default retention: inline in its manifest when small,
erasure-coded otherwise; the owner has it (and the configuration's TargetGrants, if any).
It is no request, so it makes no log line itself: a bucket that logs into itself does not
loop. Before each write the target is read again: a target deleted since, or re-created by
another tenant, gets nothing.

Delivery is best effort, as on AWS: a write that fails is tried again at the next flush
with the same key, `limits.access_log_retries_max` times, then its lines are dropped with
a log line; so are lines that find the buffer full (gateway/access_log.Buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from aiohttp import web

from gateway import acl, bucket_logging, object_lock, sse, versioned
from gateway.access_log import AccessLogs, Batch
from gateway.manifest import BucketRecord, Manifest
from gateway.names import check_key
from gateway.state import STATE, State

log = logging.getLogger("coffre.access_log")
shutdown_flush_s_max = 5.0              # the last flush at shutdown, at most
_CHUNK_BYTES = 1024 * 1024              # a large log object is fed to the data path so


class Undeliverable(Exception):
    """The target bucket is gone, or is not the source owner's any more: no retry."""


async def store(state: State, target: BucketRecord, key: str, data: bytes,
                grants: acl.Grants = ()) -> Manifest:
    """Write a log object into `target` (committed, counted) and return its manifest."""
    raw = check_key(key)
    dk = state.data_keys().new() if sse.requested({}, target.encryption) else sse.PLAIN
    now = int(time.time() * 1000)
    owned = (acl.Grant(acl.GranteeKind.TENANT, target.owner, acl.Permission.FULL_CONTROL),
             *grants) if grants else ()
    m = Manifest(len(data), f'"{hashlib.md5(data).hexdigest()}"', now,
                 {"Content-Type": "text/plain"}, acl=owned, sse=dk.sealed)
    if len(data) <= state.config.inline_max_bytes:
        m = dataclasses.replace(m, inline=dk.crypt(b"", 0, data))
    else:
        ref = await state.data.write(_chunks(data), len(data), target.k, target.m, [],
                                     home=state.catalog.object_home(target, raw), key=dk.key)
        m = dataclasses.replace(m, parts=(ref,))
    retention, hold = object_lock.for_write(target.object_lock, {}, now)
    if retention is not None:
        m = dataclasses.replace(m, lock_mode=retention.mode, retain_until_ms=retention.until_ms,
                                legal_hold=hold)
    try:
        return await _commit(state, target, raw, m)
    except BaseException:
        state.data.forget(m.parts)
        raise


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    view = memoryview(data)
    for at in range(0, len(data), _CHUNK_BYTES):
        yield bytes(view[at:at + _CHUNK_BYTES])


async def _commit(state: State, target: BucketRecord, key: bytes, m: Manifest) -> Manifest:
    if target.versioning:
        outcome = await versioned.write_version(state.catalog, target, key, m)
        counted = outcome.settle(state.data, state.counters, target)
        if counted is not None:
            await counted
        return outcome.manifest
    old = await state.catalog.replace_object(target, key, m)
    if old is not None and old.parts:       # a retry whose first write did land
        state.data.retire(old.parts)
    await state.counters.add(target, 0 if old else 1, m.size - (old.size if old else 0))
    return m


async def deliver(state: State, batch: Batch) -> None:
    """Write one batch as one log object (its key chosen at the first attempt)."""
    dest = batch.destination
    target = await state.catalog.find_bucket(dest.config.target_bucket)
    if target is None or target.owner != dest.owner:
        raise Undeliverable(f"target bucket {dest.config.target_bucket!r} is gone or not "
                            f"{dest.owner!r}'s")
    if not batch.key:
        batch.key = bucket_logging.object_key(
            dest.config, dest.owner, state.config.region, dest.bucket, datetime.now(UTC),
            dest.event_day, secrets.token_hex(bucket_logging.unique_chars // 2).upper())
    await store(state, target, batch.key, b"".join(batch.lines), dest.config.grants)


async def flush(state: State, logs: AccessLogs, everything: bool) -> None:
    """Deliver the full batches, and with `everything` all the others too."""
    buffer = logs.buffer
    if buffer.dropped_lines:
        log.warning("access log buffer full: %d lines dropped", buffer.dropped_lines)
        buffer.dropped_lines = 0
    for batch in buffer.take(everything):
        source = batch.destination.bucket
        try:
            await deliver(state, batch)
        except Undeliverable as exc:
            buffer.done(batch)
            log.warning("access log of %s: %d lines dropped: %s", source, len(batch.lines),
                        exc)
        except Exception as exc:
            if buffer.failed(batch):
                log.info("access log of %s: delivery failed, will retry: %s", source, exc)
            else:
                log.warning("access log of %s: %d lines dropped after %d failed deliveries: "
                            "%s", source, len(batch.lines), batch.failures, exc)
        else:
            buffer.done(batch)


class Deliverer:
    """The background task of one gateway process that flushes its access logs."""

    def __init__(self, state: State, logs: AccessLogs, flush_s: float) -> None:
        self.state, self.logs, self.flush_s = state, logs, flush_s
        self._closing = False

    async def run(self) -> None:
        due = time.monotonic() + self.flush_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.logs.wake.wait(),
                                       max(0.0, due - time.monotonic()))
            self.logs.wake.clear()
            everything = self._closing or time.monotonic() >= due
            await flush(self.state, self.logs, everything)
            if everything and self._closing:
                if self.logs.buffer.held_bytes:     # failed deliveries not tried again
                    log.warning("access logs: %d bytes of lines not delivered at shutdown",
                                self.logs.buffer.held_bytes)
                return
            if everything:
                due = time.monotonic() + self.flush_s

    def close(self) -> None:
        """Make run() flush everything once more and return."""
        self._closing = True
        self.logs.wake.set()


async def cleanup_ctx(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]
    if state.access_log is None:
        yield
        return
    deliverer = Deliverer(state, state.access_log, state.config.access_log_flush_s)
    task = asyncio.create_task(deliverer.run())
    yield
    deliverer.close()
    try:
        await asyncio.wait_for(task, shutdown_flush_s_max)
    except TimeoutError:
        log.warning("access logs: the last flush did not finish in %.0f s; lines dropped",
                    shutdown_flush_s_max)
