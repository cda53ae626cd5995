"""Pure arithmetic of the rebalancer: what a ring change moves, and how far the work is.

Rules: no I/O, no clock (callers pass `now`). Everything here takes values and returns
values so that the daemon (rebalancer.py) and the operator CLI (rebalance_cli.py) share one
definition of "a move", "done" and "bytes left", and tests can check them without a cluster.

Fragment keys are `data_id + one byte fragment index` (gateway/datapath.py); fragment i of a
partition belongs on slot i of the data ring. Metadata records belong on every slot of the
metadata ring (replicas are interchangeable). A device's progress file is a versioned JSON
object (`Progress`); a file of another format version is ignored (the work is redone, which
is idempotent), never misread.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ring.model import Ring
from storage.erasure import Codec

PROGRESS_FORMAT = 1
MB = 1_000_000  # the CLI's MB/s are decimal megabytes, as network links are sold


class Verdict(Enum):
    """What a device does with one fragment it holds."""

    KEEP = "keep"  # the ring names this device for the fragment's slot
    MOVE = "move"  # another device owns the slot now: push it there, check, delete here
    STRAY = "stray"  # not a fragment of this ring (bad key): left alone, reported


def fragment_index(key: bytes) -> int:
    return key[-1] if key else -1


def data_id_of(key: bytes) -> bytes:
    return key[:-1]


def fragment_key(data_id: bytes, index: int) -> bytes:
    return data_id + bytes([index])


def verdict(ring: Ring, device_id: int, partition: int, key: bytes) -> Verdict:
    index = fragment_index(key)
    if not 0 <= index < ring.width or len(key) < 2:
        return Verdict.STRAY
    return Verdict.KEEP if ring.slot_ids(partition)[index] == device_id else Verdict.MOVE


def owned_slot(ring: Ring, device_id: int, partition: int) -> int | None:
    """The slot of `partition` that `device_id` holds, or None (slots are distinct devices)."""
    ids = ring.slot_ids(partition)
    return ids.index(device_id) if device_id in ids else None


def k_candidates(width: int, guess: int | None, available: int) -> list[int]:
    """Values of k to try when rebuilding a fragment of a `width`-slot ring, best first.

    The data ring says k+m only. A k below the number of available fragments is checked
    while rebuilding (one more fragment than k is read and re-derived), so such candidates
    are tried in turn: the guess first (the configured policy), then 1 (replication), then
    the rest. A k that cannot be checked (as many fragments as k) is only ever the guess:
    fewer fragments than that (an orphan of an aborted write) are not rebuilt at all.
    """
    order = [guess] if guess is not None else []
    order += [1, *range(width - 1, 1, -1)]
    out: list[int] = []
    for k in order:
        if k is None or k in out or not 1 <= k <= max(1, width - 1):
            continue
        if k < available or (k == available and k == guess):
            out.append(k)
    return out


def default_k(width: int) -> int:
    """k of the usual policy of a width: ec 4+2 for 6, replicate n otherwise when small."""
    known = {6: 4, 11: 8, 9: 6, 14: 10}
    return known.get(width, 1 if width <= 5 else width - 2)


# -- planning a ring change -------------------------------------------------------------------


@dataclass(frozen=True)
class PartSize:
    fragments: int
    bytes: int


Sizes = Mapping[int, Mapping[int, PartSize]]  # device id -> partition -> what it holds there


@dataclass(frozen=True)
class NodeFlow:
    addr: str
    bytes_out: int = 0
    bytes_in: int = 0
    fragments_out: int = 0
    fragments_in: int = 0


@dataclass(frozen=True)
class MovePlan:
    old_version: int
    new_version: int
    slots_moved: int
    bytes_moved: int
    fragments_moved: int
    optimal_bytes: int  # the least any placement must carry to reach the new balance
    nodes: tuple[NodeFlow, ...]
    eta_s: float | None  # at the given rate per node; None when unthrottled or unknown

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _slot_size(sizes: Sizes, old: Ring, partition: int, dev_id: int) -> PartSize:
    """What the device holds in `partition`; if it did not answer, the mean of its peers."""
    own = sizes.get(dev_id)
    if own is not None:
        return own.get(partition, PartSize(0, 0))
    peers = [sizes[d][partition] for d in old.slot_ids(partition)
             if d in sizes and partition in sizes[d]]
    if not peers:
        return PartSize(0, 0)
    n = len(peers)
    return PartSize(sum(p.fragments for p in peers) // n, sum(p.bytes for p in peers) // n)


def _add_flow(flows: dict[str, NodeFlow], addr: str, out: PartSize | None,
              into: PartSize | None) -> None:
    f = flows.get(addr, NodeFlow(addr))
    if out is not None:
        f = dataclasses.replace(f, bytes_out=f.bytes_out + out.bytes,
                                fragments_out=f.fragments_out + out.fragments)
    if into is not None:
        f = dataclasses.replace(f, bytes_in=f.bytes_in + into.bytes,
                                fragments_in=f.fragments_in + into.fragments)
    flows[addr] = f


def plan_moves(old: Ring, new: Ring, sizes: Sizes, bytes_per_s: float = 0.0) -> MovePlan:
    """The fragments and bytes going from `old` to `new` moves, per node, with an ETA.

    Every node sends its own outgoing fragments at `bytes_per_s` at most, in parallel with
    the others, so the ETA is the busiest sender's bytes over the rate.
    """
    if (old.part_power, old.width) != (new.part_power, new.width):
        raise ValueError("rings differ in part power or width; they cannot be compared")
    flows: dict[str, NodeFlow] = {}
    slots = nbytes = frags = 0
    if old.built and new.built:
        for p in range(new.partitions):
            for a, b in zip(old.slot_ids(p), new.slot_ids(p), strict=True):
                if a == b:
                    continue
                size = _slot_size(sizes, old, p, a)
                slots += 1
                nbytes += size.bytes
                frags += size.fragments
                _add_flow(flows, old.device(a).addr, size, None)
                _add_flow(flows, new.device(b).addr, None, size)
    busiest = max((f.bytes_out for f in flows.values()), default=0)
    eta = busiest / bytes_per_s if bytes_per_s > 0 else None
    return MovePlan(old.version, new.version, slots, nbytes, frags,
                    optimal_bytes(old, new, sizes), tuple(sorted(flows.values(),
                                                                 key=lambda f: f.addr)), eta)


def optimal_bytes(old: Ring, new: Ring, sizes: Sizes) -> int:
    """Bytes that must arrive on devices below their new weighted share (a lower bound)."""
    if not old.built:
        return 0
    held = {d.id: 0 for d in new.devices}
    total = 0
    for p in range(old.partitions):
        for dev_id in old.slot_ids(p):
            b = _slot_size(sizes, old, p, dev_id).bytes
            total += b
            if dev_id in held:
                held[dev_id] += b
    weight = sum(d.weight for d in new.devices) or 1.0
    need = 0.0
    for d in new.devices:
        need += max(0.0, total * d.weight / weight - held[d.id])
    return int(need)


# -- progress of one device --------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    bytes_moved: int = 0
    fragments_moved: int = 0
    bytes_rebuilt: int = 0
    fragments_rebuilt: int = 0
    meta_copied: int = 0
    errors: int = 0
    unrecoverable: int = 0  # data ids with fragments too few to rebuild from (orphans?)

    def plus(self, other: Counters) -> Counters:
        return Counters(*(a + b for a, b in zip(dataclasses.astuple(self),
                                                 dataclasses.astuple(other), strict=True)))


@dataclass(frozen=True)
class Progress:
    """What a device has finished for one set of ring versions (persisted beside its index).

    `done` lists finished work units as "ring-name:partition"; a change of any ring version
    starts a new set. The counters `since_change` restart at zero on a change that finds the
    previous movement settled (its last pass clean); a change that lands while data still
    moves (two rings published one after the other) keeps counting: the operator sees one
    movement. `total` keeps everything.
    """

    versions: Mapping[str, int] = field(default_factory=dict)
    done: frozenset[str] = frozenset()
    since_change: Counters = Counters()
    total: Counters = Counters()
    paused: bool = False
    bytes_per_s: float = 0.0
    concurrency: int = 4
    settled: bool = True  # the last pass on `versions` finished with nothing left

    def with_versions(self, versions: Mapping[str, int]) -> Progress:
        if dict(versions) == dict(self.versions):
            return self
        counters = Counters() if self.settled else self.since_change
        return dataclasses.replace(self, versions=dict(versions), done=frozenset(),
                                   since_change=counters, settled=False)

    def unit_done(self, unit: str, delta: Counters) -> Progress:
        return dataclasses.replace(self, done=self.done | {unit},
                                   since_change=self.since_change.plus(delta),
                                   total=self.total.plus(delta))

    def count(self, delta: Counters) -> Progress:
        return dataclasses.replace(self, since_change=self.since_change.plus(delta),
                                   total=self.total.plus(delta))

    def to_json(self) -> dict[str, Any]:
        return {"format": PROGRESS_FORMAT, "versions": dict(self.versions),
                "done": sorted(self.done), "since_change": dataclasses.asdict(self.since_change),
                "total": dataclasses.asdict(self.total), "paused": self.paused,
                "bytes_per_s": self.bytes_per_s, "concurrency": self.concurrency,
                "settled": self.settled}

    @classmethod
    def from_json(cls, raw: Any) -> Progress:
        """A progress record, or a fresh one if `raw` is not one this code wrote."""
        try:
            if raw.get("format") != PROGRESS_FORMAT:
                return cls()
            return cls(versions={str(k): int(v) for k, v in raw["versions"].items()},
                       done=frozenset(str(u) for u in raw["done"]),
                       since_change=Counters(**raw["since_change"]),
                       total=Counters(**raw["total"]), paused=bool(raw["paused"]),
                       bytes_per_s=float(raw["bytes_per_s"]),
                       concurrency=int(raw["concurrency"]),
                       settled=bool(raw.get("settled", True)))
        except (AttributeError, KeyError, TypeError, ValueError):
            return cls()


def unit_name(ring_name: str, partition: int) -> str:
    return f"{ring_name}:{partition}"


class Pace:
    """A token bucket with debt, fed the clock: a caller takes the bytes it is about to
    move and waits what `take` returns. Rate 0 means unlimited."""

    def __init__(self, bytes_per_s: float, burst_bytes: int = 256 * 1024) -> None:
        self.bytes_per_s = bytes_per_s
        self.burst_bytes = burst_bytes
        self._tokens = float(burst_bytes)
        self._stamp: float | None = None

    def take(self, n: int, now: float) -> float:
        """Seconds to wait before moving `n` bytes at `now`."""
        if self.bytes_per_s <= 0:
            return 0.0
        if self._stamp is not None:
            self._tokens = min(float(self.burst_bytes),
                               self._tokens + (now - self._stamp) * self.bytes_per_s)
        self._stamp = now
        self._tokens -= n
        return max(0.0, -self._tokens / self.bytes_per_s)


def derive(codec: Codec, have: Mapping[int, bytes], use: Sequence[int], want: int,
           check: int | None) -> tuple[bytes, bool]:
    """Fragment `want`'s window from the windows of `use`, and whether the window of
    `check` (one more source, when there is one) re-derives from them too."""
    src = {i: have[i] for i in use}
    out = bytes(codec.rebuild(src, want))
    if check is None:
        return out, True
    return out, bytes(codec.rebuild(src, check)) == have[check]


def eta_seconds(bytes_left: int, rate_bytes_per_s: float) -> float | None:
    if bytes_left <= 0:
        return 0.0
    return bytes_left / rate_bytes_per_s if rate_bytes_per_s > 0 else None


# -- the cluster view the CLI prints -----------------------------------------------------------


_SUMMED = ("bytes_moved", "bytes_left", "fragments_moved", "fragments_rebuilt", "bytes_rebuilt",
           "meta_copied", "errors", "unrecoverable", "units_total", "units_done",
           "rate_bytes_per_s", "bytes_transferred", "orphans_collected",
           "orphan_bytes_collected", "orphans_pending")


def aggregate(statuses: Mapping[str, Mapping[str, Any] | None],
              expected: Iterable[str] = ()) -> dict[str, Any]:
    """Totals over the nodes' status documents; a node that did not answer (None) is an
    error and makes `done` false, as does a node of the ring that was not asked."""
    nodes: dict[str, dict[str, Any]] = {
        addr: (dict(s) if s is not None else {"reachable": False, "done": False})
        for addr, s in sorted(statuses.items())}
    missing = sorted(set(expected) - set(nodes))
    out: dict[str, Any] = {k: 0 for k in _SUMMED}
    for s in nodes.values():
        for k in _SUMMED:
            out[k] += s.get(k, 0) or 0
    unreachable = [a for a, s in nodes.items() if s.get("reachable") is False] + missing
    out["errors"] += len(unreachable)
    out["unreachable"] = unreachable
    out["paused"] = any(s.get("paused") for s in nodes.values())
    out["done"] = bool(nodes) and not unreachable and all(s.get("done") for s in nodes.values())
    out["eta_s"] = max_eta(s.get("eta_s") for s in nodes.values() if not s.get("done"))
    totals: dict[str, int] = {}
    for s in nodes.values():
        for k, v in (s.get("total") or {}).items():
            totals[k] = totals.get(k, 0) + int(v)
    out["total"] = totals  # since each node's process started using its devices
    out["nodes"] = nodes
    return out


def max_eta(etas: Iterable[float | None]) -> float | None:
    """The slowest node's ETA; unknown (None) if any node's is unknown."""
    out = 0.0
    for e in etas:
        if e is None:
            return None
        out = max(out, e)
    return out


def progress_bar(done: int, total: int, width_chars: int = 40) -> str:
    frac = 1.0 if total <= 0 else min(1.0, done / total)
    fill = int(frac * width_chars)
    return "[" + "#" * fill + "." * (width_chars - fill) + f"] {100 * frac:5.1f}%"


def partition_sizes(rows: Sequence[tuple[int, int]]) -> dict[int, PartSize]:
    """Fold (partition, fragment bytes) rows into per-partition sizes."""
    out: dict[int, PartSize] = {}
    for p, n in rows:
        s = out.get(p, PartSize(0, 0))
        out[p] = PartSize(s.fragments + 1, s.bytes + n)
    return out
