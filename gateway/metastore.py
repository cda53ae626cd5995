"""Replicated metadata records: quorum writes and reads, and ordered listing cursors.

Every record lives on the N devices the metadata ring gives for its partition (N is the
meta ring's width). A write goes to all of them and succeeds once a majority W answers; a
read asks R of them (a majority too: W + R > N, so any R hold the newest acknowledged
write), the least busy first, a spare when one fails or is slow; it takes the newest answer
and repairs stale replicas in the background. Timestamps come from the gateway's
hybrid logical clock; nodes keep the newest and ignore older puts, so concurrent writers
converge on one winner everywhere.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway import errors, limits
from gateway.hlc import Clock
from ring.model import Device, Ring
from storage.client import MetaRecord, NodeClient, NodeError


class MetaRings(Protocol):
    @property
    def meta(self) -> Ring: ...


@dataclass(frozen=True)
class Quorum:
    write: int
    read: int

    @classmethod
    def majority(cls, replicas: int) -> Quorum:
        """W = R = a majority: any read set meets any write set, and the store keeps
        working with a minority of replicas down (3 -> 2/2, 5 -> 3/3)."""
        need = replicas // 2 + 1
        return cls(need, need)


class MetaStore:
    def __init__(self, rings: MetaRings, client: NodeClient, clock: Clock,
                 quorum: Quorum | None = None) -> None:
        self.rings, self.client, self.clock = rings, client, clock
        self.quorum = quorum or Quorum.majority(rings.meta.width)
        self._background: set[asyncio.Future[Any]] = set()
        self._turn = itertools.count()

    async def settle(self, timeout_s: float) -> None:
        """Wait (up to timeout_s) for writes still landing on replicas beyond the quorum,
        e.g. before a short-lived process closes its connections under them."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)

    def partition(self, name: bytes) -> int:
        return self.rings.meta.partition_of(name)

    def replicas(self, partition: int) -> tuple[Device, ...]:
        return self.rings.meta.slots(partition)

    def _read_order(self, partition: int) -> list[Device]:
        """The replicas in the order a read asks them: least busy first."""
        return least_busy_first(self.replicas(partition), self.client.outstanding,
                                next(self._turn))

    async def put(self, partition: int, key: bytes, value: bytes | None,
                  ts: int | None = None) -> int:
        """Write (or, with value None, tombstone) a record; return its timestamp."""
        stamp = self.clock.now() if ts is None else ts
        calls = [
            lambda d=d: self.client.put_meta(d.addr, d.id, partition, key, stamp, value)
            for d in self.replicas(partition)
        ]
        await self._gather_quorum(calls, self.quorum.write, "write")
        return stamp

    async def put_previous(self, partition: int, key: bytes, value: bytes | None
                           ) -> tuple[int, MetaRecord | None]:
        """put(), and the newest record the write replaced (tombstones included).

        Any earlier acknowledged write is on a majority, and so on one of the W replicas that
        answered: their newest previous record is at least that write, no read needed. A
        replica holding a record at least as new as our stamp (another gateway's clock runs
        ahead) makes us observe it and write again above it, as a read-then-write would have;
        our own earlier stamps are never taken for the replaced record."""
        ours: set[int] = set()
        replaced: MetaRecord | None = None
        for _ in range(limits.meta_put_attempts_max):
            stamp = self.clock.now()
            ours.add(stamp)
            older, ahead = await self._put_seeing(partition, key, value, stamp, ours)
            replaced = _newest([replaced, older])
            if ahead is None:
                return stamp, replaced
            self.clock.observe(ahead.ts)
        raise errors.ServiceUnavailable("metadata write kept losing to newer records")

    async def put_at(self, partition: int, key: bytes, value: bytes | None, stamp: int
                     ) -> MetaRecord | None:
        """Write stamped `stamp` (a version's own stamp); the newest record older than it.
        A newer record found means this write lost, which is right: a newer version won."""
        older, _ = await self._put_seeing(partition, key, value, stamp, {stamp})
        return older

    async def _put_seeing(self, partition: int, key: bytes, value: bytes | None, stamp: int,
                          ours: set[int]) -> tuple[MetaRecord | None, MetaRecord | None]:
        """One quorum write that reports the newest record older than it and the newest
        newer one among the answers, not counting records stamped with one of `ours`."""
        calls = [
            lambda d=d: self.client.put_meta_previous(d.addr, d.id, partition, key, stamp,
                                                      value)
            for d in self.replicas(partition)
        ]
        answers = await self._gather_quorum(calls, self.quorum.write, "write")
        found = [rec for _, rec in answers if rec is not None and rec.ts not in ours]
        return (_newest(r for r in found if r.ts < stamp),
                _newest(r for r in found if r.ts > stamp))

    async def put_above(self, partition: int, key: bytes, value: bytes | None, seen: int
                        ) -> bool:
        """Write stamped just above a record read before (stamp `seen`): it supersedes that
        record and anything older, never a newer write. True when no write quorum replica
        held anything newer than `seen`; a newer acknowledged write is on a majority, so on
        one of the answers, and then the call changed nothing that counts (our record
        loses to it everywhere)."""
        return await self.put_above_seeing(partition, key, value, seen) is None

    async def put_above_seeing(self, partition: int, key: bytes, value: bytes | None,
                               seen: int) -> MetaRecord | None:
        """put_above, answering the newest record newer than `seen` that a write quorum
        replica held (what this write lost to), or None when it won. A rival written with
        the same stamp (another put_above of the same `seen`) counts as newer: each replica
        keeps whichever of the two came first."""
        stamp = seen + 1
        calls = [
            lambda d=d: self.client.put_meta_previous(d.addr, d.id, partition, key, stamp,
                                                      value)
            for d in self.replicas(partition)
        ]
        answers = await self._gather_quorum(calls, self.quorum.write, "write")
        return _newest(rec for _, rec in answers if rec is not None and rec.ts > seen)

    async def get(self, partition: int, key: bytes) -> MetaRecord | None:
        """The newest record among a read quorum (tombstones included), or None."""
        devices = self._read_order(partition)
        calls = [
            lambda d=d: self.client.get_meta(d.addr, d.id, partition, key) for d in devices
        ]
        answers = await self._gather_quorum(calls, self.quorum.read, "read",
                                            start=self.quorum.read)
        newest = _newest(rec for _, rec in answers)
        if newest is not None:
            self.clock.observe(newest.ts)
            stale = [devices[i] for i, rec in answers if rec is None or rec.ts < newest.ts]
            for dev in stale:
                self._spawn(self._repair(dev, partition, newest))
        return newest

    async def get_live(self, partition: int, key: bytes) -> MetaRecord | None:
        rec = await self.get(partition, key)
        return rec if rec is not None and rec.value is not None else None

    async def _repair(self, dev: Device, partition: int, rec: MetaRecord) -> None:
        try:
            await self.client.put_meta(dev.addr, dev.id, partition, rec.key, rec.ts, rec.value)
        except NodeError:
            pass    # anti-entropy will bring it up to date later

    async def _gather_quorum(
        self, calls: Sequence[Callable[[], Awaitable[MetaRecord | None]]], need: int, what: str,
        start: int | None = None,
    ) -> list[tuple[int, MetaRecord | None]]:
        """Return the first `need` successes as (index, result).

        Writes start every call. Reads start only `start` (= R) of them: each extra replica
        asked is one more message to send and parse, the main cost of a small GET; a spare
        is asked when a call fails or the answers are slow (a hedge).
        """
        queue = list(enumerate(calls))
        first = len(queue) if start is None else start
        tasks: dict[asyncio.Future[MetaRecord | None], int] = {}

        def launch() -> None:
            i, call = queue.pop(0)
            tasks[asyncio.ensure_future(call())] = i

        for _ in range(min(first, len(queue))):
            launch()
        done_ok: list[tuple[int, MetaRecord | None]] = []
        reasons: list[str] = []
        pending = set(tasks)
        while pending and len(done_ok) < need:
            timeout = limits.meta_hedge_after_s if queue else None
            finished, pending = await asyncio.wait(pending, timeout=timeout,
                                                   return_when=asyncio.FIRST_COMPLETED)
            if not finished:            # slow replicas: ask the spares beside them
                while queue:
                    launch()
                pending = {t for t in tasks if not t.done()}
                continue
            for t in finished:
                exc = t.exception()
                if exc is None:
                    done_ok.append((tasks[t], t.result()))
                else:
                    reasons.append(f"{type(exc).__name__}: {exc}")
                    if queue:
                        launch()
            pending = {t for t in tasks if not t.done()}
        for t in pending:   # stragglers finish in the background (a write still lands)
            if start is not None:
                t.cancel()
                continue
            self._background.add(t)
            t.add_done_callback(self._background.discard)
        if len(done_ok) < need:
            raise errors.ServiceUnavailable(
                f"metadata {what} quorum not reached ({len(done_ok)}/{need}): "
                + "; ".join(reasons)
            )
        return done_ok

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def cursor(self, partition: int, prefix: bytes, start_after: bytes | None,
               first_page: int = 1000, delimiter: bytes | None = None) -> RecordCursor:
        """Records of one partition under `prefix`, in key order, merged over R replicas.

        `first_page` is how many records to ask each replica for at first (a listing of
        1000 keys over 8 shards needs ~125 per shard, not 1000); later pages double.
        """
        devices = self._read_order(partition)
        read = min(self.quorum.read, len(devices))
        # R cursors on distinct replicas; a cursor whose replica fails takes the next unused
        # one from a shared pool, so the merge always covers R distinct replicas.
        spares = list(devices[read:])
        children = [ReplicaCursor(self.client, devices[i], spares, partition, prefix,
                                  start_after, first_page, delimiter) for i in range(read)]
        return RecordCursor(children)


