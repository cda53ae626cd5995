"""Listing pages cut on the node: live keys, rolled-up common prefixes, a few projected
fields of each value, and a digest that lets a reader compare replicas without their pages.

Why: a listing used to ship every record (whole values, tombstones) of R replicas of every
shard to the gateway, which decoded and merged them all. Here one replica of a shard sends a
compact page and the other replicas send only the digest of the page they would have sent
for the same request; when all digests agree the replicas hold the same live keys (with the
same timestamps) in that range, so the one page is what a merge would have produced. A
mismatch sends the reader back to the full merge (gateway/list_replicas.py).

Rules (what a page is, so that two replicas with equal data produce equal digests):
- Keys under `prefix`, from `start_at` on (inclusive), in key order. Tombstones are never
  returned; they only cost scan budget.
- With a delimiter, a key holding it after the prefix belongs to the group
  `key[: end of the delimiter]`. A group whose prefix sorts before `start_at` was listed
  earlier and is skipped whole. Otherwise the group is one row (its prefix), emitted at its
  first live key; the scan then jumps past the group. The digest takes that first live key
  and its timestamp, not just the prefix: replicas that agree on the prefix through
  different keys may hide a delete (a key live on one replica, deleted on another).
- A page stops after `limit` rows, or at the end of the range, or once `scan_max` records
  were examined outside a group (a long run of tombstones); `resume` is then where the next
  page starts (None: the range is done). Inside a group the scan runs to its first live key
  or its end, so that `resume` never falls inside a group.
- Rows: a key row is [key[strip:], *fields]; a group row is the bytes prefix[strip:].
  `fields` picks parts of a value that is a msgpack array: an int i is element i, a pair
  [i, name] is element i's entry `name` (a map). Anything missing is None. The node knows
  nothing of what the fields mean.
Pure: the records come from a `seek` function (an iterator of records from a key on) and,
for delimiter pages, an optional `first` function (the head of the one record at or after a
key, or None when it cannot say cheaply): from group to group the page asks `first` instead
of starting an iterator, which at ~1,000 groups per page was most of a root listing's cost.
No LMDB, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack
import xxhash

from storage import limits
from storage.keys import successor

# A record as the index hands it over: key, 16-byte timestamp, tombstone?, value, and the
# value's stored xxh3_64 (checked only for listed keys: a group's first key or a tombstone
# needs no hashing).
Row = tuple[bytes, bytes, bool, bytes, bytes]
Seek = Callable[[bytes], Iterator[Row]]
# The head of the record at or after a key, for group hops: key, 16-byte timestamp, tombstone?
Head = tuple[bytes, bytes, bool]
First = Callable[[bytes], Head | None]
Field = int | tuple[int, str]

# bytes([b + 1]) for every byte value but 0xff (successor's common case, precomputed).
_NEXT_BYTE = tuple(bytes([b + 1]) for b in range(255))


@dataclass(frozen=True)
class PageQuery:
    prefix: bytes
    start_at: bytes                 # first key that may be listed (inclusive)
    limit: int                      # rows at most
    delimiter: bytes | None = None
    strip: int = 0                  # leading key bytes left out of the rows
    fields: tuple[Field, ...] = ()
    scan_max: int = limits.list_scan_records_max  # records examined outside a group


@dataclass(frozen=True)
class Page:
    digest: bytes                   # xxh3-128 of the rows' keys and timestamps and `resume`
    resume: bytes | None            # start_at of the next page; None when the range is done
    rows: list[Any] = field(default_factory=list)   # empty when only the digest was asked
    corrupt: tuple[bytes, ...] = ()  # keys whose value failed its checksum (not listed)
    # The partition's running digest in the page's snapshot (storage/meta_digest.py); b""
    # from a node that does not keep one.
    state: bytes = b""


# What a page call asks for (the wire's with_rows field): the rows, only the page's digest,
# or only the partition's running digest (STATE_ONLY: no scan at all; digest and rows empty).
ROWS, DIGEST, STATE_ONLY = True, False, 2
Want = bool | int


def parse_fields(raw: Any) -> tuple[Field, ...]:
    """Validate a projection received from the wire (ValueError when malformed)."""
    if not isinstance(raw, list | tuple) or len(raw) > 16:
        raise ValueError("fields: a list of at most 16 entries")
    out: list[Field] = []
    for f in raw:
        if isinstance(f, int) and not isinstance(f, bool) and 0 <= f < 64:
            out.append(f)
        elif (isinstance(f, list | tuple) and len(f) == 2 and isinstance(f[0], int)
              and 0 <= f[0] < 64 and isinstance(f[1], str)):
            out.append((f[0], f[1]))
        else:
            raise ValueError(f"bad field {f!r}")
    return tuple(out)


def query_from_wire(a: Sequence[Any], limit_max: int) -> tuple[PageQuery, Want]:
    """[prefix, start_at, limit, delimiter, strip, fields, with_rows] as a call sends it
    (ValueError or TypeError when malformed); with_rows is ROWS, DIGEST or STATE_ONLY."""
    prefix, start_at, limit, delimiter, strip, fields, with_rows = a
    if not (isinstance(prefix, bytes) and isinstance(start_at, bytes)
            and (delimiter is None or isinstance(delimiter, bytes))):
        raise TypeError("prefix, start_at, delimiter: bytes")
    if not (isinstance(limit, int) and isinstance(strip, int) and limit > 0 and strip >= 0):
        raise ValueError("limit > 0 and strip >= 0")
    query = PageQuery(prefix, start_at, min(limit, limit_max), delimiter or None, strip,
                      parse_fields(fields))
    want = STATE_ONLY if type(with_rows) is int and with_rows == STATE_ONLY else bool(with_rows)
    return query, want


def query_to_wire(q: PageQuery, with_rows: Want) -> list[Any]:
    return [q.prefix, q.start_at, q.limit, q.delimiter, q.strip,
            [f if isinstance(f, int) else list(f) for f in q.fields], with_rows]


def page_to_wire(p: Page) -> list[Any]:
    return [p.digest, p.resume, p.rows, p.state]


def page_from_wire(raw: Any) -> Page:
    digest, resume, rows, *rest = raw
    state = rest[0] if rest else b""
    if not isinstance(digest, bytes) or not isinstance(rows, list) or not (
            resume is None or isinstance(resume, bytes)) or not isinstance(state, bytes):
        raise ValueError("malformed page")
    return Page(digest, resume, rows, state=state)


def project(value: bytes, fields: Sequence[Field]) -> list[Any]:
    """The chosen parts of a msgpack-array value; None for any part that is not there."""
    try:
        doc = msgpack.unpackb(value)
    except (ValueError, TypeError, msgpack.UnpackException):
        return [None] * len(fields)
    if doc.__class__ is not list:
        return [None] * len(fields)
    # Runs for every listed key: class checks and one length, not isinstance() per field.
    size = len(doc)
    out: list[Any] = []
    for f in fields:
        if f.__class__ is int:
            out.append(doc[f] if f < size else None)
        else:
            i, name = f  # type: ignore[misc]
            part = doc[i] if i < size else None
            out.append(part.get(name) if part.__class__ is dict else None)
    return out


def build(seek: Seek, q: PageQuery, with_rows: bool, first: First | None = None) -> Page:
    """One page (see the module rules); with_rows False computes only the digest."""
    state = _State(q, with_rows)
    low: bytes | None = max(q.prefix, q.start_at)
    while low is not None:
        low = state.scan(seek(low), low)
        if low is not None and first is not None and q.delimiter:
            low = state.hop(first, low)
    return state.finish()


class _State:
    """The page being built; scan() runs until a group jump (returns where to seek next)
    or the end of the page (returns None)."""

    def __init__(self, q: PageQuery, with_rows: bool) -> None:
        self.q = q
        self.with_rows = with_rows
        self.rows: list[Any] = []
        self.count = 0
        self.scanned = 0
        self.resume: bytes | None = None
        self.corrupt: list[bytes] = []
        self.hashed: list[Any] = []      # hashed once at the end: one call, not one per row

    def scan(self, rows: Iterator[Row], low: bytes) -> bytes | None:
        q = self.q
        prefix, delimiter = q.prefix, q.delimiter
        for key, ts, deleted, value, checksum in rows:
            if not key.startswith(prefix):
                if key > prefix:
                    return None
                continue
            if key < low:       # a long `low` seeks to the start of its long-key group
                continue
            if delimiter:
                at = key.find(delimiter, len(prefix))
                if at >= 0:
                    return self._group(key[: at + len(delimiter)], key, ts, deleted, rows)
            if not deleted:
                if xxhash.xxh3_64_digest(value) != checksum:
                    self.corrupt.append(key)
                    continue
                self._key_row(key, ts, value)
                if self.count >= q.limit:
                    self.resume = key + b"\x00"
                    return None
            self.scanned += 1
            if self.scanned >= q.scan_max:
                self.resume = key + b"\x00"
                return None
        return None

    def hop(self, first: First, low: bytes) -> bytes | None:
        """From group to group while each seek lands on a group's first key and that key
        is live (the common case: one lookup per group). Returns where the general scan
        goes on: at anything else (a key row, a tombstone, a long key, the range's end)."""
        q = self.q
        prefix, delimiter, start_at = q.prefix, q.delimiter or b"", q.start_at
        while True:
            head = first(low)
            if head is None:
                return low
            key, ts, deleted = head
            at = key.find(delimiter, len(prefix))
            if deleted or at < 0 or key < low or not key.startswith(prefix):
                return low
            end = at + len(delimiter)
            group = key[:end]
            # successor(group), inlined for a group whose last byte can grow (all but 0xff)
            last = key[end - 1]
            low = key[:end - 1] + _NEXT_BYTE[last] if last != 0xFF else successor(group)
            if group < start_at:
                continue        # listed on an earlier page
            self.count += 1
            self.hashed.append((group, key, ts))
            if self.with_rows:
                self.rows.append(group[q.strip:])
            if self.count >= q.limit:
                self.resume = low
                return None

    def _group(self, group: bytes, key: bytes, ts: bytes, deleted: bool,
               rows: Iterator[Row]) -> bytes | None:
        """At the first key of a group: emit it if a live key follows, then jump past it."""
        after = successor(group)
        if group < self.q.start_at:
            return after        # listed on an earlier page
        live = (key, ts) if not deleted else _first_live(group, rows)
        if live is _RANGE_END:
            return None
        if live is None:
            return after        # only tombstones: nothing to list
        self.count += 1
        self.hashed.append((group, live[0], live[1]))
        if self.with_rows:
            self.rows.append(group[self.q.strip:])
        if self.count >= self.q.limit:
            self.resume = after
            return None
        return after

    def _key_row(self, key: bytes, ts: bytes, value: bytes) -> None:
        self.count += 1
        self.hashed.append((key, ts))
        if self.with_rows:
            self.rows.append([key[self.q.strip:], *project(value, self.q.fields)])

    def finish(self) -> Page:
        # One msgpack array of the rows' tuples ((key, ts) for a key, (group, first live
        # key, ts) for a group) and the resume point: unambiguous, and packed in C.
        self.hashed.append(self.resume)
        digest = xxhash.xxh3_128_digest(msgpack.packb(self.hashed))
        return Page(digest, self.resume, self.rows, tuple(self.corrupt))


_RANGE_END = (b"", b"")     # _first_live: the records ran out inside the group


def _first_live(group: bytes, rows: Iterator[Row]) -> tuple[bytes, bytes] | None:
    """(key, ts) of the group's next live record; None when the group ends first."""
    for key, ts, deleted, _value, _checksum in rows:
        if not key.startswith(group):
            return None
        if not deleted:
            return key, ts
    return _RANGE_END


