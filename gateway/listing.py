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

from gateway import limits, list_merge
from gateway.catalog import Catalog
from gateway.list_ahead import Listed, ReadAhead
from gateway.list_merge import LIST_FIELDS, Leftover, ShardBuffer
from gateway.list_replicas import PageBatch, pick_primaries, shard_page, states_unchanged
from gateway.manifest import BucketRecord
from gateway.metastore import MetaStore
from gateway.s3xml import ListEntry, ListPage
from ring.model import Device
from storage.list_pages import Field, Page, PageQuery


async def list_page(catalog: Catalog, bucket: BucketRecord, prefix: str,
                    delimiter: str | None, max_keys: int, start_after: str | None) -> ListPage:
    if max_keys == 0:   # AWS: an empty page that is not truncated (nothing to continue)
        return ListPage([], [], False, None)
    shape = (bucket.bucket_id, prefix, delimiter or "", max_keys, start_after)
    full_prefix = catalog.record_key_of(bucket, prefix.encode())
    listed = await _AHEAD.take(shape, lambda states: states_unchanged(
        catalog.store, PageBatch(catalog.store.client), full_prefix, states))
    if listed is None:
        listed = await _listed(catalog, bucket, prefix, delimiter, max_keys, start_after)
    page = listed.page
    if page.truncated and page.next_key is not None and (
            start_after is not None or max_keys >= limits.list_ahead_first_keys_min):
        # A paging client asks for the next page next (gateway/list_ahead.py); it starts
        # from the rows the shards sent past this page's end.
        after, previous = page.next_key, listed
        _AHEAD.start((*shape[:4], after), lambda: _listed(
            catalog, bucket, prefix, delimiter, max_keys, after, previous))
    return page


async def _listed(catalog: Catalog, bucket: BucketRecord, prefix: str,
                  delimiter: str | None, max_keys: int, start_after: str | None,
                  previous: Listed | None = None) -> Listed:
    """A page; after `previous` (the page before it), from the rows its shards sent past
    its end when their running digests still hold (else from scratch)."""
    base = catalog.record_key_of(bucket, b"")
    start_at = base + prefix.encode() if not start_after else (
        base + start_after.encode("utf-8", "surrogateescape") + b"\x00")
    carry_from = None if previous is None else (previous.states, previous.leftovers)
    got = await list_rows(catalog, bucket, base, prefix, delimiter, max_keys, start_at,
                          LIST_FIELDS, carry_from)
    if got is None:     # a partition changed since the rows carried over were read
        return await _listed(catalog, bucket, prefix, delimiter, max_keys, start_after)
    rows, truncated, states, rest = got
    return Listed(_page(rows, truncated), states, rest)


Carry = tuple[dict[int, bytes] | None, dict[int, Leftover] | None]


async def list_rows(catalog: Catalog, bucket: BucketRecord, base: bytes, prefix: str,
                    delimiter: str | None, max_keys: int, start_at: bytes,
                    fields: tuple[Field, ...], carry_from: Carry | None = None
                    ) -> tuple[list[Any], bool, dict[int, bytes] | None,
                               dict[int, Leftover] | None] | None:
    """Up to `max_keys` rows (storage/list_pages.py) of the bucket's records under
    base + prefix from `start_at` on, over all its shards: the rows, whether more follow,
    the partitions' running digests and each one's rows past the end. From `carry_from`
    (a previous page's digests and leftovers) when it fits; None when those no longer
    hold."""
    full_prefix = base + prefix.encode()
    # Shards may share a metadata partition (8 shards hashed onto a small ring): each
    # partition is listed once, or its keys would come out once per shard.
    partitions = sorted({catalog.shard_partition(bucket, s) for s in range(bucket.shards)})
    hint = (bucket.name + base[:1].decode(), prefix, delimiter or "")
    dup = _HINTS.get(hint) if delimiter else 1.0
    ask = list_merge.first_ask(max_keys, len(partitions), dup)
    states: dict[int, bytes] | None = {}
    carry = None if carry_from is None else _carry(*carry_from, partitions)
    if carry is not None:
        left, states = carry
        shards = [list_merge.carried(left[p], len(base)) for p in partitions]
        fetch = tuple((i, max(limits.shard_refill_rows_min, ask - len(s.rows)))
                      for i, s in enumerate(shards) if not s.done and len(s.rows) <= ask)
    else:
        shards = [ShardBuffer(start_at, len(base)) for _ in partitions]
        fetch = tuple((i, ask) for i in range(len(partitions)))
    batch = PageBatch(catalog.store.client)
    primaries = pick_primaries([catalog.store.replicas(p) for p in partitions])
    delim = delimiter.encode() if delimiter else None
    while True:
        pages = await asyncio.gather(*(
            _fill(catalog.store, batch, partitions[i], primaries[i], shards[i],
                  PageQuery(full_prefix, start_at, n, delim, len(base), fields))
            for i, n in fetch))
        for (i, _), got in zip(fetch, pages, strict=True):
            states = _agreed(states, partitions[i], got.state)
        if states is None and carry is not None:
            return None
        step = list_merge.merge(shards, max_keys)
        if step.rows is not None:
            if delimiter:
                _HINTS.put(hint, step.duplication)
            rest = (dict(zip(partitions, list_merge.leftovers(
                shards, list_merge.row_key(step.rows[-1])), strict=True))
                    if step.truncated and step.rows else None)
            return step.rows, step.truncated, states, rest
        fetch = step.fetch


def _carry(states: dict[int, bytes] | None, leftovers: dict[int, Leftover] | None,
           partitions: list[int]) -> tuple[dict[int, Leftover], dict[int, bytes]] | None:
    """The previous page's rows past its end, with (a copy of) the running digests they were
    read at: only when it has both, for these partitions."""
    if states is None or leftovers is None or set(leftovers) != set(partitions):
        return None
    return leftovers, dict(states)


def _agreed(states: dict[int, bytes] | None, partition: int, state: bytes
            ) -> dict[int, bytes] | None:
    """The partitions' running digests so far, None once one is unknown or moved between
    two rounds of the same listing (then the page cannot be checked later by digests)."""
    if states is None or not state or states.get(partition, state) != state:
        return None
    states[partition] = state
    return states


# Per process: how much the shards' rows overlapped in the last listing of each shape
# (folders listed by every shard), so that the next one is asked in one round.
_HINTS = list_merge.DuplicationHints()
_AHEAD = ReadAhead()


def read_ahead_counts() -> tuple[int, int]:
    """Pages served from read-ahead, and pages listed ahead that were not current."""
    return _AHEAD.served, _AHEAD.stale


def configure_read_ahead(pages: int) -> None:
    """How many pages this process lists ahead at most (0: none); set at start-up."""
    global _AHEAD
    _AHEAD.close()
    _AHEAD = ReadAhead(size=pages)


def close_read_ahead() -> None:
    """Cancel the listings still running ahead (the gateway is stopping)."""
    _AHEAD.close()


async def _fill(store: MetaStore, batch: PageBatch, partition: int, primary: Device,
                buf: ShardBuffer, query: PageQuery) -> Page:
    """Ask one partition for its next page (query.start_at is replaced by where it is)."""
    assert buf.resume is not None, "a finished shard is never asked again"
    query = dataclasses.replace(query, start_at=buf.resume)
    page = await shard_page(store, batch, partition, query, primary)
    buf.add(page.rows, page.resume)
    return page


def _page(rows: list[Any], truncated: bool) -> ListPage:
    entries: list[ListEntry] = []
    prefixes: list[str] = []
    last: str | None = None
    for row in rows:
        if row.__class__ is bytes:
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
