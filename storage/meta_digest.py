"""A running digest of each partition's metadata records: what a listing compares across
replicas without scanning them.

The digest of a partition is the XOR of xxh3_128(key, stamp) over every record it holds,
tombstones included, and the record count; it is updated in the same LMDB transaction as
every change to the records (storage/index.py, the one write path), so it always describes
exactly the snapshot a reader sees. Two replicas with equal digests hold the same keys at
the same stamps (a stamp names one write, so the values are the same too): any listing page
one of them builds is the page the other would build. Reading it costs one LMDB get, where
a page digest (storage/list_pages.py) costs a scan of the page's range.

The index keeps one such digest per partition and one per key group of it (records whose
keys share their first limits.digest_group_bytes bytes: one bucket's objects), so that a
listing compares only the records it can list (storage/index.py, digest_group).

XOR makes the update order-free (a put removes the old record's term and adds the new
one's); the count guards against pairs of terms cancelling out.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import xxhash

SIZE = 24                   # 16 bytes of XOR, 8 of count
EMPTY = bytes(SIZE)


def term(key: bytes, ts: bytes) -> int:
    """One record's share of the digest (`ts`: its 16-byte stamp)."""
    return int.from_bytes(
        xxhash.xxh3_128_digest(len(key).to_bytes(2, "big") + key + ts), "big")


def count(digest: bytes) -> int:
    """How many records a digest covers."""
    return int.from_bytes(digest[16:SIZE], "big")


def fold(digest: bytes | None, change: int, count_delta: int) -> bytes:
    """The digest after XOR-ing in `change` (terms added or removed) and counting."""
    acc = int.from_bytes(digest[:16], "big") if digest else 0
    records = count(digest) if digest else 0
    return (acc ^ change).to_bytes(16, "big") + (records + count_delta).to_bytes(8, "big")
