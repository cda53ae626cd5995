"""A gateway's local journal of its metering records: durable now, in the store later.

Why: metering must lose nothing a gateway acknowledged, even a gateway killed with SIGKILL.
Writing each round of counts to the metadata replicas before answering kept that promise at
the price of a quorum write (five node commits, each with its fdatasyncs) per group of
requests: ~40 % of the CPU of a small GET. The journal keeps the same promise with one local
fdatasync per group: the round's changed records are appended here and synced before its
requests are answered, and every `flush_s` the latest value of each record goes to the
store. Records hold absolute totals, so writing one twice (after a crash) is harmless.

Files, in one directory that the gateways of a host share:
- `<writer>.lock`: held (flock) by the live gateway process whose writer id is <writer>
  (16 hex digits);
- `<writer>.<seq>.jnl`: its journal, one file per flush interval; deleted once every record
  in it is in the store.
A lock file that nobody holds belongs to a dead writer: the gateway that finds it writes the
dead writer's latest values to the store, then deletes its files. A writer whose host is
lost for good loses its last `flush_s` of counts: the price of a local journal.

A record: u32 payload length, u32 CRC32 of the payload, then the payload, msgpack
[JOURNAL_V1, partition, key, value]. A torn or corrupt tail (a crash mid-append, so never
acknowledged) ends a file's replay.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import struct
import zlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgpack

log = logging.getLogger("coffre.usage_journal")

JOURNAL_V1 = 1
_HEAD = struct.Struct(">II")        # payload length, CRC32 of the payload
_LOCK_SUFFIX = ".lock"
_FILE_SUFFIX = ".jnl"


@dataclass(frozen=True)
class Put:
    """One record write: the value of `key` in metadata partition `partition`."""

    partition: int
    key: bytes
    value: bytes


class Store(Protocol):
    async def put(self, partition: int, key: bytes, value: bytes | None,
                  ts: int | None = None) -> int: ...


# ---- the file format (pure) ---------------------------------------------------------------


def encode(puts: Iterable[Put]) -> bytes:
    out = bytearray()
    for p in puts:
        payload = msgpack.packb([JOURNAL_V1, p.partition, p.key, p.value], use_bin_type=True)
        out += _HEAD.pack(len(payload), zlib.crc32(payload)) + payload
    return bytes(out)


def decode(data: bytes) -> list[Put]:
    """The records of a journal file, up to the first torn or corrupt one."""
    puts = []
    at = 0
    while at + _HEAD.size <= len(data):
        size, crc = _HEAD.unpack_from(data, at)
        payload = data[at + _HEAD.size:at + _HEAD.size + size]
        if len(payload) < size or zlib.crc32(payload) != crc:
            break
        try:
            version, partition, key, value = msgpack.unpackb(payload, raw=False)
        except (ValueError, TypeError, msgpack.UnpackException):
            break
        if version != JOURNAL_V1:
            raise ValueError(f"usage journal record version {version}")
        puts.append(Put(int(partition), bytes(key), bytes(value)))
        at += _HEAD.size + size
    return puts


def latest(puts: Iterable[Put]) -> dict[tuple[int, bytes], bytes]:
    """The last value of each record (later puts hold larger absolute totals)."""
    return {(p.partition, p.key): p.value for p in puts}


# ---- blocking file work (run in a thread) -------------------------------------------------


def _append_sync(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fdatasync(fd)


def _create_sync(directory: Path, name: str) -> int:
    fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)            # the new name is durable before a record in it is
    finally:
        os.close(dir_fd)
    return fd


def _read_files_sync(paths: Sequence[Path]) -> list[Put]:
    puts: list[Put] = []
    for path in paths:
        puts.extend(decode(path.read_bytes()))
    return puts


def _unlink_all(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _seq(path: Path) -> int:
    return int(path.name.split(".")[1])


async def _put_all(store: Store, values: dict[tuple[int, bytes], bytes]) -> None:
    await asyncio.gather(*(store.put(part, key, value)
                           for (part, key), value in values.items()))


async def write_round(puts: Sequence[Put], journal: UsageJournal | None, store: Store) -> None:
    """Make one group commit's records durable: in the journal, or else in the store."""
    if journal is not None:
        await journal.append(puts)
    else:
        await _put_all(store, latest(puts))


