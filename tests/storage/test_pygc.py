"""storage/pygc.py: what tune() does to the collector, in a fresh interpreter each (the
settings are process-wide and a frozen object stays frozen)."""

from __future__ import annotations

import os
import subprocess
import sys

_PROBE = ("import gc; from storage import pygc; pygc.tune(); "
          "print(gc.get_threshold()[0], gc.get_freeze_count() > 0)")


def _run(env_value: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "COFFRE_GC_TUNE"}
    if env_value is not None:
        env["COFFRE_GC_TUNE"] = env_value
    return subprocess.run([sys.executable, "-c", _PROBE], env=env, check=True,
                          capture_output=True, text=True).stdout.split()


def test_tune_freezes_start_up_objects_and_collects_less_often() -> None:
    from storage import pygc
    assert _run(None) == [str(pygc.YOUNG_THRESHOLD), "True"]


def test_tune_can_be_turned_off() -> None:
    assert _run("0") == ["700", "False"]
