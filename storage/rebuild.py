"""`coffre node rebuild-index`: rebuild a device's LMDB index from its segments alone.

Rules: the node must not be running on the device. The old index directory (if any) is moved
aside, never deleted, so an operator can still look at it. Every segment is scanned with the
sans-IO RecordParser, which verifies every chunk and trailer: only intact records are indexed.
For each key the newest record wins (fragments: their device stamp; a delete newer than the
put removes the key; metadata: the record's ts, tombstones kept as they were).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storage import limits
from storage.index import (
    FragmentEntry,
    Index,
    Location,
    MetaEntry,
    Op,
    PutFragment,
    PutMeta,
)
from storage.kv import LmdbStore
from storage.record import Garbage, ParsedRecord, RecordFlag, RecordKind, RecordParser
from storage.segments import list_segment_ids, segment_name

_BATCH_OPS = 10_000


@dataclass(frozen=True)
class _Seen:
    ts: int
    op: Op | None  # None: the newest record of the key is a fragment delete


def scan_segment(path: Path, seg_id: int) -> Iterator[ParsedRecord | Garbage]:
    parser = RecordParser()
    with open(path, "rb") as f:
        while piece := f.read(limits.read_batch_bytes):
            yield from parser.feed(piece)
    yield from parser.finish()


def _to_op(seg_id: int, rec: ParsedRecord) -> Op | None:
    h = rec.head
    loc = Location(seg_id, rec.offset, h.head_bytes, h.body_len, h.chunk_size, h.stored_bytes)
    if h.kind is RecordKind.FRAGMENT:
        return PutFragment(FragmentEntry(h.partition, h.key, h.ts, loc))
    if h.kind is RecordKind.META:
        value = None if h.flags & RecordFlag.TOMBSTONE else rec.body
        return PutMeta(MetaEntry(h.partition, h.key, h.ts, value, loc))
    return None


def collect(device: Path) -> tuple[dict[tuple[bool, int, bytes], _Seen], dict[str, int]]:
    newest: dict[tuple[bool, int, bytes], _Seen] = {}
    stats = {"segments": 0, "records": 0, "damaged_records": 0, "garbage_bytes": 0}
    seg_dir = device / "segments"
    for seg_id in list_segment_ids(seg_dir):
        stats["segments"] += 1
        for event in scan_segment(seg_dir / segment_name(seg_id), seg_id):
            if isinstance(event, Garbage):
                stats["garbage_bytes"] += event.length
                continue
            if not event.intact:
                stats["damaged_records"] += 1
                continue
            stats["records"] += 1
            h = event.head
            slot = (h.kind is RecordKind.META, h.partition, h.key)
            seen = newest.get(slot)
            if seen is None or h.ts > seen.ts:
                newest[slot] = _Seen(h.ts, _to_op(seg_id, event))
    return newest, stats


def rebuild_index(device: Path) -> dict[str, int]:
    newest, stats = collect(device)
    index_dir = device / "index.lmdb"
    if index_dir.exists():
        os.rename(index_dir, device / f"index.lmdb.old-{int(time.time())}")
    index = Index(LmdbStore(index_dir))
    try:
        ops = [seen.op for seen in newest.values() if seen.op is not None]
        for start in range(0, len(ops), _BATCH_OPS):
            index.apply(ops[start:start + _BATCH_OPS])
        counts = index.counts()
    finally:
        index.close()
    stats["fragments"] = counts["frag"]
    stats["meta_records"] = counts["meta"]
    return stats
