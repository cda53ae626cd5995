"""Ordered key-value stores under the index: LMDB on disk, and an in-memory twin for tests.

Rules: a store has a few named tables of bytes -> bytes, sorted by key. A write transaction is
atomic, and durable when its context exits without an exception (LMDB is opened with sync on).
A cursor (KVTxn.cursor) serves many scans of one table inside one transaction: a listing
page seeks once per delimiter group, and opening an LMDB cursor per seek cost about as much
as the seek itself. Starting a scan on a cursor ends the iterator of its previous scan.
Both stores pass the same contract tests (tests/storage/test_index_contract.py), so the index
logic on top of them (index.py) is tested once against each.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, cast

import lmdb

from storage import limits

TABLES = ("frag", "meta", "segs", "quarantine", "repair", "state", "mdig")


class KVCursor(Protocol):
    def scan(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...
    def first(self, start: bytes, stop: bytes | None) -> tuple[bytes, bytes] | None: ...


class KVTxn(Protocol):
    def cursor(self, table: str) -> KVCursor: ...
    def get(self, table: str, key: bytes) -> bytes | None: ...
    def put(self, table: str, key: bytes, value: bytes) -> None: ...
    def delete(self, table: str, key: bytes) -> bool: ...
    def scan(self, table: str, start: bytes, stop: bytes | None) -> Iterator[
        tuple[bytes, bytes]]: ...
    def last_key(self, table: str) -> bytes | None: ...
    def count(self, table: str) -> int: ...


class KVStore(Protocol):
    def read(self) -> contextlib.AbstractContextManager[KVTxn]: ...
    def write(self) -> contextlib.AbstractContextManager[KVTxn]: ...
    def size_bytes(self) -> int: ...
    def close(self) -> None: ...


class LmdbStore:
    """One LMDB environment (a device's index.lmdb/) with one named DB per table."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        # sync + metasync on: a committed transaction survives power loss (acknowledged means
        # durable). Group commit amortizes the cost over many operations.
        self._env = lmdb.open(
            str(path), map_size=limits.lmdb_map_size_bytes, max_dbs=len(TABLES) + 1,
            max_readers=limits.lmdb_max_readers, sync=True, metasync=True, readahead=False,
        )
        self._dbs = {name: self._env.open_db(name.encode()) for name in TABLES}

    @contextlib.contextmanager
    def read(self) -> Iterator[KVTxn]:
        with self._env.begin() as txn:
            yield _LmdbTxn(txn, self._dbs)

    @contextlib.contextmanager
    def write(self) -> Iterator[KVTxn]:
        with self._env.begin(write=True) as txn:
            yield _LmdbTxn(txn, self._dbs)

    def size_bytes(self) -> int:
        data = self._path / "data.mdb"
        return data.stat().st_size if data.exists() else 0

    def close(self) -> None:
        self._env.close()


class _LmdbTxn:
    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, lmdb._Database]) -> None:
        self._txn = txn
        self._dbs = dbs

    def cursor(self, table: str) -> KVCursor:
        return _LmdbCursor(self._txn.cursor(db=self._dbs[table]))

    def get(self, table: str, key: bytes) -> bytes | None:
        value = self._txn.get(key, db=self._dbs[table])
        return None if value is None else bytes(value)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[table])

    def delete(self, table: str, key: bytes) -> bool:
        return bool(self._txn.delete(key, db=self._dbs[table]))

    def scan(self, table: str, start: bytes, stop: bytes | None) -> Iterator[
            tuple[bytes, bytes]]:
        cursor = self._txn.cursor(db=self._dbs[table])
        if not cursor.set_range(start):
            return
        for raw_key, value in cursor:
            key = bytes(raw_key)
            if stop is not None and key >= stop:
                return
            yield key, bytes(value)

    def last_key(self, table: str) -> bytes | None:
        cursor = self._txn.cursor(db=self._dbs[table])
        return bytes(cursor.key()) if cursor.last() else None

    def count(self, table: str) -> int:
        return int(self._txn.stat(self._dbs[table])["entries"])


