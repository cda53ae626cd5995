"""Hybrid logical clock timestamps for last-writer-wins metadata.

A timestamp is one integer: (wall milliseconds << 16 | logical counter) << 32 | writer id.
Integers compare as the clock orders them, so nodes compare timestamps without decoding;
the writer id (random per gateway process) breaks ties between gateways deterministically.
The logical counter keeps timestamps from one process strictly increasing even when its wall
clock steps back or many writes share a millisecond.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable

_LOGICAL_BITS = 16
_WRITER_BITS = 32
# Fault-injection tests only: shift this process's wall clock to simulate a skewed host.
_OFFSET_MS = int(os.environ.get("COFFRE_CLOCK_OFFSET_MS", "0"))


def _system_ms() -> int:
    return time.time_ns() // 1_000_000 + _OFFSET_MS


class Clock:
    def __init__(self, writer_id: int | None = None,
                 wall_ms: Callable[[], int] = _system_ms) -> None:
        self.writer_id = secrets.randbits(_WRITER_BITS) if writer_id is None else writer_id
        self._wall_ms = wall_ms
        self._last = 0      # last (ms << 16 | logical) handed out or observed

    def now(self) -> int:
        physical = self._wall_ms() << _LOGICAL_BITS
        self._last = physical if physical > self._last else self._last + 1
        return (self._last << _WRITER_BITS) | self.writer_id

    def observe(self, ts: int) -> None:
        """Move past a timestamp seen from another writer (keeps causality across gateways)."""
        self._last = max(self._last, ts >> _WRITER_BITS)


def wall_ms(ts: int) -> int:
    """The wall-clock milliseconds of a timestamp (for Last-Modified)."""
    return ts >> (_WRITER_BITS + _LOGICAL_BITS)


def first_stamp_of(ms: int) -> int:
    """The oldest timestamp of a wall-clock millisecond (logical 0, writer 0): below every
    stamp a clock hands out at or after it."""
    return ms << (_WRITER_BITS + _LOGICAL_BITS)
