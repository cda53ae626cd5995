"""Helpers for the rebalance cluster tests: grow and shrink a running test cluster through
the operator CLIs, wait for the rebalancers, and audit where every fragment sits."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.up import ProcessSpec
from ring import cli as ring_cli
from ring.ringfile import load
from ring.ringset import RingSet
from storage import rebalance_cli
from storage.client import NodeClient
from tests.cluster.harness import Cluster, free_ports


def run_cli(main: Any, *argv: str) -> tuple[int, Any]:
    """Run an in-process CLI with --json; its exit code and parsed output."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--json"])
    text = out.getvalue().strip()
    return code, json.loads(text) if text else None


def ring(*argv: str) -> tuple[int, Any]:
    """`coffre ring ... --json`, in process."""
    return run_cli(ring_cli.main, "ring", *argv)


def rebalance(*argv: str) -> tuple[int, Any]:
    """`coffre rebalance ... --json`, in process."""
    return run_cli(rebalance_cli.main, "rebalance", *argv)


def ring_files(cluster: Cluster) -> list[Path]:
    rings = cluster.config.rings_dir
    return sorted(p for p in rings.iterdir() if p.suffix == ".ring")


def add_node(cluster: Cluster, dev_id: int) -> tuple[str, str]:
    """Declare and start one more storage node serving device `dev_id`; (name, addr)."""
    port = free_ports(1, cluster.promised_ports())[0]
    name = f"node{dev_id}"
    path = cluster.root / "nodes" / f"n{dev_id}" / "d0"
    path.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "gateway.cli", "node", "serve", "--listen",
            f"127.0.0.1:{port}", "--rings-dir", str(cluster.config.rings_dir),
            "--device", f"{dev_id}={path}"]
    cluster.specs[name] = ProcessSpec(name, argv, port)
    cluster.start(name)
    return name, f"127.0.0.1:{port}"


def change_rings(cluster: Cluster, edit: list[str], now: int | None = None) -> dict[str, Any]:
    """Apply one `coffre ring` edit (e.g. ["add", "--id", "6", ...]) to every ring file,
    rebalance and publish each; the rebalance plans by file name."""
    plans = {}
    for path in ring_files(cluster):
        code, _ = ring(edit[0], str(path), *edit[1:])
        assert code == 0, f"ring {edit[0]} failed on {path.name}"
        args = ["rebalance", str(path)] + ([] if now is None else ["--now", str(now)])
        code, plans[path.name] = ring(*args)
        assert code == 0
    for path in ring_files(cluster):  # publish together: one movement, not two
        ring("publish", str(path))  # a dead node fails to take it: fine
    return plans


def moved_since(before: dict[str, Any], after: dict[str, Any], field: str) -> int:
    """Growth of a cumulative per-node counter (status `total`) between two status docs;
    a node absent from `before` started from zero, one absent from `after` is ignored."""
    out = 0
    for addr, st in after["nodes"].items():
        now = (st.get("total") or {}).get(field, 0)
        then = ((before["nodes"].get(addr) or {}).get("total") or {}).get(field, 0)
        out += now - then
    return out


def status(cluster: Cluster) -> dict[str, Any]:
    code, doc = rebalance("status", "--rings-dir", str(cluster.config.rings_dir))
    assert code == 0
    return dict(doc)


def wait_done(cluster: Cluster, timeout_s: float) -> dict[str, Any]:
    """Poll `coffre rebalance status` until every node of the rings says done."""
    rings = str(cluster.config.rings_dir)
    deadline = time.monotonic() + timeout_s
    doc: dict[str, Any] = {}
    versions = RingSet(rings).versions()
    while time.monotonic() < deadline:
        code, doc = rebalance("status", "--rings-dir", rings)
        assert code == 0
        same = all(s.get("ring_versions") == versions for s in doc["nodes"].values())
        if doc["done"] and same:
            return doc
        time.sleep(0.5)
    stuck = {a: {f: s.get(f) for f in ("units_done", "units_total", "in_pass", "unfinished",
                                      "slow_units", "last_errors")}
             for a, s in doc.get("nodes", {}).items() if not s.get("done")}
    raise AssertionError(f"rebalance not done after {timeout_s} s: {json.dumps(stuck)[:4000]}"
                         f" {json.dumps(doc)[:2000]}")


@dataclass
class Audit:
    """Where fragments sit compared with the data ring."""

    misplaced: list[str] = field(default_factory=list)  # on a device the ring does not name
    incomplete: list[str] = field(default_factory=list)  # data ids without all k+m fragments
    bytes_by_device: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    data_ids: int = 0
    meta_stale: list[str] = field(default_factory=list)  # records not on every meta owner


async def _audit(cluster: Cluster, live: dict[int, str]) -> Audit:
    rings = RingSet(cluster.config.rings_dir)
    audit = Audit()
    client = NodeClient(transport="http")
    try:
        await _audit_data(client, [rings.data(w) for w in rings.widths], live, audit)
        await _audit_meta(client, rings.meta, audit)
    finally:
        await client.close()
    return audit


async def _audit_data(client: NodeClient, rings: list[Any], live: dict[int, str],
                      audit: Audit) -> None:
    """Data rings of several widths share partition numbers: a data id belongs to the
    narrowest ring wider than its highest fragment index (as the rebalancer decides)."""
    for p in range(rings[0].partitions):
        where: dict[bytes, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
        for dev_id, addr in live.items():
            for key, n in await client.list_fragments(addr, dev_id, p, b"", 10_000):
                audit.bytes_by_device[dev_id] += n
                where[key[:-1]][key[-1]].append(dev_id)
        for did, idx in where.items():
            ring = next((r for r in rings if r.width > max(idx)), None)
            if ring is None:
                audit.misplaced.append(f"p{p} {did.hex()}: index {max(idx)} fits no ring")
                continue
            audit.data_ids += 1
            slots = ring.slot_ids(p)
            audit.misplaced += [f"p{p} {did.hex()}/{i} on {d}" for i, devs in idx.items()
                                for d in devs if d != slots[i]]
            if sorted(idx) != list(range(ring.width)):
                audit.incomplete.append(f"{did.hex()}: {sorted(idx)} of {ring.width}")


async def _audit_meta(client: NodeClient, ring: Any, audit: Audit) -> None:
    for p in range(ring.partitions):
        newest: dict[bytes, int] = {}
        per: list[dict[bytes, int]] = []
        for dev in ring.slots(p):
            rows = await client.list_meta(dev.addr, dev.id, p, b"", None, None, 10_000)
            got = {r.key: r.ts for r in rows}
            per.append(got)
            for k, ts in got.items():
                newest[k] = max(ts, newest.get(k, 0))
        for k, ts in newest.items():
            if any(got.get(k) != ts for got in per):
                audit.meta_stale.append(f"p{p} {k!r}")


def audit(cluster: Cluster, live: dict[int, str]) -> Audit:
    """Every fragment on every live device (id -> addr) checked against the data rings."""
    return asyncio.run(_audit(cluster, live))


def ring_devices(cluster: Cluster) -> dict[int, str]:
    ring = load(ring_files(cluster)[0])
    return {d.id: d.addr for d in ring.devices}
