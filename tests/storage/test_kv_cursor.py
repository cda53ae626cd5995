"""A reused KV cursor (kv.py KVCursor) on LMDB and in memory: scans and single seeks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.kv import KVStore, LmdbStore, MemoryStore


@pytest.fixture(params=["lmdb", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KVStore]:
    s: KVStore = LmdbStore(tmp_path / "kv") if request.param == "lmdb" else MemoryStore()
    with s.write() as txn:
        for i in range(0, 100, 2):
            txn.put("meta", b"k%03d" % i, b"v%d" % i)
        txn.put("frag", b"k001", b"other table")
    yield s
    s.close()


def test_one_cursor_serves_many_scans_in_order(store: KVStore) -> None:
    with store.read() as txn:
        cursor = txn.cursor("meta")
        assert [k for k, _ in cursor.scan(b"k010", b"k016")] == [b"k010", b"k012", b"k014"]
        # seeking backwards on the same cursor works as a fresh one
        assert [k for k, _ in cursor.scan(b"k001", b"k005")] == [b"k002", b"k004"]
        assert list(cursor.scan(b"k099", None)) == []
        assert [v for _, v in cursor.scan(b"k097", None)] == [b"v98"]


def test_first_is_one_seek_with_the_scan_bounds(store: KVStore) -> None:
    with store.read() as txn:
        cursor = txn.cursor("meta")
        assert cursor.first(b"k011", None) == (b"k012", b"v12")
        assert cursor.first(b"k011", b"k012") is None
        assert cursor.first(b"k0999", None) is None
        assert txn.cursor("frag").first(b"", None) == (b"k001", b"other table")


def test_a_new_scan_ends_the_previous_iterator(store: KVStore) -> None:
    with store.read() as txn:
        cursor = txn.cursor("meta")
        old = cursor.scan(b"k000", None)
        assert next(old) == (b"k000", b"v0")
        assert next(cursor.scan(b"k050", None))[0] == b"k050"
        assert list(old) == []      # it would otherwise go on from the new position
        old = cursor.scan(b"k000", None)
        next(old)
        cursor.first(b"k050", None)
        assert list(old) == []
