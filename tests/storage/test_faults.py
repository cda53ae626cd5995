"""Fault injection (storage/faults.py) reaches every write to a segment: a test that injects
write errors must see them on fragment bodies too, not only on a record's first bytes."""

from __future__ import annotations

import errno

import pytest

from storage import faults
from storage.device import Device


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError):
        faults.parse("eio:1:wrte=1")
    with pytest.raises(ValueError):
        faults.parse("eio:1:write=2")


async def test_every_segment_write_fails_once_writes_are_faulty(device: Device) -> None:
    segments = device.segments
    f, offset = segments.reserve(8192, b"head")
    try:
        assert faults.install(segments, device.id, {faults.ENV: f"eio:{device.id}:write=1",
                                                    faults.SEED_ENV: "1"})
        for write in (lambda: segments.pwrite(f, offset + 4, b"body"),
                      lambda: segments.pwritev(f, offset + 4, [b"bo", memoryview(b"dy")]),
                      lambda: segments.reserve(4096, b"next")):
            with pytest.raises(OSError) as exc:
                write()
            assert exc.value.errno == errno.EIO
    finally:
        segments.done_writing(f)


async def test_other_devices_and_reads_are_untouched(device: Device) -> None:
    segments = device.segments
    assert not faults.install(segments, device.id, {faults.ENV: f"eio:{device.id + 1}:write=1"})
    assert faults.install(segments, device.id, {faults.ENV: f"eio:{device.id}:sync=1"})
    f, offset = segments.reserve(4096, b"head")
    try:
        segments.pwritev(f, offset + 4, [b"body"])
        assert segments.pread(f, offset, 8) == b"headbody"
    finally:
        segments.done_writing(f)
