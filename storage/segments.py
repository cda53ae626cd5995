"""Segment files of one device: reserve a region, pwrite into it, fdatasync, pread, retire.

Rules:
- Files are `segments/NNNNNN.seg`, append-only. Each process start opens a fresh active
  segment, so the unacknowledged tail a crash may have left in the previous one is never
  written over; it is dead space that compaction reclaims.
- reserve() hands out disjoint regions of known length under a lock and writes the record's
  head into the region at once, so every later fdatasync covers all earlier heads and a scan
  can always hop from one head to the next. The body is pwritten outside the lock, so
  concurrent streams never interleave and never wait for each other.
- Readers pin a segment while reading; retire() unlinks the file at once and closes the
  descriptor when the last reader leaves (compaction under live reads).
- All methods block: they run in worker threads, never on the event loop.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from storage import limits, writeback
from storage.errors import DeviceFull, SegmentGone


@dataclass
class SegmentFile:
    id: int
    path: Path
    fd: int
    end: int  # bytes handed out so far (reserved regions, not necessarily written)
    pins: int = 0
    writers: int = 0  # reservations not yet committed or abandoned: compaction must wait
    retired: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Bytes written since the last fdatasync began (approximate: writers in several threads
    # add to it unlocked); tells the group commit whether a sync is short (committer.py).
    unsynced: int = 0


def segment_name(seg_id: int) -> str:
    return f"{seg_id:06d}.seg"


def list_segment_ids(directory: Path) -> list[int]:
    ids = []
    for p in directory.glob("*.seg"):
        if p.stem.isascii() and p.stem.isdigit():
            ids.append(int(p.stem))
    return sorted(ids)


class SegmentStore:
    def __init__(self, directory: Path, *, segment_size_bytes: int = limits.segment_size_bytes_max,
                 capacity_bytes: int | None = None) -> None:
        self.dir = directory
        self.segment_size_bytes = segment_size_bytes
        self.capacity_bytes = capacity_bytes
        self._files: dict[int, SegmentFile] = {}
        self._lock = threading.Lock()
        self._active: SegmentFile | None = None
        self._used = 0  # sum of `end` over live segment files
        # Bytes used outside the segments (the index), counted against capacity_bytes.
        self.extra_used: Callable[[], int] = _zero

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for seg_id in list_segment_ids(self.dir):
            path = self.dir / segment_name(seg_id)
            fd = os.open(path, os.O_RDWR)
            size = os.fstat(fd).st_size
            self._files[seg_id] = SegmentFile(seg_id, path, fd, size)
            self._used += size
        self._roll()

    def close(self) -> None:
        with self._lock:
            for f in self._files.values():
                os.close(f.fd)
            self._files.clear()
            self._active = None

    def _roll(self) -> SegmentFile:
        seg_id = max(self._files, default=0) + 1
        path = self.dir / segment_name(seg_id)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        f = SegmentFile(seg_id, path, fd, 0)
        self._files[seg_id] = f
        self._active = f
        _fsync_dir(self.dir)  # the new name must survive a crash before anything in it is acked
        return f

    # -- writing ---------------------------------------------------------------------------
    def reserve(self, size: int, first: bytes, headroom_bytes: int = 0
                ) -> tuple[SegmentFile, int]:
        """Hand out `size` bytes in the active segment and write `first` at their start.

        headroom_bytes lets compaction go past the capacity by that much: it must copy before
        it can free, and a full device must still be able to reclaim its deleted space."""
        assert len(first) <= size
        with self._lock:
            if self.capacity_bytes is not None and (self._used + size + self.extra_used()
                                                    > self.capacity_bytes + headroom_bytes):
                raise DeviceFull("device capacity reached")
            f = self._active
            if f is None or f.end >= self.segment_size_bytes:
                f = self._roll()
            offset = f.end
            f.end += size
            self._used += size
            f.writers += 1
            try:
                self.pwritev(f, offset, (first,))
            except BaseException:
                f.writers -= 1
                raise
            return f, offset

    def done_writing(self, f: SegmentFile) -> None:
        """The record reserved in f was committed to the index, or abandoned."""
        with self._lock:
            f.writers -= 1

    def busy(self, seg_id: int) -> bool:
        with self._lock:
            f = self._files.get(seg_id)
            return f is not None and f.writers > 0

    def pwrite(self, f: SegmentFile, offset: int, data: bytes | bytearray | memoryview) -> None:
        self.pwritev(f, offset, (data,))

    def pwritev(self, f: SegmentFile, offset: int,
                buffers: Sequence[bytes | bytearray | memoryview]) -> None:
        """Write the buffers back to back from offset: one system call for a batch of
        pieces, no joined copy of them (record bodies arrive as views, record.py). Every
        write to a segment goes through here, so fault injection (faults.py) sees them all."""
        views = [memoryview(b).cast("B") for b in buffers if len(b)]
        start, total = offset, sum(len(v) for v in views)
        while views:
            try:
                n = os.pwritev(f.fd, views, offset)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise DeviceFull("no space left on device") from e
                raise
            offset += n
            f.unsynced += n
            while views and n >= len(views[0]):      # a short write: resume where it stopped
                n -= len(views[0])
                views.pop(0)
            if n:
                views[0] = views[0][n:]
        if total >= limits.writeback_start_bytes:
            # Big writes go to disk now, overlapping the stream (writeback.py); small ones
            # wait for the group commit's fdatasync, which comes within milliseconds.
            writeback.start(f.fd, start, total)

    def sync(self, seg_ids: set[int]) -> None:
        for seg_id in seg_ids:
            f = self._files.get(seg_id)
            if f is not None and not f.retired:
                pending = f.unsynced
                os.fdatasync(f.fd)
                f.unsynced = max(0, f.unsynced - pending)

    def unsynced_bytes(self, seg_ids: set[int]) -> int:
        """What a sync of these segments would write out, about."""
        return sum(f.unsynced for i in seg_ids if (f := self._files.get(i)) is not None)

    # -- reading ---------------------------------------------------------------------------
    def pin(self, seg_id: int) -> SegmentFile:
        with self._lock:
            f = self._files.get(seg_id)
            if f is None or f.retired:
                raise SegmentGone(f"segment {seg_id} is gone")
            f.pins += 1
            return f

    def unpin(self, f: SegmentFile) -> None:
        with self._lock:
            f.pins -= 1
            if f.retired and f.pins == 0:
                os.close(f.fd)

    def pread(self, f: SegmentFile, offset: int, size: int) -> bytes:
        out = os.pread(f.fd, size, offset)
        while len(out) < size:
            more = os.pread(f.fd, size - len(out), offset + len(out))
            if not more:
                break  # a truncated segment: the caller's checksum check refuses it
            out += more
        return out

    @staticmethod
    def drop_cached(f: SegmentFile, offset: int, size: int) -> None:
        """Let the kernel drop this range's clean pages from its cache (once fdatasync'ed:
        see limits.uncached_record_bytes_min). f is pinned or reserved by the caller."""
        os.posix_fadvise(f.fd, offset, size, os.POSIX_FADV_DONTNEED)

    # -- accounting and retirement ---------------------------------------------------------
    def sealed_ids(self) -> list[int]:
        with self._lock:
            active = self._active.id if self._active else -1
            return sorted(i for i in self._files if i != active)

    def active_id(self) -> int:
        with self._lock:
            return self._active.id if self._active else -1

    def exists(self, seg_id: int) -> bool:
        with self._lock:
            return seg_id in self._files

    def size_of(self, seg_id: int) -> int:
        with self._lock:
            f = self._files.get(seg_id)
            return f.end if f else 0

    def used_bytes(self) -> int:
        with self._lock:
            return self._used

    def retire(self, seg_id: int) -> None:
        with self._lock:
            f = self._files.pop(seg_id, None)
            if f is None:
                return
            f.retired = True
            self._used -= f.end
            os.unlink(f.path)
            if f.pins == 0:
                os.close(f.fd)
        _fsync_dir(self.dir)


def _zero() -> int:
    return 0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
