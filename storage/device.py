"""One device: the storage engine that the node server drives (fragments and metadata).

Rules:
- Acknowledged means durable: every mutation returns only after the group committer has
  fdatasync'ed the segment bytes and committed the index transaction.
- Every read verifies checksums; a mismatch is never served: the record is quarantined, a
  repair job is recorded, and the caller gets Corrupt.
- Blocking work (pread, pwrite, LMDB) runs in the node's I/O threads.
- Any unexpected I/O error marks the device failed (DeviceFailed from then on); running out
  of space (capacity_bytes, ENOSPC, LMDB map full) is DeviceFull and harms nothing stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import errno
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import lmdb

from storage import faults, limits
from storage.committer import GroupCommitter
from storage.errors import (
    BadRequest,
    Corrupt,
    DeviceFailed,
    DeviceFull,
    NotFound,
    RangeNotSatisfiable,
    SegmentGone,
    StorageError,
    TooLarge,
)
from storage.index import (
    DeleteFragment,
    FragmentEntry,
    Index,
    Location,
    MetaEntry,
    Op,
    PutFragment,
    PutMeta,
    Quarantine,
    digest_group,
)
from storage.kv import KVStore, LmdbStore, MemoryStore
from storage.list_pages import STATE_ONLY, Page, PageQuery, Want
from storage.record import (
    BodyEncoder,
    Buffer,
    ChecksumMismatch,
    RecordFlag,
    RecordHead,
    RecordKind,
    body_span,
    chunk_views,
    encode_head,
    encode_record,
)
from storage.segments import SegmentFile, SegmentStore

P = ParamSpec("P")
R = TypeVar("R")
# Buffers per vectored write, well under the kernel's IOV_MAX (1024).
_IOV_MAX = 512


# Set in a background task (the scrubber): its device calls are not client activity.
_background: contextvars.ContextVar[bool] = contextvars.ContextVar("background", default=False)


def mark_background() -> None:
    """The calling task's device calls from now on are background work: they do not make
    the device look busy to work that yields to clients (Device.idle_s)."""
    _background.set(True)


class _FoundCorrupt(Exception):
    def __init__(self, entry: FragmentEntry, chunk: int) -> None:
        super().__init__(f"chunk {chunk}")
        self.entry = entry
        self.chunk = chunk


class Device:
    def __init__(self, device_id: int, path: Path, *, executor: concurrent.futures.Executor,
                 capacity_bytes: int | None = None,
                 segment_size_bytes: int = limits.segment_size_bytes_max,
                 in_memory_index: bool = False) -> None:
        self.id = device_id
        self.path = path
        self.capacity_bytes = capacity_bytes
        self._executor = executor
        self._segment_size = segment_size_bytes
        self._in_memory = in_memory_index
        self.failed_reason: str | None = None
        self._last_ts = 0
        self._foreground_at = 0.0   # monotonic time of the last call not marked background
        self.index: Index
        self.segments: SegmentStore
        self.committer: GroupCommitter

    # -- life cycle ----------------------------------------------------------------------
    async def open(self) -> None:
        await self._run(self._open_sync)
        self.committer = GroupCommitter(self.index, self.segments, self._map_error)

    def _open_sync(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        store: KVStore = MemoryStore() if self._in_memory else LmdbStore(self.path / "index.lmdb")
        self.index = Index(store)
        self.segments = SegmentStore(self.path / "segments", capacity_bytes=self.capacity_bytes,
                                     segment_size_bytes=self._segment_size)
        self.segments.extra_used = store.size_bytes
        self.segments.open()
        faults.install(self.segments, self.id)  # tests only: off unless COFFRE_FAULTS
        self._last_ts = self.index.fragment_stamp()

    async def close(self) -> None:
        await self.committer.close()
        await self._run(self._close_sync)

    def _close_sync(self) -> None:
        self.segments.close()
        self.index.close()

    @property
    def failed(self) -> bool:
        return self.failed_reason is not None

    def _map_error(self, e: BaseException) -> BaseException:
        """Turn a low-level failure into the error callers see; I/O errors fail the device."""
        if isinstance(e, StorageError):
            return e
        if isinstance(e, lmdb.MapFullError) or (
                isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)):
            return DeviceFull(str(e))
        if isinstance(e, OSError | lmdb.Error):
            self.failed_reason = f"{type(e).__name__}: {e}"
            return DeviceFailed(self.failed_reason)
        return e

    def idle_s(self) -> float:
        """Seconds since the device last served work that was not marked background."""
        return time.monotonic() - self._foreground_at

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if not _background.get():
            self._foreground_at = time.monotonic()
        return await self._call(fn, *args, **kwargs)

    async def _call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        if self.failed_reason is not None:
            raise DeviceFailed(self.failed_reason)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor,
                                          lambda: self._mapped(fn, *args, **kwargs))

    def _now(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run a short LMDB read on the event loop itself. A metadata point read is a few
        microseconds on a mapped, cached index, where the hop to a worker thread and back
        cost ~10x that (the largest part of a node's CPU per small GET); a cold page makes
        the loop wait for one page fault, which the thread only hid from other calls."""
        if self.failed_reason is not None:
            raise DeviceFailed(self.failed_reason)
        if not _background.get():
            self._foreground_at = time.monotonic()
        return self._mapped(fn, *args, **kwargs)

    def _mapped(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """fn's result, or the error callers see for its failure (_map_error)."""
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            mapped = self._map_error(e)
            if mapped is e:
                raise
            raise mapped from e

    async def run_io(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run blocking work for this device in the node's I/O threads (maintenance uses it:
        it does not count as client activity)."""
        return await self._call(fn, *args, **kwargs)

    def _next_ts(self) -> int:
        # Fragment records carry a device-local increasing stamp; rebuild-index keeps the
        # newest record of a key (a delete after a put), compaction copies stamps unchanged.
        self._last_ts = max(time.time_ns(), self._last_ts + 1)
        return self._last_ts

    # -- fragments: write ----------------------------------------------------------------
    async def put_fragment(self, partition: int, key: bytes, length: int,
                           body: AsyncIterable[bytes | bytearray | memoryview]) -> None:
        _check_key(key, partition)
        if not 0 <= length <= limits.fragment_size_bytes_max:
            raise BadRequest("fragment length out of range")
        head = RecordHead(RecordKind.FRAGMENT, RecordFlag.NONE, partition, key,
                          self._next_ts(), length, limits.chunk_size_bytes)
        head_bytes, digest = encode_head(head)
        enc = BodyEncoder(digest, length, head.chunk_size)
        region: tuple[SegmentFile, int] | None = None
        pos = 0
        bufs: list[Buffer] = []      # stored bytes not yet written: one pwritev per batch
        size = 0
        try:
            try:
                async for piece in body:
                    stored = enc.feed(piece)
                    bufs += stored
                    size += sum(len(b) for b in stored)
                    if size < limits.write_batch_bytes and len(bufs) < _IOV_MAX:
                        continue
                    if region is None:  # reserve at the first full batch: writes the head
                        region = await self._run(self.segments.reserve, head.stored_bytes,
                                                 head_bytes)
                        pos = region[1] + len(head_bytes)
                    await self._run(self.segments.pwritev, region[0], pos, bufs)
                    pos, bufs, size = pos + size, [], 0
                bufs += enc.finish()
            except ValueError as e:
                raise BadRequest(str(e)) from e
            if region is None:  # a small record goes down in one pwrite
                region = await self._run(self.segments.reserve, head.stored_bytes,
                                         b"".join([head_bytes, *bufs]))
            else:
                await self._run(self.segments.pwritev, region[0], pos, bufs)
            seg, offset = region
            loc = Location(seg.id, offset, head.head_bytes, length, head.chunk_size,
                           head.stored_bytes)
            await self.committer.submit(
                PutFragment(FragmentEntry(partition, key, head.ts, loc)), {seg.id})
            if head.stored_bytes >= limits.uncached_record_bytes_min:   # durable: clean pages
                await self._run(self.segments.drop_cached, seg, offset, head.stored_bytes)
        finally:
            if region is not None:  # committed, or abandoned as dead bytes
                self.segments.done_writing(region[0])

    async def _append_small(self, record: bytes, op: Op) -> bool:
        """Write a fragment delete record, then commit its index op."""
        # Deletes may go past the capacity a little: a full device must be able to free space.
        seg, _ = await self._run(self.segments.reserve, len(record), record,
                                 self.segments.segment_size_bytes)
        try:
            return await self.committer.submit(op, {seg.id})
        finally:
            self.segments.done_writing(seg)

    async def delete_fragment(self, partition: int, key: bytes) -> bool:
        _check_key(key, partition)
        old = await self._run(self.index.get_fragment, partition, key)
        if old is None:
            return False
        head = RecordHead(RecordKind.FRAGMENT_DELETE, RecordFlag.NONE, partition, key,
                          self._next_ts(), 4, limits.chunk_size_bytes)
        record = encode_record(head, old.loc.segment.to_bytes(4, "big"))
        return await self._append_small(record, DeleteFragment(partition, key, head.ts))

    # -- fragments: read -----------------------------------------------------------------
    async def stat_fragment(self, partition: int, key: bytes) -> FragmentEntry:
        _check_key(key, partition)
        entry = await self._run(self.index.get_fragment, partition, key)
        if entry is None:
            raise NotFound("no such fragment")
        return entry

    async def read_fragment(self, partition: int, key: bytes, offset: int = 0,
                            length: int | None = None,
                            max_bytes: int = limits.read_range_bytes_max) -> bytes:
        """A verified range in one piece; TooLarge if it would exceed max_bytes."""
        return b"".join(await self.read_fragment_views(partition, key, offset, length,
                                                       max_bytes))

    async def read_fragment_views(self, partition: int, key: bytes, offset: int = 0,
                                  length: int | None = None,
                                  max_bytes: int = limits.read_range_bytes_max
                                  ) -> list[memoryview]:
        """read_fragment as views of verified chunks, for a caller that copies them anyway
        (the RPC answer frame): the bytes are copied once instead of twice."""
        _check_key(key, partition)
        try:
            return await self._run(self._read_sync, partition, key, offset, length, max_bytes)
        except _FoundCorrupt as e:
            raise await self._quarantine(e) from None

    def _read_sync(self, partition: int, key: bytes, offset: int, length: int | None,
                   max_bytes: int) -> list[memoryview]:
        for _ in range(3):  # compaction may move the record between lookup and read
            entry = self.index.get_fragment(partition, key)
            if entry is None:
                raise NotFound("no such fragment")
            start, size = clamp_range(entry.loc.body_len, offset, length)
            if size > max_bytes:
                raise TooLarge(f"{size} bytes asked, {max_bytes} allowed in one piece")
            try:
                return self._read_verified(entry, start, size)
            except SegmentGone:
                continue
        raise SegmentGone("record kept moving")

    def _read_verified(self, entry: FragmentEntry, start: int, size: int) -> list[memoryview]:
        """The verified bytes start..start+size of a fragment, as views of its chunks."""
        if size == 0:
            return []
        loc = entry.loc
        span = body_span(loc.body_len, loc.chunk_size, start, size)
        f = self.segments.pin(loc.segment)
        try:
            stored = self.segments.pread(f, loc.offset + loc.head_bytes + span.stored_offset,
                                         span.stored_len)
        finally:
            self.segments.unpin(f)
        try:
            views = chunk_views(stored, span.first_chunk, loc.body_len, loc.chunk_size)
        except ChecksumMismatch as e:
            raise _FoundCorrupt(entry, e.chunk) from None
        return _trim(views, span.skip, size)

    async def iter_fragment(self, entry: FragmentEntry, offset: int = 0,
                            length: int | None = None) -> AsyncIterator[bytes]:
        """Verified pieces of an entry from stat_fragment (its segment may be compacted
        meanwhile: then the iterator raises SegmentGone mid-way)."""
        start, size = clamp_range(entry.loc.body_len, offset, length)
        end = start + size
        while start < end:
            step = min(limits.read_batch_bytes - start % entry.loc.chunk_size, end - start)
            try:
                yield b"".join(await self._run(self._read_verified, entry, start, step))
            except _FoundCorrupt as e:
                raise await self._quarantine(e) from None
            start += step

    async def _quarantine(self, e: _FoundCorrupt) -> Corrupt:
        entry = e.entry
        reason = f"checksum mismatch in chunk {e.chunk}"
        await self.committer.submit(
            Quarantine(False, entry.partition, entry.key, entry.loc, reason), ())
        return Corrupt(reason)

    async def list_fragments(self, partition: int, after: bytes = b"",
                             limit: int = 1000) -> list[FragmentEntry]:
        return await self._run(self.index.list_fragments, partition, after,
                               min(limit, limits.list_limit_max))

    # -- metadata --------------------------------------------------------------------------
    async def put_meta(self, partition: int, key: bytes, ts: int, value: bytes | None) -> bool:
        """Store the record if it is newer than the stored one; False when it was not."""
        applied, _ = await self.put_meta_previous(partition, key, ts, value)
        return applied

    async def put_meta_previous(self, partition: int, key: bytes, ts: int, value: bytes | None
                                ) -> tuple[bool, MetaEntry | None]:
        """put_meta, also returning the record it found there (None: none, or unreadable).

        Why: a gateway that replaces an object needs the replaced manifest (its data to free,
        its size for the counters); learning it from the write's answers saves a read quorum.
        """
        _check_key(key, partition)
        if not 0 <= ts < 2**limits.meta_ts_bits:
            raise BadRequest("ts out of range")
        if value is not None and len(value) > limits.meta_value_size_bytes_max:
            raise BadRequest("metadata value too large")
        body = value if value is not None else b""
        flags = RecordFlag.TOMBSTONE if value is None else RecordFlag.NONE
        head = RecordHead(RecordKind.META, flags, partition, key, ts, len(body),
                          limits.chunk_size_bytes)
        record = encode_record(head, body)
        # On the loop: a point read and a pwrite of a small record into the page cache cost
        # less than a thread hop; the commit's syncs stay in the committer's thread.
        old, region = self._now(self._append_meta_if_newer, head, record)
        previous = old if old is not None and old.intact else None
        if region is None:
            return False, previous
        seg, offset = region
        try:
            loc = Location(seg.id, offset, head.head_bytes, len(body), head.chunk_size,
                           head.stored_bytes)
            applied = await self.committer.submit(
                PutMeta(MetaEntry(partition, key, ts, value, loc)), {seg.id})
            if not applied:
                # A racing put of an equal or newer stamp passed the same early check and
                # committed first: that record is what this write found, not the older one
                # seen before (a caller comparing stamps, MetaStore.put_above, must see it).
                now = self._now(self.index.get_meta, partition, key)
                previous = now if now is not None and now.intact else previous
            return applied, previous
        finally:
            self.segments.done_writing(seg)

    def _append_meta_if_newer(self, head: RecordHead, record: bytes
                              ) -> tuple[MetaEntry | None, tuple[SegmentFile, int] | None]:
        # The commit checks again (a racing newer put may land in between), so this is only
        # the cheap common-case filter.
        old = self.index.get_meta(head.partition, head.key)
        if old is not None and old.ts >= head.ts:
            return old, None
        # A tombstone is how an object is deleted: like fragment deletes, it may go past the
        # capacity a little, or a full device could never be emptied.
        headroom = (self.segments.segment_size_bytes
                    if head.flags & RecordFlag.TOMBSTONE else 0)
        return old, self.segments.reserve(len(record), record, headroom)

    def peek_meta(self, partition: int, key: bytes) -> MetaEntry | None:
        """The index's record for `key`, read on the loop (see _now), its checksum not acted
        on: get_meta quarantines a damaged one, which needs the committer."""
        _check_key(key, partition)
        return self._now(self.index.get_meta, partition, key)

    async def get_meta(self, partition: int, key: bytes) -> MetaEntry | None:
        entry = self.peek_meta(partition, key)
        if entry is not None and not entry.intact:
            await self.committer.submit(
                Quarantine(True, partition, key, entry.loc, "meta value checksum"), ())
            raise Corrupt("metadata value checksum mismatch")
        return entry

    async def list_meta(self, partition: int, prefix: bytes = b"",
                        start_after: bytes | None = None, start_at: bytes | None = None,
                        limit: int = 1000, delimiter: bytes | None = None) -> list[MetaEntry]:
        entries = await self._run(self.index.list_meta, partition, prefix, start_after,
                                  start_at, min(limit, limits.list_limit_max), delimiter)
        for e in entries:
            if not e.intact:
                await self.committer.submit(
                    Quarantine(True, partition, e.key, e.loc, "meta value checksum"), ())
                raise Corrupt("metadata value checksum mismatch")
        return entries

    async def list_page(self, partition: int, query: PageQuery, with_rows: Want) -> Page:
        """A compact listing page, or only its digest, or only the partition's running
        digest (storage/list_pages.py)."""
        if with_rows == STATE_ONLY:
            return Page(b"", None, state=self._now(self.index.meta_digest, partition,
                                                   digest_group(query.prefix)))
        if query.limit <= limits.list_inline_rows_max and not query.delimiter:
            # A short flat page costs less than the hop to a worker thread and back; the
            # scan holds the GIL either way, so the thread never let the loop run meanwhile.
            page = self._now(self.index.list_page, partition, query, bool(with_rows))
        else:
            page = await self._run(self.index.list_page, partition, query, bool(with_rows))
        for key in page.corrupt:
            e = await self._run(self.index.get_meta, partition, key)
            if e is not None and not e.intact:
                await self.committer.submit(
                    Quarantine(True, partition, e.key, e.loc, "meta value checksum"), ())
        if page.corrupt:
            raise Corrupt("metadata value checksum mismatch")
        return page

    async def partition_summary(self, partition: int) -> dict[str, int | str]:
        return await self._run(self.index.partition_summary, partition)

    # -- reporting -----------------------------------------------------------------------
    async def info(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "path": str(self.path),
                                  "failed": self.failed, "failed_reason": self.failed_reason,
                                  "capacity_bytes": self.capacity_bytes}
        if self.failed:
            return out
        counts = await self._run(self.index.counts)
        used = self.segments.used_bytes() + self.segments.extra_used()
        free = await self._run(_free_bytes, self.path)
        if self.capacity_bytes is not None:
            free = max(0, min(free, self.capacity_bytes - used))
        out.update(used_bytes=used, free_bytes=free, fragments=counts["frag"],
                   meta_records=counts["meta"], quarantined=counts["quarantine"],
                   repair_jobs=counts["repair"], segments=len(self.segments.sealed_ids()) + 1,
                   commits=self.committer.batches, committed_ops=self.committer.ops)
        return out


def clamp_range(body_len: int, offset: int, length: int | None) -> tuple[int, int]:
    if offset < 0 or (length is not None and length < 0):
        raise BadRequest("negative range")
    if offset > body_len:
        raise RangeNotSatisfiable(f"offset {offset} past size {body_len}")
    size = body_len - offset if length is None else min(length, body_len - offset)
    return offset, size


def _check_key(key: bytes, partition: int) -> None:
    if len(key) > limits.key_size_bytes_max:
        raise BadRequest("key too long")
    if not 0 <= partition < 2 ** (8 * limits.partition_prefix_bytes):
        raise BadRequest("partition out of range")


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def _trim(views: list[memoryview], skip: int, size: int) -> list[memoryview]:
    """The views that hold bytes skip..skip+size of their concatenation, cut to them."""
    out: list[memoryview] = []
    for v in views:
        if skip >= len(v):
            skip -= len(v)
            continue
        piece = v[skip:skip + size]
        skip = 0
        out.append(piece)
        size -= len(piece)
        if size <= 0:
            break
    return out
