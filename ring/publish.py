"""Push a ring file to the nodes' admin API: `PUT http://<addr>/admin/rings/<name>`.

Rules: the only network I/O of the ring package, used by the operator CLI, never by the
lookup path. Plain urllib (no import of storage/ or gateway/). Every node is tried even when
one fails; each gets a result. Nodes are pushed to in sequence: a cluster has tens of nodes
and a ring file is at most a few MB, so the CLI waits seconds at worst.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Pushed:
    addr: str
    ok: bool
    detail: str  # HTTP status line or the error


def ring_url(addr: str, name: str) -> str:
    return f"http://{addr}/admin/rings/{name}"


def push(data: bytes, name: str, addr: str, timeout_seconds: float) -> Pushed:
    req = urllib.request.Request(
        ring_url(addr, name),
        data=data,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_seconds) as resp:
            status = int(resp.status)
            return Pushed(addr, 200 <= status < 300, f"HTTP {status}")
    except urllib.error.HTTPError as exc:
        return Pushed(addr, False, f"HTTP {exc.code} {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Pushed(addr, False, str(getattr(exc, "reason", exc)))


def publish(data: bytes, name: str, addrs: Iterable[str], timeout_seconds: float) -> list[Pushed]:
    """Push `data` as ring `name` to every address; one result per address."""
    if not _NAME.match(name):
        raise ValueError(f"bad ring name {name!r}")
    return [push(data, name, addr, timeout_seconds) for addr in addrs]
