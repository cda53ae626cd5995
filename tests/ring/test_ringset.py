"""RingSet: load a directory of rings, swap in new versions, survive bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ring import ringfile, ringset
from ring.builder import build_ring
from ring.model import Ring
from ring.ringfile import RingFileError
from ring.ringset import RingSet
from tests.ring.clusters import cluster


def _write(directory: Path, name: str, width: int, version: int, seed: int = 0) -> None:
    ring = build_ring(cluster(1, 3, 2, 1), part_power=4, width=width, seed=seed, version=version)
    ringfile.save(ring, directory / name)


def test_loads_data_and_meta_rings(tmp_path: Path) -> None:
    _write(tmp_path, "data-6.ring", 6, 1)
    _write(tmp_path, "meta.ring", 3, 1)
    (tmp_path / "notes.txt").write_text("ignored")
    rings = RingSet(tmp_path)
    assert rings.data(6).width == 6 and rings.meta.width == 3
    assert rings.widths == (6,)
    with pytest.raises(LookupError):
        rings.data(9)


def test_reload_swaps_only_on_new_version(tmp_path: Path) -> None:
    _write(tmp_path, "data-6.ring", 6, 1)
    rings = RingSet(tmp_path)
    first = rings.data(6)
    assert rings.reload_if_changed() is False
    _write(tmp_path, "data-6.ring", 6, 1, seed=5)  # rewritten, same version: a CLI edit
    assert rings.reload_if_changed() is False
    _write(tmp_path, "data-6.ring", 6, 2)
    assert rings.reload_if_changed() is True
    assert rings.data(6).version == 2 and rings.data(6) is not first
    _write(tmp_path, "meta.ring", 3, 1)  # a new file appears
    assert rings.reload_if_changed() is True and rings.meta.version == 1


def test_bad_file_keeps_the_old_ring(tmp_path: Path) -> None:
    _write(tmp_path, "data-6.ring", 6, 1)
    rings = RingSet(tmp_path)
    (tmp_path / "data-6.ring").write_bytes(b"garbage")
    assert rings.reload_if_changed() is False
    assert rings.data(6).version == 1 and "data-6.ring" in rings.errors
    _write(tmp_path, "data-6.ring", 6, 3)
    assert rings.reload_if_changed() is True and rings.errors == {}


def test_width_must_match_the_name(tmp_path: Path) -> None:
    _write(tmp_path, "data-6.ring", 3, 1)
    with pytest.raises(RingFileError, match="width"):
        RingSet(tmp_path)


def test_unchanged_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "data-6.ring", 6, 1)
    rings = RingSet(tmp_path)
    reads: list[str] = []
    real = ringfile.load

    def counting_load(path: str) -> Ring:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(ringset, "load", counting_load)
    for _ in range(3):
        assert rings.reload_if_changed() is False
    assert reads == []
    _write(tmp_path, "data-6.ring", 6, 2)
    assert rings.reload_if_changed() is True and len(reads) == 1
