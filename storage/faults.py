"""Fault injection for tests: make one device's segment reads, writes or syncs fail with EIO.

Off unless the node starts with COFFRE_FAULTS set, e.g.

    COFFRE_FAULTS="eio:3:read=0.5,write=1"        # device 3: half its reads, every write
    COFFRE_FAULTS="eio:3:sync=1;eio:4:read=1"     # several devices, ';' between them

Each rate is the probability that one call (pread, pwritev, fdatasync) raises
OSError(EIO) before touching the file, as a dying disk would. Rules:
- zero cost when off: `install` leaves the SegmentStore untouched unless its device is named;
  when on it replaces the three methods on that one instance;
- a bad COFFRE_FAULTS refuses to start the node (ValueError), never silently injects nothing;
- COFFRE_FAULTS_SEED makes the draws replayable (default: random, printed to the log).
"""

from __future__ import annotations

import errno
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENV = "COFFRE_FAULTS"
SEED_ENV = "COFFRE_FAULTS_SEED"
OPS = ("read", "write", "sync")
# SegmentStore method -> the operation it counts as.
_METHODS = {"pread": "read", "pwritev": "write", "sync": "sync"}

log = logging.getLogger("coffre.faults")


@dataclass(frozen=True)
class DeviceFaults:
    """Probabilities (0..1) that one call of each kind fails with EIO."""

    read: float = 0.0
    write: float = 0.0
    sync: float = 0.0

    def rate(self, op: str) -> float:
        return float(getattr(self, op))


def parse(spec: str) -> dict[int, DeviceFaults]:
    """COFFRE_FAULTS's value -> device id -> its faults."""
    out: dict[int, DeviceFaults] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        kind, _, rest = item.partition(":")
        dev, _, rates = rest.partition(":")
        if kind != "eio" or not dev.isdigit() or not rates:
            raise ValueError(f"{ENV}: {item!r} is not eio:<device id>:<op>=<rate>,...")
        values: dict[str, float] = {}
        for pair in rates.split(","):
            op, _, raw = pair.partition("=")
            if op not in OPS:
                raise ValueError(f"{ENV}: {op!r} is not one of {', '.join(OPS)}")
            rate = float(raw)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{ENV}: rate {raw} is not within 0..1")
            values[op] = rate
        out[int(dev)] = DeviceFaults(**values)
    return out


def _failing(method: Callable[..., Any], op: str, rate: float, rnd: random.Random,
             device_id: int) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        if rnd.random() < rate:
            raise OSError(errno.EIO, f"injected {op} error on device {device_id}")
        return method(*args, **kwargs)
    return call


def install(segments: object, device_id: int, env: dict[str, str] | None = None) -> bool:
    """Make `segments` (a SegmentStore) fail as COFFRE_FAULTS says for `device_id`; True if
    any fault was installed."""
    environ = os.environ if env is None else env
    spec = environ.get(ENV, "")
    if not spec:
        return False
    faults = parse(spec).get(device_id)
    if faults is None:
        return False
    seed = int(environ.get(SEED_ENV, random.randrange(1 << 30)))
    rnd = random.Random(seed)
    log.warning("fault injection on device %d: %s (seed %d)", device_id, faults, seed)
    for name, op in _METHODS.items():
        if faults.rate(op) > 0:
            setattr(segments, name, _failing(getattr(segments, name), op, faults.rate(op),
                                             rnd, device_id))
    return True