def least_busy_first(devices: Sequence[Device], busy: Callable[[str], int], turn: int
                     ) -> list[Device]:
    """`devices` by how busy their node is (calls outstanding), ties in turn.

    A read needs any R of the N replicas. Asking the ring's first R every time loads nodes
    by how often they come first in the slots of the hot partitions: a bucket's index is a
    few partitions, so one node served 3.6 times the reads of another under small GETs.
    The least busy nodes answer first and spread the load; the rotation spreads ties.
    """
    shift = turn % len(devices) if devices else 0
    rotated = [*devices[shift:], *devices[:shift]]
    return sorted(rotated, key=lambda d: busy(d.addr))      # stable: ties keep the turn


def _newest(records: Iterable[MetaRecord | None]) -> MetaRecord | None:
    best: MetaRecord | None = None
    for rec in records:
        if rec is not None and (best is None or rec.ts > best.ts):
            best = rec
    return best


class Cursor(Protocol):
    """An ordered stream of records. `head`/`advance` work on what is buffered; call
    `fill` first whenever `needs_fill` says a page must be fetched. Keeping the common
    case synchronous makes a merge over many shards cost a few comparisons per key."""

    def needs_fill(self) -> bool: ...
    async def fill(self) -> None: ...
    def head(self) -> MetaRecord | None: ...
    def advance(self, key: bytes) -> None: ...
    def seek(self, start_at: bytes) -> None: ...


