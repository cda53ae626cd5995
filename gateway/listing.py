"""One page of a bucket listing: merge the index shards, roll keys up under a delimiter.

A common prefix is emitted once and the shard cursors then jump past every key under it
(seek to the prefix's successor); the nodes do the same inside each page (they cut a group
short at its first live key), so a folder of a million keys costs one step, not a million.
"""

from __future__ import annotations

from gateway.catalog import Catalog
from gateway.manifest import BucketRecord, Manifest
from gateway.s3xml import ListEntry, ListPage
from storage.keys import successor


async def list_page(catalog: Catalog, bucket: BucketRecord, prefix: str,
                    delimiter: str | None, max_keys: int, start_after: str | None) -> ListPage:
    after_raw = start_after.encode() if start_after else None
    cursor = catalog.object_cursor(bucket, prefix.encode(), after_raw, max_keys + 1,
                                   delimiter.encode() if delimiter else None)
    entries: list[ListEntry] = []
    prefixes: list[str] = []
    last: str | None = None
    while True:
        rec = await cursor.peek()
        if rec is None:
            return ListPage(entries, prefixes, False, None)
        if rec.value is None:
            await cursor.pop()
            continue
        key = catalog.key_of(bucket, rec.key).decode("utf-8", "surrogateescape")
        rolled = _rollup(key, prefix, delimiter)
        if rolled is not None and (after_raw is None or rolled.encode() > after_raw):
            if len(entries) + len(prefixes) >= max_keys:
                return ListPage(entries, prefixes, True, last)
            prefixes.append(rolled)
            last = rolled
        if rolled is not None:
            cursor.seek(catalog.record_key_of(bucket, successor(rolled.encode())))
            continue
        if len(entries) + len(prefixes) >= max_keys:
            return ListPage(entries, prefixes, True, last)
        await cursor.pop()
        m = Manifest.decode(rec.value)
        entries.append(ListEntry(key, m.mtime_ms, m.etag, m.size,
                                 m.headers.get("x-amz-storage-class", "STANDARD")))
        last = key


def _rollup(key: str, prefix: str, delimiter: str | None) -> str | None:
    if not delimiter:
        return None
    at = key.find(delimiter, len(prefix))
    return None if at < 0 else key[: at + len(delimiter)]


async def bucket_is_empty(catalog: Catalog, bucket: BucketRecord) -> bool:
    page = await list_page(catalog, bucket, "", None, 1, None)
    return not page.entries
