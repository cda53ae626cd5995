"""The device index: where each fragment lives, the metadata records, segment accounting,
quarantine and repair jobs — on top of an ordered KV store (kv.py).

Rules: all methods are synchronous and run in a worker thread. Mutations only happen through
apply(), which runs a batch of operations in one transaction (the group commit's LMDB half).
Every stored value starts with a format version byte. Keys are encoded by keys.py so a
partition is one range and listings come out in exact key order.

Values (all integers big-endian):
    frag : v1 | ts u128 | Location | key (only for long keys)
    meta : v1 | flags u8 | ts u128 | Location | xxh3_64(value) | key_len u16 | key | value
    segs : segment u32 -> live bytes u64 (bytes of records the index points to)
    mdig : partition -> the running digest of its meta records (storage/meta_digest.py);
           partition + group -> the same over its records whose keys start with group
           (the first limits.digest_group_bytes key bytes)
"""

from __future__ import annotations

import dataclasses
import logging
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import msgpack
import xxhash

from storage import keys, limits, list_pages, meta_digest
from storage.kv import KVStore, KVTxn

log = logging.getLogger("coffre.storage.index")

VERSION = 1
_LOC = struct.Struct(">IQIQIQ")
_U64 = struct.Struct(">Q")
_SEG = struct.Struct(">I")


@dataclass(frozen=True)
class Location:
    segment: int
    offset: int  # the record's first byte in the segment
    head_bytes: int  # the body's chunks start at offset + head_bytes
    body_len: int
    chunk_size: int
    stored_bytes: int

    def pack(self) -> bytes:
        return _LOC.pack(self.segment, self.offset, self.head_bytes, self.body_len,
                         self.chunk_size, self.stored_bytes)

    @staticmethod
    def unpack(buf: bytes, pos: int) -> Location:
        return Location(*_LOC.unpack_from(buf, pos))


@dataclass(frozen=True)
class FragmentEntry:
    partition: int
    key: bytes
    ts: int
    loc: Location


@dataclass(frozen=True)
class MetaEntry:
    partition: int
    key: bytes
    ts: int
    value: bytes | None  # None: tombstone
    loc: Location
    intact: bool = True  # the value matched its stored checksum


@dataclass(frozen=True)
class PutFragment:
    entry: FragmentEntry


@dataclass(frozen=True)
class DeleteFragment:
    partition: int
    key: bytes
    ts: int = 0  # the delete record's device stamp


@dataclass(frozen=True)
class PutMeta:
    entry: MetaEntry  # applied only when newer than the stored record


@dataclass(frozen=True)
class Relocate:
    """Compaction moved a record; applies only if the index still points at `old`."""

    is_meta: bool
    partition: int
    key: bytes
    old: Location
    new: Location


@dataclass(frozen=True)
class Quarantine:
    """A checksum mismatch: drop the entry (if still at `loc`), keep a note, queue a repair."""

    is_meta: bool
    partition: int
    key: bytes
    loc: Location
    reason: str


@dataclass(frozen=True)
class DropSegment:
    segment: int


Op = PutFragment | DeleteFragment | PutMeta | Relocate | Quarantine | DropSegment


@dataclass(frozen=True)
class RepairJob:
    seq: int
    partition: int
    key: bytes
    is_meta: bool
    reason: str
    time_s: float


def _frag_value(e: FragmentEntry) -> bytes:
    tail = e.key if keys.is_long(e.key) else b""
    return bytes([VERSION]) + e.ts.to_bytes(16, "big") + e.loc.pack() + tail


def _frag_entry(lmdb_key: bytes, value: bytes) -> FragmentEntry:
    if value[0] != VERSION:
        raise ValueError(f"unknown frag value version {value[0]}")
    partition, key = keys.decode_short(lmdb_key)
    tail_at = 1 + 16 + _LOC.size
    if keys.group_of(lmdb_key) is not None:
        key = value[tail_at:]
    return FragmentEntry(partition, key, int.from_bytes(value[1:17], "big"),
                         Location.unpack(value, 17))


