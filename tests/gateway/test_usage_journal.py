"""gateway/usage_journal.py: records are durable in the file before the store has them, reach
the store with a flush, survive a failed flush, and a dead writer's journal is written to
the store by another gateway (and a live one's never)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.usage_journal import Put, UsageJournal, decode, encode, latest


class FakeStore:
    def __init__(self) -> None:
        self.records: dict[tuple[int, bytes], bytes | None] = {}
        self.fail: Exception | None = None
        self.puts = 0

    async def put(self, partition: int, key: bytes, value: bytes | None,
                  ts: int | None = None) -> int:
        if self.fail is not None:
            raise self.fail
        self.puts += 1
        self.records[(partition, key)] = value
        return 0


def _files(d: Path, suffix: str = ".jnl") -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(suffix))


def test_format_round_trip_and_a_torn_or_corrupt_tail_ends_replay() -> None:
    puts = [Put(3, b"k1", b"v1"), Put(7, b"k2", b"\x00" * 40), Put(3, b"k1", b"v2")]
    data = encode(puts)
    assert decode(data) == puts
    assert latest(puts) == {(3, b"k1"): b"v2", (7, b"k2"): b"\x00" * 40}
    for cut in range(1, len(encode(puts[-1:])) + 1):      # the last record torn anywhere
        assert decode(data[:-cut]) == puts[:2]
    flipped = bytearray(data)
    flipped[-1] ^= 1                                        # the last payload corrupt
    assert decode(bytes(flipped)) == puts[:2]


async def test_appended_records_reach_the_store_on_flush_and_their_files_go(
        tmp_path: Path) -> None:
    store = FakeStore()
    j = UsageJournal(tmp_path, 1, store)
    await j.append([Put(1, b"a", b"1")])
    await j.append([Put(1, b"a", b"2"), Put(2, b"b", b"9")])
    assert store.records == {}                      # not yet: durable here only
    assert decode((tmp_path / _files(tmp_path)[0]).read_bytes())[-1] == Put(2, b"b", b"9")
    await j.flush()
    assert store.records == {(1, b"a"): b"2", (2, b"b"): b"9"} and store.puts == 2
    assert len(_files(tmp_path)) == 1               # only the (empty) current file is left
    await j.flush()                                 # nothing new: no store write
    assert store.puts == 2
    await j.close()
    assert os.listdir(tmp_path) == []


async def test_a_failed_flush_keeps_records_and_files_until_one_succeeds(
        tmp_path: Path) -> None:
    store = FakeStore()
    j = UsageJournal(tmp_path, 1, store)
    await j.append([Put(1, b"a", b"1")])
    store.fail = ConnectionError("quorum lost")
    with pytest.raises(ConnectionError):
        await j.flush()
    await j.append([Put(1, b"a", b"2")])            # newer than what failed to go
    assert len(_files(tmp_path)) == 2
    for _ in range(2):                              # the outage goes on
        with pytest.raises(ConnectionError):
            await j.flush()
    assert len(_files(tmp_path)) == 3               # one new file, for the append only
    store.fail = None
    await j.flush()
    assert store.records == {(1, b"a"): b"2"}
    assert len(_files(tmp_path)) == 1
    await j.close()


async def test_a_dead_writers_journal_is_recovered_and_a_live_ones_is_not(
        tmp_path: Path) -> None:
    store = FakeStore()
    dead = UsageJournal(tmp_path, 0xDEAD, store)
    live = UsageJournal(tmp_path, 0xBEEF, store)
    await dead.append([Put(5, b"x", b"1"), Put(5, b"x", b"3")])
    await live.append([Put(6, b"y", b"1")])
    assert await live.recover() == 0 and store.records == {}    # both alive
    # The writer dies (SIGKILL: its descriptors close, its lock is released).
    os.close(dead._fd)
    os.close(dead._lock_fd)
    finder = UsageJournal(tmp_path, 0xF00D, store)
    assert await finder.recover() == 1
    assert store.records == {(5, b"x"): b"3"}                   # live's records still wait
    assert not [n for n in os.listdir(tmp_path) if n.startswith(f"{0xDEAD:016x}")]
    assert await finder.recover() == 0                          # once only
    await live.close()
    await finder.close()
    assert store.records[(6, b"y")] == b"1" and os.listdir(tmp_path) == []


async def test_close_with_the_store_down_leaves_the_journal_for_recovery(
        tmp_path: Path) -> None:
    store = FakeStore()
    j = UsageJournal(tmp_path, 1, store)
    await j.append([Put(1, b"a", b"7")])
    store.fail = ConnectionError("quorum lost")
    await j.close()                                 # logged, not raised
    store.fail = None
    other = UsageJournal(tmp_path, 2, store)
    assert await other.recover() == 1 and store.records == {(1, b"a"): b"7"}
    await other.close()
