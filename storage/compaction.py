"""Compaction: rewrite a sealed segment whose live fraction fell low, under live traffic.

Rules:
- Only sealed segments with no write in flight (SegmentFile.writers == 0) are compacted, so
  the index cannot later point into a segment that compaction judged dead.
- A record is live when the index points at it (fragments, metadata) or, for a fragment
  delete, when the segment of the record it deleted still exists (so rebuild-index cannot
  resurrect that record). Live records are copied byte for byte (their checksums travel with
  them) into the active segment, and the index is switched with a conditional Relocate: a
  record overwritten or deleted meanwhile stays as the writer left it.
- The old segment is dropped from the index and unlinked only after the copies are durable;
  readers still holding it keep reading (segments.retire closes it after the last one).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

from storage import limits
from storage.device import Device
from storage.errors import DeviceFull
from storage.index import DropSegment, Location, Op, Relocate
from storage.record import (
    HEAD_FIXED_BYTES,
    MAGIC,
    FormatError,
    RecordHead,
    RecordKind,
    decode_head,
)
from storage.segments import SegmentFile, SegmentStore

_HEAD_READ_BYTES = HEAD_FIXED_BYTES + limits.key_size_bytes_max


@dataclass(frozen=True)
class CompactionResult:
    segment: int
    records_copied: int
    bytes_copied: int
    bytes_freed: int


def walk_heads(store: SegmentStore, f: SegmentFile) -> Iterator[tuple[int, RecordHead]]:
    """(offset, head) of every record with a valid head, hopping by length; after a damaged
    head, resume at the next place where a valid head is found."""
    pos, end = 0, f.end
    while pos < end:
        try:
            head = decode_head(store.pread(f, pos, min(_HEAD_READ_BYTES, end - pos)))
        except FormatError:
            pos = _next_head(store, f, pos + 1, end)
            continue
        yield pos, head
        pos += head.stored_bytes


def _next_head(store: SegmentStore, f: SegmentFile, pos: int, end: int) -> int:
    while pos < end:
        piece = store.pread(f, pos, min(limits.read_batch_bytes, end - pos))
        at = piece.find(MAGIC)
        while at >= 0:
            try:
                decode_head(store.pread(f, pos + at, _HEAD_READ_BYTES))
                return pos + at
            except FormatError:
                at = piece.find(MAGIC, at + 1)
        pos += max(1, len(piece) - len(MAGIC) + 1)
    return end


def _is_live(dev: Device, seg_id: int, offset: int, head: RecordHead) -> bool:
    if head.kind is RecordKind.FRAGMENT:
        fe = dev.index.get_fragment(head.partition, head.key)
        return fe is not None and (fe.loc.segment, fe.loc.offset) == (seg_id, offset)
    if head.kind is RecordKind.META:
        me = dev.index.get_meta(head.partition, head.key)
        return me is not None and (me.loc.segment, me.loc.offset) == (seg_id, offset)
    f = dev.segments.pin(seg_id)
    try:
        target = int.from_bytes(dev.segments.pread(f, offset + head.head_bytes, 4), "big")
    finally:
        dev.segments.unpin(f)
    return target != seg_id and dev.segments.exists(target)


def _copy(store: SegmentStore, src: SegmentFile, offset: int, size: int
          ) -> tuple[SegmentFile, int]:
    """Copy one stored record into the active segment; the destination stays reserved (busy
    for compaction) until the caller's done_writing."""
    first = store.pread(src, offset, min(size, limits.write_batch_bytes))
    dst, dst_offset = store.reserve(size, first, headroom_bytes=store.segment_size_bytes)
    done = len(first)
    while done < size:
        piece = store.pread(src, offset + done, min(size - done, limits.write_batch_bytes))
        store.pwrite(dst, dst_offset + done, piece)
        done += len(piece)
    return dst, dst_offset


def copy_live_records(dev: Device, seg_id: int
                      ) -> tuple[list[tuple[Op | None, SegmentFile]], int]:
    """Blocking: copy the live records of seg_id; return their Relocate ops and bytes."""
    store = dev.segments
    src = store.pin(seg_id)
    out: list[tuple[Op | None, SegmentFile]] = []
    copied = 0
    try:
        for offset, head in walk_heads(store, src):
            if not _is_live(dev, seg_id, offset, head):
                continue
            dst, new_offset = _copy(store, src, offset, head.stored_bytes)
            copied += head.stored_bytes
            old = Location(seg_id, offset, head.head_bytes, head.body_len, head.chunk_size,
                           head.stored_bytes)
            new = Location(dst.id, new_offset, head.head_bytes, head.body_len,
                           head.chunk_size, head.stored_bytes)
            if head.kind is RecordKind.FRAGMENT_DELETE:
                out.append((None, dst))  # a moved tombstone only needs to be durable
            else:
                out.append((Relocate(head.kind is RecordKind.META, head.partition, head.key,
                                     old, new), dst))
    except BaseException:
        for _, dst in out:
            store.done_writing(dst)
        raise
    finally:
        store.unpin(src)
    return out, copied


async def compact_segment(dev: Device, seg_id: int) -> CompactionResult:
    size = dev.segments.size_of(seg_id)
    copies, copied = await dev.run_io(copy_live_records, dev, seg_id)
    try:
        written = {dst.id for _, dst in copies}
        # Submitted together, the relocations share one group commit.
        await asyncio.gather(*(dev.committer.submit(op, {dst.id}) for op, dst in copies))
        # One more commit syncs every segment we copied into before the old one goes.
        await dev.committer.submit(DropSegment(seg_id), written)
    finally:
        for _, dst in copies:
            dev.segments.done_writing(dst)
    await dev.run_io(dev.segments.retire, seg_id)
    return CompactionResult(seg_id, len(copies), copied, size)


def candidates(dev: Device, live_fraction_min: float = limits.compaction_live_fraction_min
               ) -> list[int]:
    """Blocking: sealed, idle segments whose live fraction is below the threshold."""
    live = dev.index.segment_live_bytes()
    out = []
    for seg_id in dev.segments.sealed_ids():
        size = dev.segments.size_of(seg_id)
        if dev.segments.busy(seg_id):
            continue
        if size == 0 or live.get(seg_id, 0) < live_fraction_min * size:
            out.append(seg_id)
    return out


async def compact_device(dev: Device, live_fraction_min: float =
                         limits.compaction_live_fraction_min) -> list[CompactionResult]:
    results = []
    for seg_id in await dev.run_io(candidates, dev, live_fraction_min):
        try:
            results.append(await compact_segment(dev, seg_id))
        except DeviceFull:
            break  # no room to copy into; try again after space was freed elsewhere
    return results
