"""The ring file: one file holds the ring that processes use and the builder state.

Layout (all integers little-endian):
  header   magic b"COFFRING" | format version u16 | flags u16 (0) | body length u64
  body     msgpack map {"ring": {...}, "builder": {...}}
  trailer  xxh3_64 of header + body, u64
The assignment is a packed u16 array inside the body, so a 2^16 x 6 ring loads in
milliseconds. Writing is deterministic: the same state gives the same bytes. `save` writes a
temporary file, fsyncs it, renames it over the target and fsyncs the directory, so a reader
sees the old file or the new one, never a mix. Processes read only the "ring" part (`load`);
the CLI reads both (`load_state`). Format version 1 is the only one so far; readers of later
versions must keep reading it (tests/ring/fixtures holds a v1 file).
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from array import array
from typing import Any

import msgpack
import xxhash

from ring import limits
from ring.model import Device, Ring
from ring.state import BuilderState, default_max_moves

MAGIC = b"COFFRING"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<8sHHQ")
_TRAILER = struct.Struct("<Q")


class RingFileError(Exception):
    """Not a ring file, a bad checksum, an unknown format version, or inconsistent content."""


def _le_bytes(arr: array[int]) -> bytes:
    if sys.byteorder == "little":
        return arr.tobytes()
    swapped = array(arr.typecode, arr)
    swapped.byteswap()
    return swapped.tobytes()


def _from_le(typecode: str, data: bytes) -> array[int]:
    arr = array(typecode)
    if len(data) % arr.itemsize:
        raise RingFileError("truncated array")
    arr.frombytes(data)
    if sys.byteorder != "little":
        arr.byteswap()
    return arr


def _dev_row(dev: Device) -> list[Any]:
    return [dev.id, dev.addr, float(dev.weight), dev.domain]


def _ring_body(ring: Ring) -> dict[str, Any]:
    return {
        "version": ring.version,
        "part_power": ring.part_power,
        "width": ring.width,
        "devices": [_dev_row(d) for d in ring.devices],
        "assignment": _le_bytes(ring.assignment),
        "previous": [[p, list(ring.previous[p])] for p in sorted(ring.previous)],
        "retired": [_dev_row(d) for d in ring.retired],
    }


def _builder_body(state: BuilderState) -> dict[str, Any]:
    return {
        "devices": [_dev_row(d) for d in state.devices],
        "failed": sorted(state.failed),
        "min_part_hours": state.min_part_hours,
        "max_moves": state.max_moves,
        "seed": state.seed,
        "last_moved": _le_bytes(state.last_moved),
    }


def dumps_state(state: BuilderState) -> bytes:
    body = msgpack.packb(
        {"ring": _ring_body(state.ring), "builder": _builder_body(state)}, use_bin_type=True
    )
    header = _HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(body))
    digest = xxhash.xxh3_64_intdigest(header + body)
    return header + body + _TRAILER.pack(digest)


def dumps(ring: Ring) -> bytes:
    """A ring file with default builder settings and no move history: the CLI can edit and
    rebalance it (min_part_hours 1, max moves for its width, seed 0)."""
    state = BuilderState(ring, ring.devices, max_moves=default_max_moves(ring.width), seed=0)
    return dumps_state(state)


def _body(data: bytes) -> dict[str, Any]:
    if len(data) < _HEADER.size + _TRAILER.size or data[:8] != MAGIC:
        raise RingFileError("not a ring file")
    if len(data) > limits.ring_file_size_max_bytes:
        raise RingFileError("ring file too large")
    _, version, _flags, length = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise RingFileError(f"unsupported ring format version {version}")
    end = _HEADER.size + length
    if end + _TRAILER.size != len(data):
        raise RingFileError("ring file truncated or has trailing bytes")
    (digest,) = _TRAILER.unpack_from(data, end)
    if xxhash.xxh3_64_intdigest(data[:end]) != digest:
        raise RingFileError("bad ring file checksum")
    try:
        body = msgpack.unpackb(data[_HEADER.size : end], raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise RingFileError(f"bad ring file body: {exc}") from exc
    if not isinstance(body, dict) or not isinstance(body.get("ring"), dict):
        raise RingFileError("bad ring file body")
    return body


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RingFileError(f"bad field {key!r}")
    return value


def _bytes(obj: dict[str, Any], key: str) -> bytes:
    value = obj.get(key)
    if not isinstance(value, bytes):
        raise RingFileError(f"bad field {key!r}")
    return value


def _devices(rows: Any) -> tuple[Device, ...]:
    if not isinstance(rows, list):
        raise RingFileError("bad device list")
    out = []
    for row in rows:
        ok = isinstance(row, list) and len(row) == 4
        if not ok or not (isinstance(row[0], int) and isinstance(row[1], str)):
            raise RingFileError("bad device row")
        if not isinstance(row[2], float | int) or not isinstance(row[3], str):
            raise RingFileError("bad device row")
        out.append(Device(row[0], row[1], float(row[2]), row[3]))
    return tuple(out)


def _previous(rows: Any) -> dict[int, tuple[int, ...]]:
    if not isinstance(rows, list):
        raise RingFileError("bad previous assignment")
    out: dict[int, tuple[int, ...]] = {}
    for row in rows:
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], int)):
            raise RingFileError("bad previous assignment")
        ids = row[1]
        if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
            raise RingFileError("bad previous assignment")
        out[row[0]] = tuple(ids)
    return out


def _ring(obj: dict[str, Any]) -> Ring:
    try:
        return Ring(
            version=_int(obj, "version"),
            part_power=_int(obj, "part_power"),
            width=_int(obj, "width"),
            devices=_devices(obj.get("devices")),
            assignment=_from_le("H", _bytes(obj, "assignment")),
            previous=_previous(obj.get("previous")),
            retired=_devices(obj.get("retired")),
        )
    except (ValueError, KeyError, OverflowError) as exc:
        raise RingFileError(f"inconsistent ring: {exc}") from exc


def loads(data: bytes) -> Ring:
    return _ring(_body(data)["ring"])


def loads_state(data: bytes) -> BuilderState:
    body = _body(data)
    ring = _ring(body["ring"])
    b = body.get("builder")
    if not isinstance(b, dict):
        raise RingFileError("ring file has no builder state")
    failed = b.get("failed")
    if not isinstance(failed, list) or not all(isinstance(i, int) for i in failed):
        raise RingFileError("bad field 'failed'")
    state = BuilderState(
        ring=ring,
        devices=_devices(b.get("devices")),
        failed=frozenset(failed),
        min_part_hours=_int(b, "min_part_hours"),
        max_moves=_int(b, "max_moves"),
        seed=_int(b, "seed"),
        last_moved=_from_le("I", _bytes(b, "last_moved")),
    )
    if len(state.last_moved) not in (0, ring.partitions):
        raise RingFileError("bad field 'last_moved'")
    if not 1 <= state.max_moves <= ring.width or state.min_part_hours < 0:
        raise RingFileError("bad builder limits")
    return state


def _read(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        data = f.read(limits.ring_file_size_max_bytes + 1)
    return data


def load(path: str | os.PathLike[str]) -> Ring:
    return loads(_read(path))


def load_state(path: str | os.PathLike[str]) -> BuilderState:
    return loads_state(_read(path))


def write_atomic(data: bytes, path: str | os.PathLike[str]) -> None:
    """Write tmp + fsync + rename + fsync dir: readers see the old file or the new one."""
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix=".ring-", dir=directory)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; node processes may run as another user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save(ring: Ring, path: str | os.PathLike[str]) -> None:
    write_atomic(dumps(ring), path)


def save_state(state: BuilderState, path: str | os.PathLike[str]) -> None:
    write_atomic(dumps_state(state), path)
