"""LMDB key encoding: partition first, long keys folded under LMDB's 511-byte limit.

    lmdb_key = partition (4 bytes, big-endian) + key                        if len(key) <= P
             = partition (4 bytes, big-endian) + key[:P] + xxh3_64(key)     otherwise

with P = limits.lmdb_key_prefix_bytes. Every key in partition p sorts inside [p, p+1), so a
partition is one cursor range. The order of LMDB keys equals the order of user keys except
inside a "group" of long keys that share their first P bytes: those sort by hash. Scans
therefore read a whole group and sort it by the full key (stored in the value) before
emitting it (order_groups). A short key that equals a group's prefix sorts before the group,
as it should, since it is a proper prefix of every key in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import xxhash

from storage import limits

_P = limits.lmdb_key_prefix_bytes
_PP = limits.partition_prefix_bytes

T = TypeVar("T")


def partition_bytes(partition: int) -> bytes:
    return partition.to_bytes(_PP, "big")


def encode(partition: int, key: bytes) -> bytes:
    if len(key) <= _P:
        return partition_bytes(partition) + key
    return partition_bytes(partition) + key[:_P] + xxhash.xxh3_64_digest(key)


def is_long(key: bytes) -> bool:
    return len(key) > _P


def decode_short(lmdb_key: bytes) -> tuple[int, bytes]:
    """Partition and key of an LMDB key that encodes a short key."""
    return int.from_bytes(lmdb_key[:_PP], "big"), lmdb_key[_PP:]


def group_of(lmdb_key: bytes) -> bytes | None:
    """The shared prefix of a long-key group, or None for a short key."""
    if len(lmdb_key) == _PP + _P + limits.long_key_suffix_bytes:
        return lmdb_key[:_PP + _P]
    return None


def seek_key(partition: int, key: bytes) -> bytes:
    """The smallest LMDB key whose user key may be >= key (a group starts at its prefix)."""
    return partition_bytes(partition) + key[:_P]


def partition_end(partition: int) -> bytes:
    return partition_bytes(partition + 1)


def order_groups(rows: Iterable[tuple[bytes, bytes, T]]) -> Iterator[tuple[bytes, T]]:
    """Rows (lmdb_key, full user key, item) in LMDB order -> (user key, item) in key order.

    Consecutive rows of one long-key group are collected and sorted by the full key.
    """
    group: list[tuple[bytes, T]] = []
    group_prefix: bytes | None = None
    for lmdb_key, key, item in rows:
        prefix = group_of(lmdb_key)
        if group and prefix != group_prefix:
            yield from sorted(group, key=lambda pair: pair[0])
            group = []
        if prefix is None:
            yield key, item
        else:
            group.append((key, item))
        group_prefix = prefix
    yield from sorted(group, key=lambda pair: pair[0])


def successor(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string that starts with `prefix`."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return prefix + b"\xff"
    return trimmed[:-1] + bytes([trimmed[-1] + 1])
