"""Per-bucket object and byte counters, exact across gateways and restarts.

Each gateway process owns one counter record per bucket (keyed by its random writer id), so
no two writers ever update the same record and last-writer-wins cannot lose an increment.
A bucket's totals are the sum over the records of every gateway that ever wrote to it.
Updates are batched: concurrent requests share one quorum write (a group commit for
counters), and a request is acknowledged only after its delta is durable, so a gateway
killed at any moment loses nothing it acknowledged. The handler starts the write and the
dispatcher waits for it beside the metering write (gateway.state.defer/settle); a flush that
fails (metadata unreachable) is retried with the next change rather than turning a
committed write into an error answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

import msgpack

from gateway.batching import BatchedWriter
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
        self._writer: BatchedWriter[bytes] = BatchedWriter(self._write_round)

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
        await self._writer.changed(bucket.bucket_id)

    async def _write_round(self, bucket_ids: Collection[bytes]) -> None:
        await asyncio.gather(*(self._write(b) for b in bucket_ids))

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