class _LmdbCursor:
    """One LMDB cursor repositioned by every scan (set_range) instead of a cursor per scan."""

    def __init__(self, cursor: lmdb.Cursor) -> None:
        self._cursor = cursor
        self._scans = 0     # a scan's iterator stops once a newer scan moved the cursor

    def scan(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        self._scans += 1
        return self._rows(self._scans, start, stop)

    def first(self, start: bytes, stop: bytes | None) -> tuple[bytes, bytes] | None:
        """The first row at or after start (below stop): one seek, no iterator."""
        self._scans += 1
        cursor = self._cursor
        if not cursor.set_range(start):
            return None
        key: bytes = cursor.key()  # type: ignore[assignment]  # buffers=False: bytes (no cast(): a call)
        if stop is not None and key >= stop:
            return None
        return key, cursor.value()  # type: ignore[return-value]

    def _rows(self, mine: int, start: bytes, stop: bytes | None) -> Iterator[
            tuple[bytes, bytes]]:
        cursor = self._cursor
        if not cursor.set_range(start):
            return
        # The environment hands out bytes (buffers=False): no copy per row.
        for key, value in cast(Iterator[tuple[bytes, bytes]], cursor.iternext()):
            if (stop is not None and key >= stop) or self._scans != mine:
                return
            yield key, value


class MemoryStore:
    """The in-memory twin: sorted key lists plus dicts; a write works on a copy (atomicity)."""

    def __init__(self) -> None:
        self._tables: dict[str, _MemTable] = {name: _MemTable() for name in TABLES}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def read(self) -> Iterator[KVTxn]:
        with self._lock:
            snapshot = self._tables
        yield _MemTxn(snapshot)

    @contextlib.contextmanager
    def write(self) -> Iterator[KVTxn]:
        with self._lock:
            draft = {name: table.copy() for name, table in self._tables.items()}
            yield _MemTxn(draft)
            self._tables = draft

    def size_bytes(self) -> int:
        return sum(t.size_bytes() for t in self._tables.values())

    def close(self) -> None:
        pass


class _MemTable:
    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.values: dict[bytes, bytes] = {}

    def copy(self) -> _MemTable:
        other = _MemTable()
        other.keys = list(self.keys)
        other.values = dict(self.values)
        return other

    def size_bytes(self) -> int:
        return sum(len(k) + len(v) for k, v in self.values.items())


class _MemTxn:
    def __init__(self, tables: dict[str, _MemTable]) -> None:
        self._t = tables

    def cursor(self, table: str) -> KVCursor:
        return _MemCursor(self, table)

    def get(self, table: str, key: bytes) -> bytes | None:
        return self._t[table].values.get(key)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        t = self._t[table]
        if len(key) > limits.lmdb_key_size_bytes_max:
            raise ValueError("key too long for LMDB")  # the twin enforces LMDB's limit too
        if key not in t.values:
            bisect.insort(t.keys, key)
        t.values[key] = value

    def delete(self, table: str, key: bytes) -> bool:
        t = self._t[table]
        if t.values.pop(key, None) is None:
            return False
        del t.keys[bisect.bisect_left(t.keys, key)]
        return True

    def scan(self, table: str, start: bytes, stop: bytes | None) -> Iterator[
            tuple[bytes, bytes]]:
        t = self._t[table]
        for i in range(bisect.bisect_left(t.keys, start), len(t.keys)):
            key = t.keys[i]
            if stop is not None and key >= stop:
                return
            yield key, t.values[key]

    def last_key(self, table: str) -> bytes | None:
        keys = self._t[table].keys
        return keys[-1] if keys else None

    def count(self, table: str) -> int:
        return len(self._t[table].keys)


class _MemCursor:
    """The twin of _LmdbCursor: same rule, a newer scan ends the previous iterator."""

    def __init__(self, txn: _MemTxn, table: str) -> None:
        self._txn = txn
        self._table = table
        self._scans = 0

    def scan(self, start: bytes, stop: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        self._scans += 1
        return self._rows(self._scans, start, stop)

    def first(self, start: bytes, stop: bytes | None) -> tuple[bytes, bytes] | None:
        self._scans += 1
        return next(iter(self._txn.scan(self._table, start, stop)), None)

    def _rows(self, mine: int, start: bytes, stop: bytes | None) -> Iterator[
            tuple[bytes, bytes]]:
        for row in self._txn.scan(self._table, start, stop):
            if self._scans != mine:
                return
            yield row
