"""Merging the index shards' listing pages into one S3 page (pure: rows in, rows out).

A bucket's keys are spread over its shards by hash, so one S3 page of N rows takes about
N / shards rows from each shard, in key order. Every shard is asked for its share (plus
slack) at once; a row is final once no shard can still produce a smaller one, i.e. when it
sorts before every unfinished shard's resume point. When fewer than N + 1 rows are final,
the shards that may still hold rows before the page's end are asked for more, sized by
what is missing (a common prefix shows up in many shards: the duplication seen so far says
how many rows each shard must give for one more distinct row).

Rows are as the nodes send them (storage/list_pages.py): a key row is a list
[key suffix, *LIST_FIELDS of its manifest], a common prefix is the bytes suffix itself.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway import errors, limits
from gateway.checksums import checksum_type_of
from gateway.manifest import MANIFEST_V1, MANIFEST_V2
from gateway.s3xml import ListEntry

# The manifest fields a listing needs, as positions in Manifest.encode()'s array: format
# version, size, ETag, mtime, the storage class from the headers map, and the checksums
# map (algorithm -> value; in every manifest version): the listing names the algorithm,
# and the value tells its type (a composite one ends in "-N").
LIST_FIELDS: tuple[int | tuple[int, str], ...] = (0, 1, 2, 3, (4, "x-amz-storage-class"), 9)


def row_key(row: Any) -> bytes:
    return row if isinstance(row, bytes) else bytes(row[0])


class ShardBuffer:
    """What one shard has sent so far and where its next page starts (its resume point,
    a full record key; None once the shard has nothing more)."""

    def __init__(self, start_at: bytes, strip: int) -> None:
        self.rows: list[Any] = []
        self.keys: list[bytes] = []     # row_key of each row (bisect needs a key list)
        self.resume: bytes | None = start_at
        self._strip = strip
        self.asked = 0                  # rows asked in the last call

    @property
    def done(self) -> bool:
        return self.resume is None

    @property
    def resume_suffix(self) -> bytes | None:
        return None if self.resume is None else self.resume[self._strip:]

    def add(self, rows: list[Any], resume: bytes | None) -> None:
        self.rows.extend(rows)
        # msgpack gives bytes for bin: the key of a row is its first item as it is
        self.keys.extend([r if r.__class__ is bytes else r[0] for r in rows])
        self.resume = resume


@dataclass(frozen=True)
class Leftover:
    """A shard's rows past a page's end: its rows from the next page's start on, up to its
    resume point (contiguous, as the shard sent them)."""

    rows: list[Any]
    resume: bytes | None


def leftovers(shards: Sequence[ShardBuffer], page_end: bytes) -> list[Leftover]:
    """What each shard holds after `page_end` (a row key: the page's last row)."""
    return [Leftover(s.rows[bisect.bisect_right(s.keys, page_end):], s.resume)
            for s in shards]


def carried(left: Leftover, strip: int) -> ShardBuffer:
    """A shard buffer that starts with a previous page's leftover rows."""
    buf = ShardBuffer(b"", strip)
    buf.add(left.rows, left.resume)
    return buf


@dataclass(frozen=True)
class MergeStep:
    """Either the page (rows, truncated) or the shards to ask next and how many rows."""

    rows: list[Any] | None
    truncated: bool = False
    fetch: tuple[tuple[int, int], ...] = ()     # (shard index, rows to ask)
    # Rows the shards sent per distinct row, over the merged ones: what the next listing of
    # the same shape should expect (first_ask).
    duplication: float = 1.0


def first_ask(want: int, shards: int, duplication: float = 1.0) -> int:
    """Rows to ask each shard first: its expected share of want + 1, plus about three
    standard deviations of a binomial share, so that one round usually suffices.

    `duplication` is how many shards list each distinct row (1 for keys; up to the shard
    count for common prefixes, which every shard holding a key of the folder lists): a
    listing of folders that span every shard needs want + 1 rows from each."""
    share = (want + 1) * min(max(duplication, 1.0), shards) / shards
    rows = math.ceil(share + 3 * math.sqrt(share)) + limits.shard_slack_rows
    return min(limits.shard_page_rows_max, rows)


class DuplicationHints:
    """The duplication last seen per listing shape (bucket, prefix, delimiter), so that a
    page of folders is asked in one round the next time: a per-process memory, bounded."""

    def __init__(self, size: int = 1024) -> None:
        self._seen: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._size = size

    def get(self, shape: tuple[str, str, str]) -> float:
        return self._seen.get(shape, 1.0)

    def put(self, shape: tuple[str, str, str], value: float) -> None:
        self._seen[shape] = value
        self._seen.move_to_end(shape)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)


