"""What one work unit of the rebalancer does: one (device, ring, partition).

Rules:
- Data ring: every fragment the device holds whose slot another device owns now is pushed
  there, checked there (size and xxh3 computed by the receiving node), and only then deleted
  here. For the slot the device owns, the other slot holders (and the previous ones, where the
  partition moved) are listed, and each missing fragment is rebuilt from k others. A fragment
  of this slot that another device still holds is left to that device's push (pending).
- Rebuild: Reed-Solomon works column by column and all fragments of a data id have the same
  length, so any aligned window of k fragments gives the same window of the missing one; the
  gateway's stripe block size is not needed. The ring gives k+m only: k is tried from a
  guess, and one extra source per window is re-derived to prove the k right.
- Meta ring: the device pulls newer records from the other replicas (newest ts wins); a
  device that no longer owns the partition pushes its records to the owners. Its own copy
  stays (the device has no record-drop operation yet); readers ask the owners only. Each
  peer's partition summary (record count + hash of keys and stamps) is compared first and
  records move only when they differ: at a million keys, pulling every record of every
  replica on every pass kept each node busy for minutes.
- Every byte read or sent goes through `gate` (pause and bandwidth budget, rebalancer.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import xxhash

from ring.model import Device as RingDevice
from ring.model import Ring
from storage import dataid
from storage import rebalance_plan as plan
from storage.client import MetaRecord, NodeClient, NodeError
from storage.device import Device
from storage.erasure import Codec
from storage.errors import NotFound, StorageError
from storage.index import FragmentEntry, MetaEntry

log = logging.getLogger("coffre.storage.rebalancer")

# A fragment first seen missing is rebuilt only this long after: the gateway's fragments of
# one PUT commit within moments of each other, and a write in flight must never be taken for
# a loss (a partly written ec id can even look like a narrower policy's id).
rebuild_grace_s = 10.0
rebuild_chunk_bytes = 256 * 1024  # fragment bytes rebuilt per step (read from k+1 peers)
gate_step_bytes = 64 * 1024  # bytes sent per pass through the pause gate and the budget
list_page_items = 1000
why_max = 4  # reasons kept per unfinished unit


class WrongK(Exception):
    """A rebuilt window did not re-derive the extra fragment: the k tried is not the code's."""


class MoveError(Exception):
    """The pushed copy does not match (size or checksum): the local copy is kept."""


@dataclasses.dataclass
class UnitResult:
    """What one unit did, plus the work it could not finish."""

    counters: plan.Counters = dataclasses.field(default_factory=plan.Counters)
    pending: int = 0
    rebuild_bytes: int = 0
    why: list[str] = dataclasses.field(default_factory=list)  # first reasons it is not done

    def add(self, **counts: int) -> None:
        self.counters = self.counters.plus(plan.Counters(**counts))

    def wait(self, reason: str) -> None:
        """Something is left for a later pass; say what (the status shows stuck units)."""
        self.pending += 1
        if len(self.why) < why_max:
            self.why.append(reason)

    @property
    def finished(self) -> bool:
        return self.counters.errors == 0 and self.pending == 0


