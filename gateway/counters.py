"""Per-bucket object and byte counters, exact across gateways and restarts.

Each gateway process owns one counter record per bucket (keyed by its random writer id), so
no two writers ever update the same record and last-writer-wins cannot lose an increment.
A bucket's totals are the sum over the records of every gateway that ever wrote to it.
Updates are batched: concurrent requests share one quorum write (a group commit for
counters), and a request is acknowledged only after its delta is durable, so a gateway
killed at any moment loses nothing it acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import msgpack

from gateway.catalog import Catalog
from gateway.manifest import BucketRecord

COUNTER_V1 = 1
_PREFIX = b"C"


@dataclass(frozen=True)
class Usage:
    objects: int
    bytes: int


class Counters:
    def __init__(self, catalog: Catalog, writer_id: int) -> None:
        self.catalog = catalog
        self.writer = writer_id.to_bytes(8, "big")
        self._mine: dict[bytes, tuple[BucketRecord, list[int]]] = {}   # absolute, this writer
        self._dirty: set[bytes] = set()
        self._batch: asyncio.Future[None] | None = None   # done when the next flush lands
        self._task: asyncio.Task[None] | None = None

    def _record_key(self, bucket: BucketRecord) -> bytes:
        return _PREFIX + bucket.bucket_id + self.writer

    def _partition(self, bucket: BucketRecord) -> int:
        return self.catalog.shard_partition(bucket, 0)

    async def add(self, bucket: BucketRecord, objects: int, nbytes: int) -> None:
        """Apply a delta; returns once it is durable (batched with concurrent callers)."""
        if objects == 0 and nbytes == 0:
            return
        entry = self._mine.setdefault(bucket.bucket_id, (bucket, [0, 0]))
        entry[1][0] += objects
        entry[1][1] += nbytes
        self._dirty.add(bucket.bucket_id)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
        batch = self._batch
        if self._task is None:
            self._task = asyncio.ensure_future(self._flusher())
        await asyncio.shield(batch)

    async def _flusher(self) -> None:
        """Write dirty records until none are left; each round answers its waiters."""
        try:
            while self._dirty:
                dirty, self._dirty = self._dirty, set()
                batch, self._batch = self._batch, None
                try:
                    await asyncio.gather(*(self._write(b) for b in dirty))
                except Exception as exc:
                    # Values are absolute, so the next add() retries them safely; stop here
                    # rather than spin while the metadata replicas are unreachable.
                    self._dirty |= dirty
                    if batch is not None:
                        batch.set_exception(exc)
                        batch.exception()       # retrieved: no "never retrieved" warning
                    break
                if batch is not None:
                    batch.set_result(None)
        finally:
            self._task = None

    async def _write(self, bucket_id: bytes) -> None:
        bucket, (objects, nbytes) = self._mine[bucket_id]
        value: bytes = msgpack.packb([COUNTER_V1, objects, nbytes])
        await self.catalog.store.put(self._partition(bucket), self._record_key(bucket), value)

    async def usage(self, bucket: BucketRecord) -> Usage:
        """Totals over every gateway's record for this bucket."""
        cursor = self.catalog.store.cursor(self._partition(bucket), _PREFIX + bucket.bucket_id,
                                           None)
        objects = nbytes = 0
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                _, o, b = msgpack.unpackb(rec.value)
                objects += o
                nbytes += b
        return Usage(objects, nbytes)