class UsageJournal:
    """One writer's journal: append (durable at once), flush (to the store), recover (the
    journals of dead writers)."""

    def __init__(self, directory: Path, writer: int, store: Store) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory, self.store = directory, store
        self.name = f"{writer:016x}"
        self._lock_fd = os.open(directory / (self.name + _LOCK_SUFFIX),
                                os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)     # a fresh id: free
        self._seq = 0
        self._fd = _create_sync(directory, self._file_name(0))
        self._fresh = True              # nothing appended to the current file yet
        self._pending: dict[tuple[int, bytes], bytes] = {}   # appended, not yet in the store
        self._flushed_later: list[Path] = []        # closed files whose records are pending
        self._file_lock = asyncio.Lock()            # appends and rotation, one at a time
        self._flush_lock = asyncio.Lock()

    def _file_name(self, seq: int) -> str:
        return f"{self.name}.{seq:010d}{_FILE_SUFFIX}"

    async def append(self, puts: Sequence[Put]) -> None:
        """Make `puts` durable here; they reach the store with a later flush."""
        data = encode(puts)
        loop = asyncio.get_running_loop()
        async with self._file_lock:
            await loop.run_in_executor(None, _append_sync, self._fd, data)
            self._fresh = False
            self._pending.update(latest(puts))     # before a rotation can close the file

    async def flush(self) -> None:
        """Write every appended record's latest value to the store, then drop the files
        that held them. On failure the records stay pending (and their files kept)."""
        async with self._flush_lock:
            if not self._pending:
                return
            await self._rotate()
            batch, self._pending = self._pending, {}
            done = list(self._flushed_later)
            try:
                await _put_all(self.store, batch)
            except Exception:
                for k, v in batch.items():
                    self._pending.setdefault(k, v)      # a newer append keeps its value
                raise
            self._flushed_later = []        # (no rotation ran meanwhile: the flush lock)
            await asyncio.get_running_loop().run_in_executor(None, _unlink_all, done)

    async def _rotate(self) -> None:
        """Close the current file (its records are all pending) and start the next; a file
        nothing was appended to is kept (a store outage retries without new files)."""
        loop = asyncio.get_running_loop()
        async with self._file_lock:
            if self._fresh:
                return
            self._fresh = True
            self._seq += 1
            fd = await loop.run_in_executor(None, _create_sync, self.directory,
                                            self._file_name(self._seq))
            old, self._fd = self._fd, fd
            os.close(old)
            self._flushed_later.append(self.directory / self._file_name(self._seq - 1))

    async def recover(self) -> int:
        """Write the journals of dead writers (lock files nobody holds) to the store and
        delete them; return how many writers were recovered."""
        recovered = 0
        for lock_path in sorted(self.directory.glob("*" + _LOCK_SUFFIX)):
            if lock_path.name != self.name + _LOCK_SUFFIX and await self._recover_one(lock_path):
                recovered += 1
        return recovered

    async def _recover_one(self, lock_path: Path) -> bool:
        try:
            fd = os.open(lock_path, os.O_RDWR)      # never O_CREAT: recovered already
        except FileNotFoundError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False                    # its writer is alive
            writer = lock_path.name[:-len(_LOCK_SUFFIX)]
            files = sorted(self.directory.glob(f"{writer}.*{_FILE_SUFFIX}"), key=_seq)
            loop = asyncio.get_running_loop()
            puts = await loop.run_in_executor(None, _read_files_sync, files)
            await _put_all(self.store, latest(puts))
            await loop.run_in_executor(None, _unlink_all, [*files, lock_path])
            log.info("usage journal: wrote %d records of dead writer %s", len(puts), writer)
            return True
        finally:
            os.close(fd)

    async def run(self, flush_s: float) -> None:
        """Every flush_s: this journal's records to the store, and the journals of dead
        writers (a gateway of this host that was killed) too."""
        while True:
            try:
                await self.recover()
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("usage journal flush failed, will retry: %s", exc)
            await asyncio.sleep(flush_s)

    async def serve(self, flush_s: float) -> AsyncIterator[None]:
        """For an aiohttp cleanup_ctx: flushes while the app runs, a last time after."""
        task = asyncio.create_task(self.run(flush_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.close()

    async def close(self) -> None:
        """Flush, then remove this writer's files; if the store is unreachable they stay
        (unlocked) for another gateway to recover."""
        try:
            await self.flush()
        except Exception as exc:
            log.warning("usage journal: last flush failed, left for recovery: %s", exc)
        else:       # the lock file goes while still held: no one recovers it meanwhile
            _unlink_all([self.directory / self._file_name(self._seq),
                         self.directory / (self.name + _LOCK_SUFFIX)])
        finally:
            os.close(self._fd)
            os.close(self._lock_fd)
