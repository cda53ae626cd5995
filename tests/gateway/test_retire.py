"""gateway.retire: replaced data waits its delay, in order, and the queue stays bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from gateway.retire import Retirement


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_wait_their_delay_and_leave_in_order() -> None:
    clock = FakeClock()
    deleted: list[str] = []
    r: Retirement[str] = Retirement(deleted.extend, 10.0, 100, clock)
    r._queue.append((clock() + 10.0, ["a"]))    # add() without starting a task
    clock.now += 4
    r._queue.append((clock() + 10.0, ["b", "c"]))
    assert r.due() == [] and len(r) == 2
    clock.now += 6                               # a is due, b and c are not
    assert r.due() == [["a"]]
    clock.now += 4
    assert r.due() == [["b", "c"]] and len(r) == 0


async def test_a_full_queue_deletes_its_oldest_entries_early() -> None:
    deleted: list[str] = []
    r: Retirement[str] = Retirement(deleted.extend, 3600.0, 2)
    for name in "abcd":
        r.add([name])
    assert deleted == ["a", "b"] and len(r) == 2 and r.early == 2
    r.close()


async def test_the_task_deletes_when_due_and_a_zero_delay_deletes_at_once() -> None:
    deleted: list[Sequence[str]] = []
    r: Retirement[str] = Retirement(deleted.append, 0.05, 10)
    r.add(["x"])
    r.add([])                                    # nothing to retire: no entry
    assert deleted == [] and len(r) == 1
    await asyncio.sleep(0.3)
    assert deleted == [["x"]] and len(r) == 0
    r.add(["y"])                                 # the finished task starts again
    await asyncio.sleep(0.3)
    assert deleted == [["x"], ["y"]]
    now: Retirement[str] = Retirement(deleted.append, 0.0, 10)
    now.add(["z"])
    assert deleted[-1] == ["z"]
