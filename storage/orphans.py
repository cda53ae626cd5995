"""Orphan collection: delete fragments whose data id no metadata record references any more.

Orphans come from writes that never committed (a gateway killed between its fragments and
its manifest, a write quorum missed) and from deletes that never reached a node (an
overwritten, deleted or aborted object whose node was down when the gateway cleaned up).

Rules (each device decides for its own fragments, alone):
- Only version-1 data ids (storage/dataid.py) are considered: they carry their creation
  time and their home, the metadata partition whose records (object manifest, multipart
  part records) reference them. Any other id is kept, always.
- A data id younger than `grace_s` (by its creation time) is never touched: a write may be
  in flight. The grace must exceed the longest PUT or UploadPart.
- The home partition is read from every replica of the metadata ring (and from the previous
  holders while it moves). The answer counts only when a majority of the current replicas
  and every previous holder answered in full; otherwise nothing is decided ("unknown").
- A data id is referenced if its bytes occur in any record value of any replica read, live
  or stale: a stale replica only delays the collection until anti-entropy repairs it. No
  S3 format is parsed here: a manifest or part record that names a data id holds its bytes.
- Two strikes: a fragment is deleted only when it was found unreferenced in two checks at
  least `confirm_s` apart, with no referenced answer in between (a commit may land between
  a fragment's last byte and its manifest).
- Every byte listed passes the rebalancer's gate: pause and the bandwidth budget apply.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum

from ring.model import Device as RingDevice
from ring.model import Ring
from storage import dataid
from storage.client import MetaRecord, NodeClient, NodeError
from storage.device import Device
from storage.errors import StorageError
from storage.index import FragmentEntry
from storage.rebalance_units import scan

log = logging.getLogger("coffre.storage.orphans")

meta_page_items = 32  # records per listing call (values may be manifests with inline bodies)
scan_chunk_items = 10_000  # fragments judged per chunk of a device scan (bounds memory)
decided_ids_max = 100_000  # orphan data ids remembered so that the rebalancer skips them


@dataclass(frozen=True)
class OrphanConfig:
    grace_s: float = 3600.0  # a data id younger than this is never collected
    confirm_s: float = 60.0  # unreferenced in two checks at least this far apart
    interval_s: float = 300.0  # one collection pass at most this often

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, base: OrphanConfig | None = None
                 ) -> OrphanConfig:
        """`base` (the node's configuration) overridden by COFFRE_ORPHAN_GRACE_S,
        COFFRE_ORPHAN_CONFIRM_S and COFFRE_ORPHAN_INTERVAL_S (tests shorten them)."""
        env = os.environ if env is None else env
        base = base or cls()

        def get(name: str, default: float) -> float:
            raw = env.get(f"COFFRE_ORPHAN_{name}_S")
            value = float(raw) if raw else default
            if not 0 <= value < float("inf"):
                raise ValueError(f"COFFRE_ORPHAN_{name}_S must be >= 0")
            return value

        return cls(get("GRACE", base.grace_s), get("CONFIRM", base.confirm_s),
                   get("INTERVAL", base.interval_s))


class Answer(Enum):
    REFERENCED = "referenced"
    UNREFERENCED = "unreferenced"
    UNKNOWN = "unknown"  # too few replicas answered: decide nothing


@dataclass
class OrphanCounters:
    passes: int = 0
    checked: int = 0  # fragments old enough to be asked about
    collected: int = 0  # fragments deleted
    bytes_collected: int = 0
    unknown: int = 0  # checks without a quorum answer
    legacy: int = 0  # fragments whose id carries no home, seen in the last pass (kept)


# -- pure decisions -------------------------------------------------------------------------

def old_enough(entries: Iterable[FragmentEntry], now_ms: int, grace_ms: int,
               meta_part_power: int) -> dict[int, list[FragmentEntry]]:
    """Fragments past the grace, by home partition; ids without a home are left out."""
    out: dict[int, list[FragmentEntry]] = defaultdict(list)
    for e in entries:
        info = dataid.parse(e.key[:-1])
        if info is None or now_ms - info.created_ms < grace_ms:
            continue
        home = dataid.home_partition(info, meta_part_power)
        if home is not None:
            out[home].append(e)
    return out


def answers(data_ids: Iterable[bytes], replicas: list[list[MetaRecord] | None],
            need: int) -> dict[bytes, Answer]:
    """Per data id, what the listings of the home partition say (None: no answer)."""
    got = [r for r in replicas if r is not None]
    if len(got) < need:
        return {d: Answer.UNKNOWN for d in data_ids}
    # One blob per replica: an id found across two values can only err on "referenced".
    blobs = [b"".join(rec.value for rec in rows if rec.value) for rows in got]
    return {d: Answer.REFERENCED if any(d in b for b in blobs) else Answer.UNREFERENCED
            for d in data_ids}


@dataclass
class Strikes:
    """First time each fragment was found unreferenced (monotonic seconds)."""

    confirm_s: float
    first: dict[tuple[int, int, bytes], float] = field(default_factory=dict)

    def judge(self, where: tuple[int, int, bytes], answer: Answer, now: float) -> bool:
        """Record one answer for (device, partition, key); True when it may be deleted."""
        if answer is Answer.REFERENCED:
            self.first.pop(where, None)
            return False
        if answer is Answer.UNKNOWN:
            return False  # no evidence either way: keep the first strike as it was
        since = self.first.setdefault(where, now)
        return now - since >= self.confirm_s

    def forget_except(self, seen: set[tuple[int, int, bytes]]) -> None:
        for where in [w for w in self.first if w not in seen]:
            del self.first[where]


# -- the collector --------------------------------------------------------------------------

Gate = Callable[[int], Awaitable[None]]


class OrphanCollector:
    def __init__(self, config: OrphanConfig, client: Callable[[], NodeClient], gate: Gate,
                 meta_ring: Callable[[], Ring | None]) -> None:
        self.config = config
        self._client, self._gate, self._meta_ring = client, gate, meta_ring
        self.counters = OrphanCounters()
        self.strikes = Strikes(config.confirm_s)
        self.orphan_ids: dict[bytes, float] = {}  # data id -> when it was collected here

    def is_orphan(self, data_id: bytes) -> bool:
        return data_id in self.orphan_ids

    async def run_pass(self, devices: list[Device]) -> None:
        ring = self._meta_ring()
        if ring is None or not ring.built:
            return
        seen: set[tuple[int, int, bytes]] = set()
        self.counters.legacy = 0
        for dev in devices:
            chunk: list[FragmentEntry] = []
            async for e in scan(dev):
                chunk.append(e)
                if len(chunk) >= scan_chunk_items:
                    await self._judge(dev, ring, chunk, seen)
                    chunk = []
            await self._judge(dev, ring, chunk, seen)
        self.strikes.forget_except(seen)
        self.counters.passes += 1

    async def _judge(self, dev: Device, ring: Ring, entries: list[FragmentEntry],
                     seen: set[tuple[int, int, bytes]]) -> None:
        self.counters.legacy += sum(1 for e in entries if dataid.parse(e.key[:-1]) is None)
        now_ms = int(time.time() * 1000)
        by_home = old_enough(entries, now_ms, int(self.config.grace_s * 1000), ring.part_power)
        for home, frags in sorted(by_home.items()):
            verdicts = await self.ask(ring, home, {e.key[:-1] for e in frags})
            now = time.monotonic()
            for e in frags:
                where = (dev.id, e.partition, e.key)
                seen.add(where)
                self.counters.checked += 1
                answer = verdicts[e.key[:-1]]
                self.counters.unknown += answer is Answer.UNKNOWN
                if self.strikes.judge(where, answer, now):
                    await self._collect(dev, e)

    async def ask(self, ring: Ring, part: int, data_ids: set[bytes]) -> dict[bytes, Answer]:
        """Whether the replicas of metadata partition `part` reference each data id."""
        slots = ring.slots(part)
        prev = [d for d in ring.previous_slots(part) or () if d not in slots]
        current = [await self._records(d, part) for d in slots]
        before = [await self._records(d, part) for d in prev]
        if any(r is None for r in before):
            return {d: Answer.UNKNOWN for d in data_ids}
        return answers(data_ids, current + before, len(slots) // 2 + 1 + len(before))

    async def _records(self, dev: RingDevice, part: int) -> list[MetaRecord] | None:
        out: list[MetaRecord] = []
        client = self._client()
        try:
            while True:
                page = await client.list_meta(dev.addr, dev.id, part, b"",
                                              out[-1].key if out else None, None,
                                              meta_page_items)
                await self._gate(sum(len(r.key) + len(r.value or b"") for r in page))
                out += page
                if len(page) < meta_page_items:
                    return out
        except NodeError as e:
            log.debug("orphans: meta partition %s on device %s: %s", part, dev.id, e)
            return None

    async def _collect(self, dev: Device, e: FragmentEntry) -> None:
        try:
            gone = await dev.delete_fragment(e.partition, e.key)
        except StorageError as ex:
            log.warning("orphans: delete %s on device %s: %s", e.key.hex(), dev.id, ex)
            return
        self.strikes.first.pop((dev.id, e.partition, e.key), None)
        if gone:
            log.info("orphans: collected %s (%s bytes) on device %s", e.key.hex(),
                     e.loc.body_len, dev.id)
            self.counters.collected += 1
            self.counters.bytes_collected += e.loc.body_len
            self._remember(e.key[:-1])

    def _remember(self, data_id: bytes) -> None:
        self.orphan_ids[data_id] = time.monotonic()
        while len(self.orphan_ids) > decided_ids_max:
            del self.orphan_ids[next(iter(self.orphan_ids))]

    def status(self) -> dict[str, int | float]:
        c = self.counters
        return {"orphan_passes": c.passes, "orphans_checked": c.checked,
                "orphans_collected": c.collected, "orphan_bytes_collected": c.bytes_collected,
                "orphans_pending": len(self.strikes.first), "orphan_checks_unknown": c.unknown,
                "orphans_legacy_kept": c.legacy, "orphan_grace_s": self.config.grace_s}
