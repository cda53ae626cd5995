"""`coffre rebalance auto-fail`: mark a node failed once it has been unreachable for a while.

Why the operator's side: the ring files are the operator's; nodes never edit them. This loop
runs where the ring files live (beside `coffre up`, or on the operator's host), probes every
node the rings name, and when one has answered nothing for `after_s` it does what the
operator would do by hand: `coffre ring fail` for each of the node's devices in every ring
file, `coffre ring rebalance`, `coffre ring publish`. The nodes' rebalancers then rebuild
the lost fragments on the devices the new rings name (the tested `ring fail` path).

Rules (each one keeps a watcher that is itself cut off from doing harm):
- A node is failed only after `after_s` of continuous failed probes (one success resets).
- Nothing is failed while fewer than a majority of the rings' nodes answer: then the
  watcher is the one cut off, or too much is down for a safe automatic decision.
- At most `max_failures` nodes are failed automatically per run of the loop; more needs
  the operator. A ring change that would leave a ring narrower than its width is refused
  by the ring builder, and nothing is published then.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ring import cli as ring_cli
from ring.ringfile import RingFileError, load

probe_timeout_s = 2.0


@dataclass
class Tracker:
    """When each node was first seen down in the current run of failed probes (pure)."""

    after_s: float
    max_failures: int = 1
    down_since: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # nodes this loop has failed

    def observe(self, addr: str, reachable: bool, now: float) -> None:
        if reachable:
            self.down_since.pop(addr, None)
        else:
            self.down_since.setdefault(addr, now)

    def due(self, nodes: list[str], now: float) -> list[str]:
        """Nodes to fail now (at most what the budget has left)."""
        down = [a for a in nodes if a in self.down_since]
        if len(nodes) - len(down) <= len(nodes) // 2:
            return []  # no majority answers: the watcher may be the one cut off
        ripe = sorted(a for a in down if now - self.down_since[a] >= self.after_s
                      and a not in self.failed)
        return ripe[: max(0, self.max_failures - len(self.failed))]


def ring_files(rings_dir: Path) -> list[Path]:
    return sorted(p for p in rings_dir.iterdir() if p.suffix == ".ring")


def ring_nodes(rings_dir: Path) -> dict[str, list[tuple[Path, int]]]:
    """addr -> (ring file, device id) of every device in service in the rings."""
    out: dict[str, list[tuple[Path, int]]] = {}
    for path in ring_files(rings_dir):
        for d in load(path).devices:
            out.setdefault(d.addr, []).append((path, d.id))
    return out


def probe(addr: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://{addr}/health/live",
                                    timeout=probe_timeout_s) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _ring(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = ring_cli.main(["ring", *argv])
    return code, out.getvalue().strip()


def fail_node(rings_dir: Path, devices: list[tuple[Path, int]], publish_to: list[str]
              ) -> dict[str, object]:
    """`ring fail` + `ring rebalance` on every file naming the node, then publish them all."""
    steps: list[str] = []
    touched = sorted({path for path, _ in devices})
    for path, dev_id in devices:
        code, text = _ring("fail", str(path), "--id", str(dev_id))
        if code != 0:
            return {"ok": False, "steps": steps, "error": f"{path.name}: {text}"}
        steps.append(f"{path.name}: failed device {dev_id}")
    for path in touched:
        code, text = _ring("rebalance", str(path))
        if code != 0:
            return {"ok": False, "steps": steps, "error": f"{path.name}: {text}"}
        steps.append(f"{path.name}: rebalanced")
    for path in touched:  # after every file is rebalanced: one movement, not several
        extra = [a for addr in publish_to for a in ("--to", addr)]
        code, _ = _ring("publish", str(path), *extra)
        steps.append(f"{path.name}: published{'' if code == 0 else ' (some nodes missed it)'}")
    return {"ok": True, "steps": steps}


def run(args: argparse.Namespace, sleep: Callable[[float], None] = time.sleep) -> int:
    rings_dir = Path(args.rings_dir)
    tracker = Tracker(float(args.after_s), int(args.max_failures))
    publish_to = list(args.to or [])
    while True:
        try:
            nodes = ring_nodes(rings_dir)
        except (OSError, RingFileError) as e:
            print(f"coffre rebalance auto-fail: error: {e}", file=sys.stderr)
            return 1
        now = time.monotonic()
        for addr in nodes:
            tracker.observe(addr, probe(addr), now)
        for addr in tracker.due(sorted(nodes), now):
            doc = {"node": addr, "down_s": round(now - tracker.down_since[addr], 1),
                   **fail_node(rings_dir, nodes[addr], publish_to)}
            tracker.failed.append(addr)
            print(json.dumps(doc, sort_keys=True), flush=True)
        if args.once:
            return 0
        sleep(float(args.every_s))


def add_command(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser("auto-fail", help="fail a node unreachable for --after-s (a loop)")
    p.add_argument("--rings-dir", required=True, type=Path,
                   help="the operator's ring files (edited and published from here)")
    p.add_argument("--after-s", default="600", help="seconds unreachable before failing")
    p.add_argument("--every-s", default="5", help="seconds between probes")
    p.add_argument("--max-failures", default="1", help="nodes failed automatically, at most")
    p.add_argument("--to", action="append", metavar="HOST:PORT",
                   help="also publish to this admin endpoint (a gateway); repeatable")
    p.add_argument("--once", action="store_true", help="probe once and exit (with --after-s 0)")
    p.set_defaults(func=run)

