"""Data ids: the name of one run of erasure-coded bytes, and what a node can learn from it.

A fragment key is `data_id + one byte fragment index`; nodes see nothing else of the object
a fragment belongs to. A version-1 data id therefore carries what the node's background work
needs to decide alone:

    byte  0       version (1)
    byte  1, 2    k, m of the code (the ring only knows the width k + m)
    bytes 3..8    creation time, epoch milliseconds, big-endian (the gateway's clock)
    bytes 9..16   home: xxh3_64 of the name of the metadata partition whose records (object
                  manifest, multipart part records) reference this data id; 0 = unknown
    bytes 17..27  random (the data partition is the hash of the whole id)

Rules: pure (callers pass the time and may pass the random bytes). An id of any other shape
(the 16 random bytes of earlier releases) parses to None: it is never taken for an orphan.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import xxhash

VERSION = 1
id_bytes_v1 = 28
random_bytes_v1 = 11
created_ms_max = (1 << 48) - 1
NO_HOME = 0


@dataclass(frozen=True)
class DataIdInfo:
    k: int
    m: int
    created_ms: int
    home_hash: int  # xxh3_64 of the home partition's name; NO_HOME if the writer gave none

    @property
    def width(self) -> int:
        return self.k + self.m


def home_hash(home_name: bytes) -> int:
    """The hash a metadata ring turns into a partition (ring.partition_of hashes the same)."""
    return int(xxhash.xxh3_64_intdigest(home_name)) if home_name else NO_HOME


def new_data_id(k: int, m: int, home_name: bytes, now_ms: int,
                rand: bytes | None = None) -> bytes:
    """A fresh version-1 data id; `home_name` is the metadata partition name (b"" if none)."""
    if not (1 <= k <= 255 and 0 <= m <= 255):
        raise ValueError(f"k={k} m={m} do not fit a data id")
    if not 0 <= now_ms <= created_ms_max:
        raise ValueError("creation time out of range")
    tail = os.urandom(random_bytes_v1) if rand is None else rand
    if len(tail) != random_bytes_v1:
        raise ValueError(f"need {random_bytes_v1} random bytes")
    return (bytes([VERSION, k, m]) + now_ms.to_bytes(6, "big")
            + home_hash(home_name).to_bytes(8, "big") + tail)


def parse(data_id: bytes) -> DataIdInfo | None:
    """What a version-1 id says, or None for any other id."""
    if len(data_id) != id_bytes_v1 or data_id[0] != VERSION or data_id[1] == 0:
        return None
    return DataIdInfo(k=data_id[1], m=data_id[2],
                      created_ms=int.from_bytes(data_id[3:9], "big"),
                      home_hash=int.from_bytes(data_id[9:17], "big"))


def home_partition(info: DataIdInfo, part_power: int) -> int | None:
    """The metadata partition of the home (as ring.partition_of computes it), or None."""
    if info.home_hash == NO_HOME:
        return None
    return info.home_hash >> (64 - part_power)
