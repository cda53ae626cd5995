"""storage/malloc.py: with the thresholds set, a buffer of a few MiB allocated and freed over
and over is served from memory the process already has, not from fresh pages (each one a
page fault); without them glibc faults the pages in again every time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import resource, sys
from storage import malloc
print(malloc.tune())
kept = [bytearray(4 << 20) for _ in range(4)]      # what is in flight meanwhile
del kept
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    held = [bytearray(4 << 20) for _ in range(4)]
    del held
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(tune: bool) -> tuple[bool, int]:
    env = {**os.environ, "COFFRE_MALLOC_TUNE": "1" if tune else "0"}
    out = subprocess.run([sys.executable, "-c", _CHILD], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return out[0] == "True", int(out[1])


def test_freed_big_buffers_are_reused_not_faulted_in_again() -> None:
    tuned, faults_tuned = _faults(True)
    untuned, faults_untuned = _faults(False)
    assert tuned and not untuned
    pages = 50 * 4 * (4 << 20) // 4096          # every page of every buffer, once
    assert faults_untuned > pages // 2, faults_untuned
    assert faults_tuned < pages // 50, faults_tuned