def _meta_value(e: MetaEntry) -> bytes:
    flags = 1 if e.value is None else 0
    body = e.value or b""
    return (bytes([VERSION, flags]) + e.ts.to_bytes(16, "big") + e.loc.pack()
            + xxhash.xxh3_64_digest(body) + len(e.key).to_bytes(2, "big") + e.key + body)


def _meta_entry(partition: int, value: bytes) -> MetaEntry:
    if value[0] != VERSION:
        raise ValueError(f"unknown meta value version {value[0]}")
    ts = int.from_bytes(value[2:18], "big")
    loc = Location.unpack(value, 18)
    pos = 18 + _LOC.size
    digest = value[pos:pos + 8]
    key_len = int.from_bytes(value[pos + 8:pos + 10], "big")
    key = value[pos + 10:pos + 10 + key_len]
    body = value[pos + 10 + key_len:]
    intact = xxhash.xxh3_64_digest(body) == digest
    return MetaEntry(partition, key, ts, None if value[1] & 1 else body, loc, intact)


_META_DIGEST_AT = 18 + _LOC.size
# The LMDB key of a long key (keys.py): its group prefix, then a hash.
_GROUP_BYTES = limits.partition_prefix_bytes + limits.lmdb_key_prefix_bytes
_LONG_LMDB_KEY_BYTES = _GROUP_BYTES + limits.long_key_suffix_bytes


def _meta_row(value: bytes) -> list_pages.Row:
    """(key, ts bytes, tombstone?, value, value's xxh3_64) of a meta value: _meta_entry,
    lighter; the checksum is checked by the page only for the rows it lists."""
    if value[0] != VERSION:
        raise ValueError(f"unknown meta value version {value[0]}")
    pos = _META_DIGEST_AT
    key_end = pos + 10 + int.from_bytes(value[pos + 8:pos + 10], "big")
    return (value[pos + 10:key_end], value[2:18], bool(value[1] & 1), value[key_end:],
            value[pos:pos + 8])


# state key: every partition's and key group's digest is in "mdig" (v1 had no groups)
_DIGESTS_READY = b"mdig_v2"
_GROUP = limits.digest_group_bytes