class _Peekable:
    async def peek(self: Cursor) -> MetaRecord | None:
        if self.needs_fill():
            await self.fill()
        return self.head()

    async def pop(self: Cursor) -> MetaRecord | None:
        if self.needs_fill():
            await self.fill()
        rec = self.head()
        if rec is not None:
            self.advance(rec.key)
        return rec


class ReplicaCursor(_Peekable):
    """Pages through one replica's records; fails over to a spare replica on an error."""

    page_max = 1000

    def __init__(self, client: NodeClient, device: Device, spares: list[Device],
                 partition: int, prefix: bytes, start_after: bytes | None,
                 first_page: int = page_max, delimiter: bytes | None = None) -> None:
        self.client, self.device, self.spares = client, device, spares
        self.delimiter = delimiter
        self.page_size = max(1, min(first_page, self.page_max))
        self.partition = partition
        self.prefix = prefix
        self._after: bytes | None = start_after
        self._at: bytes | None = None
        self._buf: list[MetaRecord] = []
        self._pos = 0
        self._exhausted = False

    def seek(self, start_at: bytes) -> None:
        """Jump forward to the first key >= start_at (skips a whole common prefix)."""
        while self._pos < len(self._buf) and self._buf[self._pos].key < start_at:
            self._pos += 1
        if self._pos >= len(self._buf) and not self._exhausted:
            self._buf, self._pos = [], 0
            self._after, self._at = None, start_at

    def needs_fill(self) -> bool:
        return self._pos >= len(self._buf) and not self._exhausted

    def head(self) -> MetaRecord | None:
        return self._buf[self._pos] if self._pos < len(self._buf) else None

    def advance(self, key: bytes) -> None:
        if self._pos < len(self._buf) and self._buf[self._pos].key == key:
            self._pos += 1

    async def fill(self) -> None:
        reasons = []
        while True:
            dev = self.device
            try:
                page = await self.client.list_meta(
                    dev.addr, dev.id, self.partition, self.prefix,
                    start_after=self._after, start_at=self._at, limit=self.page_size,
                    delimiter=self.delimiter)
                break
            except NodeError as exc:
                reasons.append(str(exc))
                if not self.spares:
                    raise errors.ServiceUnavailable(
                        "listing: not enough replicas answered: " + "; ".join(reasons)
                    ) from None
                self.device = self.spares.pop(0)
        self._buf, self._pos = page, 0
        self._exhausted = len(page) < self.page_size
        self.page_size = min(self.page_size * 2, self.page_max)
        if page:
            self._after, self._at = page[-1].key, None


class RecordCursor(_Peekable):
    """K-way merge of cursors by key; for a key several cursors hold, the newest wins.

    Serves both levels of a listing: the replicas of one shard, and the shards of a bucket.
    """

    def __init__(self, children: Sequence[Cursor]) -> None:
        self.children = list(children)
        self._head: MetaRecord | None = None
        self._stale = True
        self._need: bool | None = None      # cached needs_fill(); None = unknown

    def seek(self, start_at: bytes) -> None:
        for c in self.children:
            c.seek(start_at)
        self._stale, self._need = True, None

    def needs_fill(self) -> bool:
        if self._need is None:
            self._need = any(c.needs_fill() for c in self.children)
        return self._need

    async def fill(self) -> None:
        await asyncio.gather(*(c.fill() for c in self.children if c.needs_fill()))
        self._stale, self._need = True, None

    def head(self) -> MetaRecord | None:
        if self._stale:
            best: MetaRecord | None = None
            for c in self.children:
                rec = c.head()
                if rec is not None and (best is None or rec.key < best.key
                                        or (rec.key == best.key and rec.ts > best.ts)):
                    best = rec
            self._head, self._stale = best, False
        return self._head

    def advance(self, key: bytes) -> None:
        need = False
        for c in self.children:
            c.advance(key)
            need = need or c.needs_fill()
        self._stale, self._need = True, need
