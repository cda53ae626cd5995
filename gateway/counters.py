"""Per-bucket object and byte counters, exact across gateways and restarts.

Each gateway process owns one counter record per bucket (keyed by its random writer id), so
no two writers ever update the same record and last-writer-wins cannot lose an increment.
A bucket's totals are the sum over the records of every gateway that ever wrote to it.
Updates are batched: concurrent requests share one round (a group commit for counters),
and a request is acknowledged only after its delta is durable — in the gateway's local usage
journal, which reaches the store every `usage_flush_s` and is recovered from a killed
gateway by another (gateway.usage_journal) — so a gateway killed at any moment loses
nothing it acknowledged. The handler starts the write and the
dispatcher waits for it beside the metering write (gateway.state.defer/settle); a flush that
fails (metadata unreachable) is retried with the next change rather than turning a
committed write into an error answer.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import msgpack

from gateway.batching import BatchedWriter
from gateway.catalog import Catalog
from gateway.manifest import BucketRecord
from gateway.usage_journal import Put, UsageJournal, write_round

COUNTER_V1 = 1
_PREFIX = b"C"


@dataclass(frozen=True)
class Usage:
    objects: int
    bytes: int


class Counters:
    def __init__(self, catalog: Catalog, writer_id: int,
                 journal: UsageJournal | None = None) -> None:
        self.catalog = catalog
        self.writer = writer_id.to_bytes(8, "big")
        # With a journal a round is durable in a local file and reaches the store later
        # (gateway.usage_journal), so usage() reads this writer's totals from memory.
        self.journal = journal
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

    def _put(self, bucket_id: bytes) -> Put:
        bucket, (objects, nbytes) = self._mine[bucket_id]
        return Put(self._partition(bucket), self._record_key(bucket),
                   msgpack.packb([COUNTER_V1, objects, nbytes]))

    async def _write_round(self, bucket_ids: Collection[bytes]) -> None:
        await write_round([self._put(b) for b in bucket_ids], self.journal,
                          self.catalog.store)

    async def usage(self, bucket: BucketRecord) -> Usage:
        """Totals over every gateway's record for this bucket; this writer's own from memory
        (its stored record may be a journal flush behind; other gateways' lag as much)."""
        cursor = self.catalog.store.cursor(self._partition(bucket), _PREFIX + bucket.bucket_id,
                                           None)
        mine = self._mine.get(bucket.bucket_id)
        own_key = self._record_key(bucket) if mine is not None else None
        objects, nbytes = mine[1] if mine is not None else (0, 0)
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None and rec.key != own_key:
                _, o, b = msgpack.unpackb(rec.value)
                objects += o
                nbytes += b
        return Usage(objects, nbytes)
