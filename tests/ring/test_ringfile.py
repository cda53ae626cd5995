"""The ring file: round trips, determinism, corruption, atomic save, old formats."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest
import xxhash

from ring import ringfile
from ring.builder import build_ring, build_state
from ring.model import Ring
from ring.ringfile import RingFileError
from tests.ring.clusters import cluster

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def ring() -> Ring:
    return build_ring(cluster(2, 2, 2, 2), part_power=6, width=6, seed=3)


def test_round_trip(ring: Ring) -> None:
    again = ringfile.loads(ringfile.dumps(ring))
    assert again == ring
    assert all(again.slots(p) == ring.slots(p) for p in range(ring.partitions))


def test_same_input_same_bytes() -> None:
    devs = cluster(2, 2, 2, 2)
    one = ringfile.dumps(build_ring(devs, 6, 6, seed=11))
    assert one == ringfile.dumps(build_ring(list(reversed(devs)), 6, 6, seed=11))
    assert one != ringfile.dumps(build_ring(devs, 6, 6, seed=12))


def test_state_round_trip() -> None:
    state = build_state(cluster(1, 3, 1, 2), part_power=5, width=6, seed=5, min_part_hours=4)
    again = ringfile.loads_state(ringfile.dumps_state(state))
    assert again == state
    assert ringfile.dumps_state(again) == ringfile.dumps_state(state)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x40]) + data[index + 1 :]


@pytest.mark.parametrize("where", [0, 9, 20, -1, -9])
def test_any_flipped_byte_is_rejected(ring: Ring, where: int) -> None:
    data = ringfile.dumps(ring)
    with pytest.raises(RingFileError):
        ringfile.loads(_flip(data, where % len(data)))


def test_truncated_and_garbage_rejected(ring: Ring) -> None:
    data = ringfile.dumps(ring)
    for bad in (b"", b"COFFRING", data[:-1], data + b"x", b"x" * 100):
        with pytest.raises(RingFileError):
            ringfile.loads(bad)


def _sealed(body: bytes, version: int = 1) -> bytes:
    header = struct.pack("<8sHHQ", b"COFFRING", version, 0, len(body))
    return header + body + struct.pack("<Q", xxhash.xxh3_64_intdigest(header + body))


def test_unknown_format_version_rejected(ring: Ring) -> None:
    body = ringfile.dumps(ring)[16:-8]
    with pytest.raises(RingFileError, match="version 2"):
        ringfile.loads(_sealed(body, version=2))


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"ring": 1},
        {"ring": {"version": 1}},
        {"ring": {"version": 1, "part_power": 1, "width": 1, "devices": [[1, "h:1", 1.0]],
                  "assignment": b"", "previous": [], "retired": []}},
        {"ring": {"version": 1, "part_power": 1, "width": 1, "devices": [],
                  "assignment": b"\x00\x00\x00\x00", "previous": [], "retired": []}},
        {"ring": {"version": True, "part_power": 1, "width": 1, "devices": [],
                  "assignment": b"", "previous": [], "retired": []}},
    ],
)
def test_checksummed_nonsense_rejected(body: object) -> None:
    with pytest.raises(RingFileError):
        ringfile.loads(_sealed(msgpack.packb(body, use_bin_type=True)))


def test_save_is_atomic_and_leaves_no_temp(tmp_path: Path, ring: Ring) -> None:
    path = tmp_path / "data-6.ring"
    ringfile.save(ring, path)
    assert ringfile.load(path) == ring
    assert os.listdir(tmp_path) == ["data-6.ring"]
    assert (path.stat().st_mode & 0o777) == 0o644


def test_reads_format_v1_fixture() -> None:
    # Written by format version 1; every later reader must still load it.
    state = ringfile.load_state(FIXTURES / "ring-v1.ring")
    ring = state.ring
    assert (ring.version, ring.part_power, ring.width) == (1, 4, 6)
    assert [d.id for d in ring.devices] == list(range(8))
    assert ring.devices[3].domain == "r0/z1/n0/d1"
    assert ring.slot_ids(0) == (1, 4, 3, 7, 0, 6)
    assert (state.min_part_hours, state.max_moves, state.seed) == (1, 2, 9)


def test_bytes_do_not_depend_on_hash_seed() -> None:
    # Sets and dicts must never decide placement: two processes with different hash seeds
    # build and rebalance to the same bytes.
    code = (
        "import hashlib\n"
        "from ring import ringfile, state as st\n"
        "from ring.builder import build_state, rebalance\n"
        "from tests.ring.clusters import cluster\n"
        "s = build_state(cluster(2, 2, 2, 2), 6, 6, seed=4)\n"
        "s = rebalance(st.set_weight(st.remove_device(s, 3), 5, 2.0), now=7200).state\n"
        "print(hashlib.sha256(ringfile.dumps_state(s)).hexdigest())\n"
    )
    root = Path(__file__).parents[2]
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=root, check=True, capture_output=True, text=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(root)},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1