class Index:
    def __init__(self, store: KVStore) -> None:
        self._kv = store
        self._init_digests()

    def _init_digests(self) -> None:
        """Compute the partitions' running digests once for an index written before they
        existed (one scan of the meta table); from then on apply() keeps them."""
        with self._kv.read() as txn:
            if txn.get("state", _DIGESTS_READY) is not None:
                return
            records = txn.count("meta")
        if records:
            log.info("computing the metadata digests of an index written by an older "
                     "version: one scan of its %d records, once", records)
        with self._kv.write() as txn:
            for k, _ in list(txn.scan("mdig", b"", None)):
                txn.delete("mdig", k)
            acc: dict[bytes, tuple[int, int]] = {}
            for k, v in txn.scan("meta", b"", None):
                key, ts = _meta_row(v)[:2]
                part = k[:limits.partition_prefix_bytes]
                t = meta_digest.term(key, ts)
                for name in (part, part + key[:_GROUP]):
                    x, n = acc.get(name, (0, 0))
                    acc[name] = (x ^ t, n + 1)
            for name, (x, n) in acc.items():
                txn.put("mdig", name, meta_digest.fold(None, x, n))
            txn.put("state", _DIGESTS_READY, b"1")

    def close(self) -> None:
        self._kv.close()

    # -- reads ---------------------------------------------------------------------------
    def get_fragment(self, partition: int, key: bytes) -> FragmentEntry | None:
        with self._kv.read() as txn:
            return self._get_frag(txn, partition, key)

    def get_meta(self, partition: int, key: bytes) -> MetaEntry | None:
        with self._kv.read() as txn:
            return self._get_meta(txn, partition, key)

    def list_fragments(self, partition: int, after: bytes, limit: int) -> list[FragmentEntry]:
        with self._kv.read() as txn:
            rows = txn.scan("frag", keys.seek_key(partition, after), keys.partition_end(partition))
            decoded = ((k, e.key, e) for k, e in ((k, _frag_entry(k, v)) for k, v in rows))
            out = (e for key, e in keys.order_groups(decoded) if key > after or not after)
            return _take(out, limit)

    def list_meta(self, partition: int, prefix: bytes, start_after: bytes | None,
                  start_at: bytes | None, limit: int,
                  delimiter: bytes | None = None) -> list[MetaEntry]:
        """Records under `prefix` in key order. With a delimiter, a group of keys that share
        prefix + ... + delimiter is cut short after its first live record (tombstones before
        it included, so a reader merging replicas still sees deletes): the scan then jumps
        past the group, and a folder of a million keys costs one seek."""
        low: bytes | None = max(prefix, start_at or b"", start_after or b"")
        out: list[MetaEntry] = []
        with self._kv.read() as txn:
            while low is not None and len(out) < limit:
                low = self._scan_meta(txn, partition, prefix, low, start_after, start_at,
                                      limit, delimiter, out)
        return out

    def _scan_meta(self, txn: KVTxn, partition: int, prefix: bytes, low: bytes,
                   start_after: bytes | None, start_at: bytes | None, limit: int,
                   delimiter: bytes | None, out: list[MetaEntry]) -> bytes | None:
        """Append matching records from `low` on; return where to resume after a group
        jump, or None when the scan is over."""
        for key, entry in self._meta_rows(txn, partition, low):
            if not key.startswith(prefix):
                if key > prefix:
                    return None
                continue
            # A long `low` seeks to the start of its hashed group: skip what lies before it.
            if key < low or (start_after is not None and key <= start_after) or (
                    start_at is not None and key < start_at):
                continue
            out.append(entry)
            if len(out) >= limit:
                return None
            if delimiter and entry.value is not None:
                at = key.find(delimiter, len(prefix))
                if at >= 0:
                    return keys.successor(key[: at + len(delimiter)])
        return None

    def list_page(self, partition: int, query: list_pages.PageQuery,
                  with_rows: bool) -> list_pages.Page:
        """A compact listing page or its digest (storage/list_pages.py says what it is)."""
        with self._kv.read() as txn:
            cursor = txn.cursor("meta")     # one cursor for all the page's seeks
            end = keys.partition_end(partition)
            seek_at = cursor.first
            part = keys.partition_bytes(partition)
            short = limits.lmdb_key_prefix_bytes

            def first(low: bytes) -> list_pages.Head | None:
                found = seek_at(part + low[:short], end)    # keys.seek_key, inlined
                # A long key may not be its group's first in key order: the scan sorts it.
                if found is None or len(found[0]) == _LONG_LMDB_KEY_BYTES:
                    return None
                v = found[1]
                if v[0] != VERSION:
                    raise ValueError(f"unknown meta value version {v[0]}")
                at = _META_DIGEST_AT + 10
                return v[at:at + int.from_bytes(v[at - 2:at], "big")], v[2:18], bool(v[1] & 1)

            page = list_pages.build(
                lambda low: self._page_rows(cursor.scan(keys.seek_key(partition, low), end)),
                query, with_rows, first)
            # The digest of what the page can list, in the same snapshot as the page.
            return dataclasses.replace(
                page, state=self._digest(txn, partition, digest_group(query.prefix)))

    def meta_digest(self, partition: int, group: bytes = b"") -> bytes:
        """The running digest of the partition's meta records (storage/meta_digest.py), or
        of those in one key group (digest_group)."""
        with self._kv.read() as txn:
            return self._digest(txn, partition, group)

    @staticmethod
    def _digest(txn: KVTxn, partition: int, group: bytes = b"") -> bytes:
        return txn.get("mdig", keys.partition_bytes(partition) + group) or meta_digest.EMPTY

    @staticmethod
    def _page_rows(rows: Iterator[tuple[bytes, bytes]]) -> Iterator[list_pages.Row]:
        # No MetaEntry per record: a listing reads only the key, stamp, flags and value. One
        # loop instead of a chain of generators (this runs once per listed record per
        # replica); a run of long keys goes through keys.order_groups to be re-sorted.
        run: list[tuple[bytes, bytes, list_pages.Row]] = []    # one long-key group
        for k, v in rows:
            if len(k) != _LONG_LMDB_KEY_BYTES:      # keys.group_of(k) is None, inlined
                if run:
                    yield from (row for _, row in keys.order_groups(run))
                    run = []
                yield _meta_row(v)
                continue
            if run and k[:_GROUP_BYTES] != run[0][0][:_GROUP_BYTES]:
                yield from (row for _, row in keys.order_groups(run))
                run = []
            row = _meta_row(v)
            run.append((k, row[0], row))
        yield from (row for _, row in keys.order_groups(run))

    def _meta_rows(self, txn: KVTxn, partition: int, low: bytes) -> Iterator[
            tuple[bytes, MetaEntry]]:
        rows = txn.scan("meta", keys.seek_key(partition, low), keys.partition_end(partition))
        decoded = ((k, e.key, e) for k, e in ((k, _meta_entry(partition, v)) for k, v in rows))
        return keys.order_groups(decoded)

    def scan_fragments(self, cursor: bytes, limit: int) -> tuple[list[FragmentEntry], bytes]:
        """All fragments of the device in LMDB order, a page at a time (for the scrubber)."""
        with self._kv.read() as txn:
            out: list[FragmentEntry] = []
            last = cursor
            for k, v in txn.scan("frag", cursor, None):
                out.append(_frag_entry(k, v))
                last = k + b"\x00"
                if len(out) >= limit:
                    break
            return out, last

    def check_meta(self, cursor: bytes, limit: int) -> tuple[int, list[tuple[int, bytes]],
                                                            bytes]:
        """The scrubber's pass over metadata, a page at a time: (records checked, (partition,
        key) of those whose value fails its checksum, where the next page starts). Only the
        checksum is computed: no record is decoded."""
        corrupt: list[tuple[int, bytes]] = []
        checked = 0
        last = cursor
        with self._kv.read() as txn:
            for k, v in txn.scan("meta", cursor, None):
                key, _ts, _deleted, body, checksum = _meta_row(v)
                if xxhash.xxh3_64_digest(body) != checksum:
                    corrupt.append((keys.decode_short(k)[0], key))
                checked += 1
                last = k + b"\x00"
                if checked >= limit:
                    break
        return checked, corrupt, last

    def segment_live_bytes(self) -> dict[int, int]:
        with self._kv.read() as txn:
            return {_SEG.unpack(k)[0]: _U64.unpack(v)[0] for k, v in txn.scan("segs", b"", None)}

    def counts(self) -> dict[str, int]:
        with self._kv.read() as txn:
            return {name: txn.count(name) for name in ("frag", "meta", "quarantine", "repair")}

    def repair_jobs(self, limit: int = 1000) -> list[RepairJob]:
        with self._kv.read() as txn:
            out: list[RepairJob] = []
            for k, v in txn.scan("repair", b"", None):
                d = msgpack.unpackb(v)
                out.append(RepairJob(_U64.unpack(k)[0], d["p"], d["k"], d["m"], d["r"], d["t"]))
                if len(out) >= limit:
                    break
            return out

    def get_state(self, name: str) -> bytes | None:
        with self._kv.read() as txn:
            return txn.get("state", name.encode())

    def meta_summary(self, partition: int) -> tuple[int, str]:
        """(records, hash) of the partition's metadata records, tombstones included: equal
        on two replicas that hold the same keys at the same stamps. It is the running
        digest (storage/meta_digest.py): no scan."""
        digest = self.meta_digest(partition)
        return meta_digest.count(digest), digest.hex()

    def partition_summary(self, partition: int) -> dict[str, int | str]:
        metas, meta_hash = self.meta_summary(partition)
        h = xxhash.xxh3_128(b"m" + meta_hash.encode())
        count = size = 0
        for_frags = self._all_fragments(partition)
        for fe in for_frags:
            h.update(b"f" + _field(fe.key) + fe.loc.body_len.to_bytes(8, "big"))
            count += 1
            size += fe.loc.body_len
        return {"count": count + metas, "bytes": size, "meta_count": metas,
                "fragment_count": count, "hash": h.hexdigest(), "meta_hash": meta_hash}

    def _all_fragments(self, partition: int) -> Iterator[FragmentEntry]:
        after = b""
        while True:
            page = self.list_fragments(partition, after, 1000)
            yield from page
            if len(page) < 1000:
                return
            after = page[-1].key

    # -- the one write path --------------------------------------------------------------
    def apply(self, ops: Sequence[Op]) -> list[bool]:
        """Run ops in one durable transaction; each result says whether the op took effect."""
        with self._kv.write() as txn:
            live: dict[int, int] = {}
            results = [self._apply_one(txn, op, live) for op in ops]
            self._save_live(txn, live)
            self._save_stamp(txn, ops)
        return results

    def fragment_stamp(self) -> int:
        """The newest device stamp a fragment record was committed with (0 if none)."""
        raw = self.get_state("frag_ts")
        return int.from_bytes(raw, "big") if raw else 0

    def _save_stamp(self, txn: KVTxn, ops: Sequence[Op]) -> None:
        # Stamps must grow across restarts even if the clock steps back, or rebuild-index
        # (newest stamp wins) could prefer an older record of a key.
        newest = max((op.entry.ts if isinstance(op, PutFragment) else op.ts for op in ops
                      if isinstance(op, PutFragment | DeleteFragment)), default=0)
        if newest:
            raw = txn.get("state", b"frag_ts")
            if newest > (int.from_bytes(raw, "big") if raw else 0):
                txn.put("state", b"frag_ts", newest.to_bytes(16, "big"))

    def _apply_one(self, txn: KVTxn, op: Op, live: dict[int, int]) -> bool:
        if isinstance(op, PutFragment):
            return self._put_frag(txn, op.entry, live)
        if isinstance(op, DeleteFragment):
            return self._drop(txn, False, op.partition, op.key, None, live)
        if isinstance(op, PutMeta):
            return self._put_meta(txn, op.entry, live)
        if isinstance(op, Relocate):
            return self._relocate(txn, op, live)
        if isinstance(op, Quarantine):
            return self._quarantine(txn, op, live)
        txn.delete("segs", _SEG.pack(op.segment))
        live.pop(op.segment, None)
        return True

    def _put_frag(self, txn: KVTxn, e: FragmentEntry, live: dict[int, int]) -> bool:
        old = self._get_frag(txn, e.partition, e.key)
        if old is not None:
            _add(live, old.loc, -1)
        txn.put("frag", keys.encode(e.partition, e.key), _frag_value(e))
        _add(live, e.loc, +1)
        return True

    def _put_meta(self, txn: KVTxn, e: MetaEntry, live: dict[int, int]) -> bool:
        old = self._get_meta(txn, e.partition, e.key)
        if old is not None and old.ts >= e.ts:
            return False
        change = _term(e)
        if old is not None:
            _add(live, old.loc, -1)
            change ^= _term(old)
        txn.put("meta", keys.encode(e.partition, e.key), _meta_value(e))
        _add(live, e.loc, +1)
        _fold_digest(txn, e.partition, e.key, change, 0 if old is not None else 1)
        return True

    def _drop(self, txn: KVTxn, is_meta: bool, partition: int, key: bytes,
              at: Location | None, live: dict[int, int]) -> bool:
        found = (self._get_meta(txn, partition, key) if is_meta
                 else self._get_frag(txn, partition, key))
        if found is None or (at is not None and found.loc != at):
            return False
        txn.delete("meta" if is_meta else "frag", keys.encode(partition, key))
        _add(live, found.loc, -1)
        if isinstance(found, MetaEntry):
            _fold_digest(txn, partition, key, _term(found), -1)
        return True

    def _relocate(self, txn: KVTxn, op: Relocate, live: dict[int, int]) -> bool:
        if op.is_meta:
            m = self._get_meta(txn, op.partition, op.key)
            if m is None or m.loc != op.old:
                return False
            txn.put("meta", keys.encode(op.partition, op.key), _meta_value(
                MetaEntry(m.partition, m.key, m.ts, m.value, op.new)))
        else:
            f = self._get_frag(txn, op.partition, op.key)
            if f is None or f.loc != op.old:
                return False
            txn.put("frag", keys.encode(op.partition, op.key), _frag_value(
                FragmentEntry(f.partition, f.key, f.ts, op.new)))
        _add(live, op.old, -1)
        _add(live, op.new, +1)
        return True

    def _quarantine(self, txn: KVTxn, op: Quarantine, live: dict[int, int]) -> bool:
        if not self._drop(txn, op.is_meta, op.partition, op.key, op.loc, live):
            return False
        now = time.time()
        note = {"p": op.partition, "k": op.key, "m": op.is_meta, "r": op.reason, "t": now,
                "loc": list(_LOC.unpack(op.loc.pack()))}
        txn.put("quarantine", keys.encode(op.partition, op.key), msgpack.packb(note))
        last = txn.last_key("repair")
        seq = _U64.unpack(last)[0] + 1 if last else 1
        txn.put("repair", _U64.pack(seq), msgpack.packb(note))
        return True

    def _save_live(self, txn: KVTxn, delta: dict[int, int]) -> None:
        for seg, change in delta.items():
            if change == 0:
                continue
            raw = txn.get("segs", _SEG.pack(seg))
            now = (_U64.unpack(raw)[0] if raw else 0) + change
            assert now >= 0, f"segment {seg} live bytes went negative"
            txn.put("segs", _SEG.pack(seg), _U64.pack(now))

    def _get_frag(self, txn: KVTxn, partition: int, key: bytes) -> FragmentEntry | None:
        k = keys.encode(partition, key)
        v = txn.get("frag", k)
        if v is None:
            return None
        e = _frag_entry(k, v)
        # A 64-bit hash collision between two long keys of one group would alias them.
        return e if e.key == key else None

    def _get_meta(self, txn: KVTxn, partition: int, key: bytes) -> MetaEntry | None:
        v = txn.get("meta", keys.encode(partition, key))
        if v is None:
            return None
        e = _meta_entry(partition, v)
        return e if e.key == key else None


def _term(e: MetaEntry) -> int:
    return meta_digest.term(e.key, e.ts.to_bytes(16, "big"))


def digest_group(prefix: bytes) -> bytes:
    """The key group whose digest covers every record under `prefix`; b"" (the whole
    partition) when the prefix is shorter than a group."""
    return prefix[:_GROUP] if len(prefix) >= _GROUP else b""


def _fold_digest(txn: KVTxn, partition: int, key: bytes, change: int,
                 count_delta: int) -> None:
    part = keys.partition_bytes(partition)
    for name in (part, part + key[:_GROUP]):
        folded = meta_digest.fold(txn.get("mdig", name), change, count_delta)
        if meta_digest.count(folded):
            txn.put("mdig", name, folded)
        else:       # an emptied group leaves no entry behind (its digest reads as EMPTY)
            txn.delete("mdig", name)


def _add(live: dict[int, int], loc: Location, sign: int) -> None:
    live[loc.segment] = live.get(loc.segment, 0) + sign * loc.stored_bytes


def _field(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _take(items: Iterable[FragmentEntry], limit: int) -> list[FragmentEntry]:
    out: list[FragmentEntry] = []
    for item in items:
        if len(out) >= min(limit, limits.list_limit_max):
            break
        out.append(item)
    return out
