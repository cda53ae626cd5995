"""Big segment writes are on their way to disk when pwritev returns; small ones stay dirty.

The page states are read with cachestat(2) (Linux 6.5+): how many of the file's cached pages
are dirty, i.e. what an fdatasync would still have to write. Where cachestat is missing, or
the filesystem keeps no dirty pages (tmpfs), there is nothing to see and the test skips.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from storage import limits, writeback
from storage.segments import SegmentStore

_libc = ctypes.CDLL(None, use_errno=True)
_SYS_CACHESTAT = 451            # x86_64 and aarch64 share the number
_PAGE = os.sysconf("SC_PAGE_SIZE")


class _Range(ctypes.Structure):
    _fields_ = [("off", ctypes.c_uint64), ("len", ctypes.c_uint64)]


class _Stat(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "nr_cache", "nr_dirty", "nr_writeback", "nr_evicted", "nr_recently_evicted")]


def dirty_pages(fd: int, offset: int, length: int) -> int:
    stat = _Stat()
    rc = _libc.syscall(_SYS_CACHESTAT, fd, ctypes.byref(_Range(offset, length)),
                       ctypes.byref(stat), 0)
    if rc != 0:
        pytest.skip(f"cachestat: errno {ctypes.get_errno()}")
    return int(stat.nr_dirty)


def _write(tmp_path: Path, size: int) -> tuple[int, int]:
    """Reserve and pwritev `size` bytes in a fresh store; (fd, offset) of the body."""
    store = SegmentStore(tmp_path / "segments")
    store.open()
    f, offset = store.reserve(size + 16, b"h" * 16)
    store.pwritev(f, offset + 16, [os.urandom(size // 2), os.urandom(size - size // 2)])
    return f.fd, offset + 16


def test_a_big_write_is_not_left_dirty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    if not writeback.available():
        pytest.skip("no sync_file_range on this libc")
    size = 8 * 1024 * 1024
    monkeypatch.setattr(writeback, "_sync_file_range", None)     # the control: no hint
    fd, offset = _write(tmp_path / "off", size)
    control = dirty_pages(fd, offset, size)
    if control < size // _PAGE * 9 // 10:
        pytest.skip(f"this filesystem keeps no dirty pages ({control})")
    monkeypatch.undo()
    fd, offset = _write(tmp_path / "on", size)
    assert dirty_pages(fd, offset, size) <= size // _PAGE // 10


def test_a_small_write_waits_for_the_commit(tmp_path: Path) -> None:
    size = limits.writeback_start_bytes // 2
    fd, offset = _write(tmp_path, size)
    pages = dirty_pages(fd, offset, size)
    if pages == 0:
        pytest.skip("this filesystem keeps no dirty pages")
    assert pages >= size // _PAGE * 9 // 10