@dataclasses.dataclass
class Units:
    """The unit work, given what it needs from the daemon."""

    client: Callable[[], NodeClient]
    gate: Callable[[int], Awaitable[None]]  # pause + budget for n bytes
    error: Callable[[str], None]  # record an error text
    moved: Callable[[int], None]  # bytes moved or rebuilt, for the status
    rings: Callable[[], list[tuple[str, Ring]]]  # the current data rings (name, ring)
    k_by_width: dict[int, int] = dataclasses.field(default_factory=dict)
    # (ring width, partition, data id, slot) -> monotonic time it was first seen missing.
    # The width names the ring: the data rings share partition numbers, and a unit of one
    # ring that sees another ring's data id in the same partition (not its own: `belongs`
    # is false) must not reset that ring's clock (it did: a fragment then waited its grace
    # on every pass and was never rebuilt).
    missing_since: dict[tuple[int, int, bytes, int], float] = dataclasses.field(
        default_factory=dict)
    # Data ids this node collected as orphans (orphans.py): never rebuilt.
    is_orphan: Callable[[bytes], bool] = lambda _did: False

    def ring_of(self, rings: list[Ring], dev_id: int, part: int, key: bytes) -> Ring | None:
        """The data ring a fragment of this device likely belongs to, without asking peers
        (the survey's estimate of bytes to move; the units decide with `_spans`)."""
        idx = plan.fragment_index(key)
        info = dataid.parse(plan.data_id_of(key))
        fits = [r for r in rings if 0 <= idx < r.width and part < r.partitions
                and (info is None or info.width == r.width)]
        if len(fits) <= 1:
            return fits[0] if fits else None
        for r in fits:
            prev = r.previous_slots(part)
            if r.slot_ids(part)[idx] == dev_id or (prev is not None and prev[idx].id == dev_id):
                return r
        return None

    async def _spans(self, rings: list[Ring], part: int, local: list[FragmentEntry]
                     ) -> dict[bytes, int]:
        """Per data id of `part`: 1 + the highest fragment index any data-ring holder has.

        Several data rings (policy widths) share partition numbers and fragment keys carry
        no width, so a data id is given to the narrowest ring wider than its highest index:
        a wider policy's id shows an index beyond the narrower width unless it already lost
        so many fragments that it cannot be rebuilt anyway."""
        span = {plan.data_id_of(e.key): plan.fragment_index(e.key) + 1 for e in local}
        devices = {d.id: d for r in rings for d in (*r.slots(part),
                                                    *(r.previous_slots(part) or ()))}
        for d in devices.values():
            try:
                rows = await _all_remote_fragments(self.client(), d, part)
            except NodeError:
                continue  # a holder that is down: its fragments are not sources either
            for key, _ in rows:
                did = plan.data_id_of(key)
                span[did] = max(span.get(did, 0), plan.fragment_index(key) + 1)
        return span

    async def _belongs(self, dev: Device, ring: Ring, part: int, local: list[FragmentEntry]
                       ) -> Callable[[bytes], bool]:
        """Whether a data id is one of `ring`'s (by width: a re-published file of the same
        version is a new Ring object)."""
        rings = sorted((r for _, r in self.rings()), key=lambda r: r.width)
        if len(rings) <= 1:
            return lambda did: True
        span = await self._spans(rings, part, local)

        def belongs(did: bytes) -> bool:
            info = dataid.parse(did)
            if info is not None:  # a version-1 id says its width
                return info.width == ring.width
            need = span.get(did, 0)
            return _width(next((r for r in rings if r.width >= need), None)) == ring.width

        return belongs

    async def data_unit(self, dev: Device, ring: Ring, part: int) -> UnitResult:
        every = await _all_local_fragments(dev, part)
        belongs = await self._belongs(dev, ring, part, every)
        local = [e for e in every if plan.fragment_index(e.key) < ring.width
                 and belongs(plan.data_id_of(e.key))]
        unit = UnitResult()
        young_after_ns = time.time_ns() - int(rebuild_grace_s * 1e9)
        for e in local:
            if plan.verdict(ring, dev.id, part, e.key) is plan.Verdict.MOVE:
                if e.ts > young_after_ns:  # maybe part of a write in flight: not yet
                    unit.wait(f"young {e.key.hex()}")
                    continue
                try:
                    moved = await self._move(dev, ring, part, e)
                    unit.add(bytes_moved=moved, fragments_moved=1 if moved else 0)
                except (NodeError, StorageError, MoveError) as ex:
                    self.error(f"move {e.key.hex()} from device {dev.id}: {ex}")
                    unit.add(errors=1)
        slot = plan.owned_slot(ring, dev.id, part)
        if slot is not None:
            await self._repair_slot(dev, ring, part, slot, {e.key for e in local}, unit,
                                    belongs)
        return unit

    async def _move(self, dev: Device, ring: Ring, part: int, entry: FragmentEntry) -> int:
        """Push one fragment to its owner, check it there, delete it here. Bytes sent."""
        target = ring.slots(part)[plan.fragment_index(entry.key)]
        client = self.client()
        size = entry.loc.body_len
        there = await client.fragment_checksum(target.addr, target.id, part, entry.key)
        if there is not None:
            here = await local_checksum(dev, entry)
            if there == (size, here):  # a previous pass (or a crash) left it there already
                await dev.delete_fragment(part, entry.key)
                return 0
            # Two different bodies under one key: one of them is wrong and nothing here says
            # which. Never overwrite; keep both and report (a bug or a disk fault upstream).
            raise MoveError(f"device {target.id} holds a different {entry.key.hex()}")
        hasher = xxhash.xxh3_64()

        async def body() -> AsyncIterator[bytes]:
            async for piece in dev.iter_fragment(entry):
                hasher.update(piece)
                view = memoryview(piece)
                # Small steps through the gate: at a low rate a 1 MiB piece would be sent in
                # bursts seconds apart, and a pause would wait for the whole piece.
                for at in range(0, len(view), gate_step_bytes):
                    step = view[at:at + gate_step_bytes]
                    await self.gate(len(step))
                    yield bytes(step)

        await client.put_fragment(target.addr, target.id, part, entry.key, size, body())
        self.moved(size)
        there = await client.fragment_checksum(target.addr, target.id, part, entry.key)
        if there != (size, hasher.hexdigest()):
            raise MoveError(f"check failed on device {target.id}: {there}")
        await dev.delete_fragment(part, entry.key)
        return size

    async def _holders(self, ring: Ring, part: int, slot: int, unit: UnitResult
                       ) -> tuple[dict[bytes, dict[int, RingDevice]], dict[bytes, int],
                                  dict[bytes, set[int]]] | None:
        """Who holds which fragment of `part`: the other slots' devices and previous ones.
        None when the previous holder of `slot` cannot be asked (it may still push)."""
        slots = ring.slots(part)
        prev = ring.previous_slots(part) or slots
        ask = {d.id: d for d in (*slots, *prev) if d.id != slots[slot].id}
        found: dict[bytes, dict[int, RingDevice]] = {}
        sizes: dict[bytes, int] = {}
        elsewhere: dict[bytes, set[int]] = {}  # fragments of `slot` held by another device
        for dev in ask.values():
            try:
                rows = await _all_remote_fragments(self.client(), dev, part)
            except NodeError as e:
                if dev.id == prev[slot].id:
                    self.error(f"previous holder {dev.id} of partition {part}: {e}")
                    unit.wait(f"previous holder {dev.id} unreachable")
                    return None
                continue  # a missing source: the others may be enough
            for key, n in rows:
                idx = plan.fragment_index(key)
                if not 0 <= idx < ring.width:
                    continue
                did = plan.data_id_of(key)
                sizes[did] = n
                if idx == slot:
                    elsewhere.setdefault(did, set()).add(dev.id)
                elif slots[idx].id == dev.id or idx not in found.get(did, {}):
                    found.setdefault(did, {})[idx] = dev
        return found, sizes, elsewhere

    async def _repair_slot(self, dev: Device, ring: Ring, part: int, slot: int,
                           have: set[bytes], unit: UnitResult,
                           belongs: Callable[[bytes], bool]) -> None:
        got = await self._holders(ring, part, slot, unit)
        if got is None:
            return
        found, sizes, elsewhere = got
        now = time.monotonic()
        for did in sorted(set(found) | set(elsewhere)):
            seen = (ring.width, part, did, slot)
            if plan.fragment_key(did, slot) in have or not belongs(did) or self.is_orphan(did):
                self.missing_since.pop(seen, None)
                continue
            if did in elsewhere:  # its holder pushes it here (a move in progress)
                unit.wait(f"{did.hex()}/{slot} still on {sorted(elsewhere[did])}")
                continue
            if await _has(dev, part, plan.fragment_key(did, slot)):
                continue  # pushed here after the local listing (and deleted at the source)
            if now - self.missing_since.setdefault(seen, now) < rebuild_grace_s:
                unit.wait(f"{did.hex()}/{slot} missing")  # maybe a write in flight: later
                continue
            try:
                await self._rebuild(dev, ring, part, slot, did, found[did], sizes[did], unit)
            except (NodeError, StorageError, WrongK, ValueError) as e:
                self.error(f"rebuild {did.hex()}/{slot} on device {dev.id}: {e}")
                unit.add(errors=1)

    async def _rebuild(self, dev: Device, ring: Ring, part: int, slot: int, did: bytes,
                       sources: dict[int, RingDevice], size: int, unit: UnitResult) -> None:
        """Rebuild fragment `slot` of `did` from k of `sources`, trying k until one fits."""
        width = ring.width
        info = dataid.parse(did)
        if info is not None:  # a version-1 id says its k: no guessing
            candidates = [info.k] if len(sources) >= info.k else []
        else:
            guess = self.k_by_width.get(width, plan.default_k(width))
            candidates = plan.k_candidates(width, guess, len(sources))
        if not candidates:
            log.warning("partition %s: %s has %s fragments, too few to rebuild %s",
                        part, did.hex(), len(sources), slot)
            unit.add(unrecoverable=1)
            return
        unit.rebuild_bytes += size
        for k in candidates:
            try:
                body = self._rebuilt_body(ring, part, slot, did, sources, size, k)
                await dev.put_fragment(part, plan.fragment_key(did, slot), size, body)
            except WrongK:
                continue
            if info is None:
                self.k_by_width[width] = k
            self.missing_since.pop((width, part, did, slot), None)
            self.moved(size)
            unit.rebuild_bytes -= size
            unit.add(bytes_rebuilt=size, fragments_rebuilt=1)
            return
        raise WrongK(f"no k in 1..{width - 1} re-derives the fragments held")

    async def _rebuilt_body(self, ring: Ring, part: int, slot: int, did: bytes,
                            sources: dict[int, RingDevice], size: int, k: int
                            ) -> AsyncIterator[bytes]:
        # Reed-Solomon works byte column by byte column, and every fragment of a data id has
        # the same length, so any aligned window of the fragments is a valid stripe: the
        # gateway's block size does not matter here. One extra source re-derived per window
        # proves that k is right.
        codec = Codec(k, ring.width - k)
        idxs = sorted(sources)[: k + 1]
        use, check = idxs[:k], (idxs[k] if len(idxs) > k else None)
        client = self.client()
        for offset in range(0, size, rebuild_chunk_bytes):
            n = min(rebuild_chunk_bytes, size - offset)
            for _ in idxs:
                await self.gate(n)
            pieces = await asyncio.gather(*(client.read_fragment(
                sources[i].addr, sources[i].id, part, plan.fragment_key(did, i), offset, n)
                for i in idxs))
            have = dict(zip(idxs, pieces, strict=True))
            if any(len(b) != n for b in pieces):
                raise ValueError("source fragments differ in length")
            out, ok = await asyncio.to_thread(plan.derive, codec, have, use, slot, check)
            if not ok:
                raise WrongK(f"k={k}")
            yield out

    # -- metadata units ----------------------------------------------------------------------
    async def meta_unit(self, dev: Device, ring: Ring, part: int) -> UnitResult:
        unit = UnitResult()
        # Metadata only: the device's summary would also walk the data rings' fragments
        # that share this partition number.
        count, digest = await dev.run_io(dev.index.meta_summary, part)
        summary: dict[str, int | str] = {"meta_count": count, "meta_hash": digest}
        slots = ring.slots(part)
        prev = ring.previous_slots(part) or slots
        if dev.id not in ring.slot_ids(part):
            if count:
                records = await _all_local_metas(dev, part)
                for owner in slots:
                    copied = await self._push_metas(owner, part, records, summary)
                    unit.add(meta_copied=copied)
            return unit
        local: dict[bytes, MetaEntry] | None = None     # read only if a peer differs
        for peer in {d.id: d for d in (*slots, *prev) if d.id != dev.id}.values():
            try:
                if await self._same_metas(peer, part, summary):
                    continue
                rows = await _all_remote_metas(self.client(), peer, part)
            except NodeError as e:
                # Pull only: a replica that is down is repaired by its own daemon later; the
                # CLI reports the node as unreachable (and the cluster as not done).
                log.debug("meta partition %s from device %s: %s", part, peer.id, e)
                continue
            if local is None:
                local = {e.key: e for e in await _all_local_metas(dev, part)}
            for rec in rows:
                mine = local.get(rec.key)
                newer = mine is None or mine.ts < rec.ts
                if newer and await dev.put_meta(part, rec.key, rec.ts, rec.value):
                    unit.add(meta_copied=1)
        return unit

    async def _same_metas(self, peer: RingDevice, part: int,
                          summary: dict[str, int | str]) -> bool:
        """Whether the peer holds exactly our records of `part` (same keys and stamps)."""
        theirs = await self.client().partition_summary(peer.addr, peer.id, part)
        return (theirs.get("meta_hash") == summary["meta_hash"]
                and theirs.get("meta_count") == summary["meta_count"])

    async def _push_metas(self, owner: RingDevice, part: int, records: list[MetaEntry],
                          summary: dict[str, int | str]) -> int:
        if not records or await self._same_metas(owner, part, summary):
            return 0
        client = self.client()
        theirs = {r.key: r.ts for r in await _all_remote_metas(client, owner, part)}
        copied = 0
        for e in records:
            if theirs.get(e.key, -1) < e.ts:
                await self.gate(len(e.value or b"") + len(e.key))
                await client.put_meta(owner.addr, owner.id, part, e.key, e.ts, e.value)
                copied += 1
        return copied


