"""Shared fixtures for the storage tests: a device on a temp dir, body generators."""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.device import Device

SMALL_SEGMENT_BYTES = 256 * 1024


async def chunks(data: bytes, step: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), step):
        yield data[i:i + step]


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    ex = concurrent.futures.ThreadPoolExecutor(8)
    yield ex
    ex.shutdown(wait=True)


@pytest.fixture
async def device(tmp_path: Path, executor: concurrent.futures.ThreadPoolExecutor
                 ) -> AsyncIterator[Device]:
    dev = Device(1, tmp_path / "dev", executor=executor,
                 segment_size_bytes=SMALL_SEGMENT_BYTES)
    await dev.open()
    yield dev
    if not dev.failed:
        await dev.close()


def segment_bytes_on_disk(path: Path) -> int:
    return sum(p.stat().st_size for p in (path / "segments").glob("*.seg"))
