"""One page of a bucket listing: every index shard asked at once, pages merged here.

The nodes do the heavy part (storage/list_pages.py): they skip tombstones, roll a delimiter
group up into one row at its first live key and jump past the rest of it (a folder of a
million keys costs one seek), and send only the fields a listing shows. Each shard's page
is read from a read quorum of its replicas for the price of one page plus digests
(gateway/list_replicas.py); the shards' pages are merged in key order
(gateway/list_merge.py), asking a shard for more only when the page needs it.

S3 semantics kept here: start-after (or a V1 marker, or a continuation token, which is the
last key or prefix returned) excludes that key, and a common prefix that sorts at or
before it is not listed again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from gateway import list_merge
from gateway.catalog import Catalog
from gateway.list_merge import LIST_FIELDS, ShardBuffer
from gateway.list_replicas import PageBatch, pick_primaries, shard_page
from gateway.manifest import BucketRecord
from gateway.metastore import MetaStore
from gateway.s3xml import ListEntry, ListPage
from ring.model import Device
from storage.list_pages import PageQuery


async def list_page(catalog: Catalog, bucket: BucketRecord, prefix: str,
                    delimiter: str | None, max_keys: int, start_after: str | None) -> ListPage:
    base = catalog.record_key_of(bucket, b"")
    full_prefix = base + prefix.encode()
    start_at = full_prefix if not start_after else (
        base + start_after.encode("utf-8", "surrogateescape") + b"\x00")
    # Shards may share a metadata partition (8 shards hashed onto a small ring): each
    # partition is listed once, or its keys would come out once per shard.
    partitions = sorted({catalog.shard_partition(bucket, s) for s in range(bucket.shards)})
    shards = [ShardBuffer(start_at, len(base)) for _ in partitions]
    shape = (bucket.name, prefix, delimiter or "")
    dup = _HINTS.get(shape) if delimiter else 1.0
    ask = list_merge.first_ask(max_keys, len(partitions), dup)
    fetch = tuple((i, ask) for i in range(len(partitions)))
    batch = PageBatch(catalog.store.client)
    primaries = pick_primaries([catalog.store.replicas(p) for p in partitions])
    delim = delimiter.encode() if delimiter else None
    while True:
        await asyncio.gather(*(
            _fill(catalog.store, batch, partitions[i], primaries[i], shards[i],
                  PageQuery(full_prefix, start_at, n, delim, len(base), LIST_FIELDS))
            for i, n in fetch))
        step = list_merge.merge(shards, max_keys)
        if step.rows is not None:
            if delimiter:
                _HINTS.put(shape, step.duplication)
            return _page(step.rows, step.truncated)
        fetch = step.fetch


# Per process: how much the shards' rows overlapped in the last listing of each shape
# (folders listed by every shard), so that the next one is asked in one round.
_HINTS = list_merge.DuplicationHints()


async def _fill(store: MetaStore, batch: PageBatch, partition: int, primary: Device,
                buf: ShardBuffer, query: PageQuery) -> None:
    """Ask one partition for its next page (query.start_at is replaced by where it is)."""
    assert buf.resume is not None, "a finished shard is never asked again"
    query = dataclasses.replace(query, start_at=buf.resume)
    page = await shard_page(store, batch, partition, query, primary)
    buf.add(page.rows, page.resume)


def _page(rows: list[Any], truncated: bool) -> ListPage:
    entries: list[ListEntry] = []
    prefixes: list[str] = []
    last: str | None = None
    for row in rows:
        if isinstance(row, bytes):
            last = row.decode("utf-8", "surrogateescape")
            prefixes.append(last)
        else:
            entry = list_merge.to_entry(row)
            entries.append(entry)
            last = entry.key
    return ListPage(entries, prefixes, truncated, last if truncated else None)


async def bucket_is_empty(catalog: Catalog, bucket: BucketRecord) -> bool:
    page = await list_page(catalog, bucket, "", None, 1, None)
    return not page.entries
