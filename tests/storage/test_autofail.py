"""The auto-fail loop's decisions (storage/autofail.py), without processes."""

from __future__ import annotations

from storage.autofail import Tracker

NODES = [f"n{i}" for i in range(7)]


def test_fails_only_after_continuous_downtime() -> None:
    t = Tracker(after_s=10)
    t.observe("n1", False, 0)
    assert t.due(NODES, 9) == []
    t.observe("n1", True, 9)  # one answer resets the clock
    t.observe("n1", False, 12)
    assert t.due(NODES, 21) == []
    assert t.due(NODES, 22) == ["n1"]


def test_no_majority_no_action_and_a_budget() -> None:
    t = Tracker(after_s=1, max_failures=1)
    for n in NODES[:4]:
        t.observe(n, False, 0)
    assert t.due(NODES, 100) == []  # 3 of 7 answer: the watcher may be the one cut off
    t.observe("n3", True, 100)
    t.observe("n2", True, 100)
    assert t.due(NODES, 100) == ["n0"]  # the budget allows one
    t.failed.append("n0")
    assert t.due(NODES, 100) == []
    t2 = Tracker(after_s=1, max_failures=2)
    t2.observe("n5", False, 0)
    t2.observe("n6", False, 0)
    assert t2.due(NODES, 5) == ["n5", "n6"]