async def scan(dev: Device) -> AsyncIterator[FragmentEntry]:
    """Every fragment of a device, in index order, a page per I/O thread hop."""
    cursor = b""
    while True:
        page, cursor = await dev.run_io(dev.index.scan_fragments, cursor, list_page_items)
        for e in page:
            yield e
        if len(page) < list_page_items:
            return


def _width(ring: Ring | None) -> int:
    return ring.width if ring is not None else 0


async def _has(dev: Device, part: int, key: bytes) -> bool:
    try:
        await dev.stat_fragment(part, key)
    except NotFound:
        return False
    return True


async def local_checksum(dev: Device, entry: FragmentEntry) -> str:
    h = xxhash.xxh3_64()
    async for piece in dev.iter_fragment(entry):
        h.update(piece)
    return h.hexdigest()


T = TypeVar("T")


async def _paged(fetch: Callable[[T | None], Awaitable[list[T]]]) -> list[T]:
    """Every item of a listing fetched a page at a time; `fetch(last item or None)`."""
    out: list[T] = []
    while True:
        page = await fetch(out[-1] if out else None)
        out += page
        if len(page) < list_page_items:
            return out


async def _all_local_fragments(dev: Device, part: int) -> list[FragmentEntry]:
    return await _paged(lambda last: dev.list_fragments(
        part, last.key if last else b"", list_page_items))


async def _all_local_metas(dev: Device, part: int) -> list[MetaEntry]:
    return await _paged(lambda last: dev.list_meta(
        part, b"", last.key if last else None, None, list_page_items))


async def _all_remote_fragments(client: NodeClient, dev: RingDevice, part: int
                                ) -> list[tuple[bytes, int]]:
    return await _paged(lambda last: client.list_fragments(
        dev.addr, dev.id, part, last[0] if last else b"", list_page_items))


async def _all_remote_metas(client: NodeClient, dev: RingDevice, part: int
                            ) -> list[MetaRecord]:
    return await _paged(lambda last: client.list_meta(
        dev.addr, dev.id, part, b"", last.key if last else None, None, list_page_items))