def merge(shards: Sequence[ShardBuffer], want: int) -> MergeStep:
    """The page of `want` rows if the buffers decide it, else what to fetch next."""
    bound = min((s.resume_suffix for s in shards if s.resume_suffix is not None),
                default=None)
    parts = [(s.keys, s.rows) if bound is None else
             (s.keys, s.rows[:bisect.bisect_left(s.keys, bound)]) for s in shards]
    final = _merged(parts)
    seen = sum(len(rows) for _, rows in parts) / len(final) if final else 1.0
    if len(final) > want:
        return MergeStep(final[:want], True, duplication=seen)
    if bound is None:
        return MergeStep(final, False, duplication=seen)
    everything = _merged([(s.keys, s.rows) for s in shards])
    end = row_key(everything[want]) if len(everything) > want else None
    fetch = [i for i, s in enumerate(shards) if s.resume_suffix is not None
             and (end is None or s.resume_suffix <= end)]
    buffered = sum(len(s.rows) for s in shards)
    duplication = buffered / len(everything) if everything else 1.0
    need = (want + 1 - len(final)) * duplication / len(fetch)
    ask = min(limits.shard_page_rows_max, max(limits.shard_refill_rows_min, math.ceil(need * 1.25)))
    return MergeStep(None, fetch=tuple((i, ask) for i in fetch))


def _merged(lists: Sequence[tuple[list[bytes], list[Any]]]) -> list[Any]:
    """Rows of all (keys, rows) lists in key order, each common prefix once (several shards
    hold it). `rows` may be a prefix of `keys`' rows. The keys were computed once, when the
    rows arrived: the sort looks them up instead of calling a key function per row."""
    keys: list[bytes] = []
    rows: list[Any] = []
    for ks, rs in lists:
        keys.extend(ks[:len(rs)])
        rows.extend(rs)
    out: list[Any] = []
    last: Any = None
    for i in sorted(range(len(rows)), key=keys.__getitem__):
        r = rows[i]
        if r.__class__ is bytes and r == last:
            continue
        out.append(r)
        last = r
    return out


_VERSIONS = frozenset((MANIFEST_V1, MANIFEST_V2))


def to_entry(row: list[Any]) -> ListEntry:
    """A key row as the listing document's entry."""
    key, version, size, etag, mtime_ms, storage_class, sums = row
    if version not in _VERSIONS:
        raise errors.InternalError(f"unreadable manifest in listing: version {version!r}")
    alg, kind = checksum_of(sums)
    # Runs for every listed key: the conversions only when a field is not of its type yet,
    # and the tuple made directly (a NamedTuple's own __new__ is a Python function).
    return _new_entry(ListEntry, (
        key.decode("utf-8", "surrogateescape"),
        mtime_ms if mtime_ms.__class__ is int else int(mtime_ms),
        etag if etag.__class__ is str else str(etag),
        size if size.__class__ is int else int(size),
        storage_class if storage_class.__class__ is str and storage_class else
        str(storage_class or "STANDARD"), alg, kind))


def checksum_of(sums: Any) -> tuple[str, str]:
    """A listed manifest's checksum algorithm and type ("", "" when it has none)."""
    if not sums or sums.__class__ is not dict:
        return "", ""
    alg, value = next(iter(sums.items()))
    return str(alg), checksum_type_of(str(value)).value


_new_entry = tuple.__new__
