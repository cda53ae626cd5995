"""gateway.list_ahead: a page listed ahead is handed out once, only when its check passes,
and the cache stays bounded in size and time."""

from __future__ import annotations

import asyncio

import pytest

from gateway.list_ahead import Listed, ReadAhead, Shape
from gateway.s3xml import ListPage

PAGE = ListPage([], ["a/"], True, "a/")
STATES = {3: b"s3", 7: b"s7"}


def _shape(after: str) -> Shape:
    return (b"bucket", "", "/", 1000, after)


async def _listed(states: dict[int, bytes] | None = STATES) -> Listed:
    await asyncio.sleep(0)
    return Listed(PAGE, states)


async def _yes(states: dict[int, bytes]) -> bool:
    assert states == STATES
    return True


async def _no(states: dict[int, bytes]) -> bool:
    return False


@pytest.mark.asyncio
async def test_served_once_when_current() -> None:
    ahead = ReadAhead()
    ahead.start(_shape("x"), _listed)
    assert await ahead.take(_shape("y"), _yes) is None        # another listing
    listed = await ahead.take(_shape("x"), _yes)
    assert listed is not None and listed.page is PAGE
    assert await ahead.take(_shape("x"), _yes) is None        # handed out once
    assert (ahead.served, ahead.stale) == (1, 0)


@pytest.mark.asyncio
async def test_not_served_when_moved_unknown_or_failed() -> None:
    ahead = ReadAhead()
    ahead.start(_shape("moved"), _listed)
    ahead.start(_shape("unknown"), lambda: _listed(None))

    async def fails() -> Listed:
        raise ConnectionError("node gone")

    ahead.start(_shape("failed"), fails)
    assert await ahead.take(_shape("moved"), _no) is None
    assert await ahead.take(_shape("unknown"), _yes) is None
    assert await ahead.take(_shape("failed"), _yes) is None
    assert (ahead.served, ahead.stale) == (0, 3)


@pytest.mark.asyncio
async def test_bounded_in_size_and_time() -> None:
    ahead = ReadAhead(size=2, keep_s=0.05)
    started: list[str] = []

    def listing(name: str) -> Listed:
        started.append(name)
        return Listed(PAGE, STATES)

    async def slow(name: str) -> Listed:
        await asyncio.sleep(10)
        return listing(name)

    ahead.start(_shape("old"), lambda: slow("old"))
    ahead.start(_shape("b"), lambda: _listed())
    ahead.start(_shape("b"), lambda: slow("again"))          # already there: ignored
    ahead.start(_shape("c"), lambda: _listed())              # evicts (and cancels) "old"
    assert await ahead.take(_shape("old"), _yes) is None
    await asyncio.sleep(0.1)
    assert await ahead.take(_shape("b"), _yes) is None        # waited too long
    assert started == []
    ahead.close()
