"""The console's JSON documents, shaped from what the operator commands already compute.

Rules: pure — every function takes values (a status Report, rings, a rebalance status
document, metering rows, error events) and returns plain JSON-ready dicts and lists; the
fetching lives in gateway.console.app. Judging health is `coffre status`'s job
(gateway.status.build_report), ring balance is `coffre ring show`'s (ring.validate), totals
of the nodes' rebalance status are `coffre rebalance status`'s (storage.rebalance_plan
.aggregate): this module only regroups their answers for a page, so the console and the
CLIs never disagree. Byte counts stay integers; the page formats them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from gateway.console.errors_feed import ErrorEvent
from gateway.metering import HOUR_MS, RequestClass, Row, Usage, total
from gateway.status import DeviceStatus, Health, ProcessStatus, Report
from gateway.usage_cli import iso, usage_doc
from ring.model import Ring
from ring.validate import balance_table, validate

Doc = dict[str, Any]


# -- cluster map ---------------------------------------------------------------------------


def _fill(used: int, free: int) -> float:
    """Used fraction of a device (0 when it reports no capacity)."""
    return used / (used + free) if used + free > 0 else 0.0


def _device_doc(d: DeviceStatus) -> Doc:
    return {"id": d.id, "name": d.domain.rsplit("/", 1)[-1], "domain": d.domain,
            "health": d.health.value, "used_bytes": d.used_bytes, "free_bytes": d.free_bytes,
            "fill": _fill(d.used_bytes, d.free_bytes), "fragments": d.fragments,
            "meta_records": d.meta_records, "repair_jobs": d.repair_jobs}


def _process_doc(p: ProcessStatus) -> Doc:
    return {"kind": p.kind, "addr": p.addr, "health": p.health.value, "error": p.error,
            "rings": dict(sorted(p.rings.items()))}


def _node_doc(name: str, addr: str, health: Health, devices: list[DeviceStatus]) -> Doc:
    used = sum(d.used_bytes for d in devices)
    free = sum(d.free_bytes for d in devices)
    return {"name": name, "addr": addr, "health": health.value, "used_bytes": used,
            "free_bytes": free, "fill": _fill(used, free),
            "devices": [_device_doc(d) for d in sorted(devices, key=lambda d: d.id)]}


def cluster_map(report: Report) -> Doc:
    """Regions > zones > nodes > devices, each node with its health and fill level, then
    the gateways, the published ring versions and `coffre status`'s warnings."""
    node_health = {p.addr: p.health for p in report.processes if p.kind == "node"}
    # region -> zone -> (node name, addr) -> devices; a node is named by its domain.
    tree: dict[str, dict[str, dict[tuple[str, str], list[DeviceStatus]]]] = {}
    for d in report.devices:
        region, zone, node, _ = d.domain.split("/")
        tree.setdefault(region, {}).setdefault(zone, {}).setdefault((node, d.addr), []).append(d)
    regions = [{"name": region, "zones": [
        {"name": zone, "nodes": [
            _node_doc(node, addr, node_health.get(addr, Health.DOWN), devs)
            for (node, addr), devs in sorted(nodes.items())]}
        for zone, nodes in sorted(zones.items())]}
        for region, zones in sorted(tree.items())]
    nodes = [p for p in report.processes if p.kind == "node"]
    return {
        "regions": regions,
        "gateways": [_process_doc(p) for p in report.processes if p.kind == "gateway"],
        "rings": dict(report.rings),
        "warnings": list(report.warnings),
        "summary": {
            "nodes": len(nodes), "nodes_up": sum(p.health is Health.UP for p in nodes),
            "devices": len(report.devices),
            "devices_up": sum(d.health is Health.UP for d in report.devices),
            "used_bytes": sum(d.used_bytes for d in report.devices),
            "free_bytes": sum(d.free_bytes for d in report.devices),
        },
    }


# -- ring balance --------------------------------------------------------------------------


def ring_balance(name: str, ring: Ring) -> Doc:
    """What `coffre ring show` and `validate` say about one ring: per device its weight,
    slots, weighted share and how far over (+) or under (-) that share it is."""
    devices = {d.id: d for d in ring.devices}
    table = balance_table(ring) if ring.built else ()
    rows = [{"id": r.id, "addr": devices[r.id].addr, "domain": devices[r.id].domain,
             "weight": r.weight, "slots": r.slots, "share_slots": r.share_slots,
             "target_slots": r.target_slots, "over_percent": r.over_percent}
            for r in table]
    overs = [r.over_percent for r in table]
    return {
        "name": name, "version": ring.version, "part_power": ring.part_power,
        "partitions": ring.partitions, "width": ring.width, "built": ring.built,
        "moved_partitions": len(ring.previous), "retired_devices": len(ring.retired),
        "devices": rows,
        "max_over_percent": max(overs, default=0.0),
        "max_under_percent": min(overs, default=0.0),
        "findings": [{"severity": f.severity.value, "check": f.check, "message": f.message}
                     for f in validate(ring)],
    }


# -- rebalance progress --------------------------------------------------------------------


class Phase(Enum):
    RUNNING = "running"
    PAUSED = "paused"
    DONE = "done"
    UNREACHABLE = "unreachable"   # the node did not answer: its progress is unknown


def _percent(done: bool, moved: int, left: int, units_done: int, units_total: int) -> float:
    # Bytes first, as `coffre rebalance status` does: a unit with nothing to move is quick,
    # one with a full disk is not. Units only when no byte is known yet.
    if done:
        return 100.0
    if moved + left > 0:
        return 100.0 * moved / (moved + left)
    return 100.0 * units_done / units_total if units_total > 0 else 0.0


def _phase(s: Mapping[str, Any]) -> Phase:
    if s.get("reachable") is False:
        return Phase.UNREACHABLE
    if s.get("done"):
        return Phase.DONE
    return Phase.PAUSED if s.get("paused") else Phase.RUNNING


def _int(s: Mapping[str, Any], field: str) -> int:
    value = s.get(field)
    return int(value) if isinstance(value, int | float) else 0


def _progress(s: Mapping[str, Any]) -> Doc:
    moved, left = _int(s, "bytes_moved"), _int(s, "bytes_left")
    units_done, units_total = _int(s, "units_done"), _int(s, "units_total")
    rate = s.get("rate_bytes_per_s")
    eta = s.get("eta_s")
    return {"phase": _phase(s).value, "done": bool(s.get("done")),
            "units_done": units_done, "units_total": units_total,
            "bytes_moved": moved, "bytes_left": left,
            "rate_bytes_per_s": float(rate) if isinstance(rate, int | float) else 0.0,
            "eta_s": float(eta) if isinstance(eta, int | float) else None,
            "errors": _int(s, "errors"),
            "percent": _percent(bool(s.get("done")), moved, left, units_done, units_total)}


def rebalance_view(doc: Mapping[str, Any]) -> Doc:
    """Per node and in total: phase, units, bytes moved and left, rate, ETA, percent.
    `doc` is storage.rebalance_plan.aggregate's answer (`coffre rebalance status --json`)."""
    nodes = doc.get("nodes") or {}
    rows = [{"addr": addr, **_progress(s),
             "ring_versions": dict(s.get("ring_versions") or {}),
             "last_errors": [str(e) for e in (s.get("last_errors") or [])][-5:]}
            for addr, s in sorted(nodes.items())]
    phases = {r["phase"] for r in rows}
    if rows and phases == {Phase.DONE.value}:
        phase = Phase.DONE
    elif Phase.RUNNING.value in phases:
        phase = Phase.RUNNING
    elif Phase.PAUSED.value in phases:
        phase = Phase.PAUSED
    else:
        phase = Phase.UNREACHABLE
    totals = _progress({**doc, "done": phase is Phase.DONE})
    return {"total": {**totals, "phase": phase.value,
                      "unreachable": list(doc.get("unreachable") or [])},
            "nodes": rows}


# -- usage over time -----------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Whole hours [first_hour_ms, first_hour_ms + hours * HOUR_MS)."""

    first_hour_ms: int
    hours: int

    @property
    def end_ms(self) -> int:
        return self.first_hour_ms + self.hours * HOUR_MS

    @classmethod
    def ending_at(cls, now_ms: int, hours: int) -> Window:
        """The last `hours` hours, the current (partial) one included."""
        current = now_ms - now_ms % HOUR_MS
        return cls(current - (hours - 1) * HOUR_MS, hours)


def _series(rows: Iterable[Row], window: Window) -> list[Usage]:
    """One Usage per hour of the window (all buckets summed); hours with no row are zero."""
    out = [Usage() for _ in range(window.hours)]
    for row in rows:
        i = (row.hour_ms - window.first_hour_ms) // HOUR_MS
        if 0 <= i < window.hours:
            out[i] = out[i] + row.usage
    return out


def _tenant_doc(tenant: str, rows: Sequence[Row], window: Window) -> Doc:
    hours = _series(rows, window)
    return {
        "tenant": tenant,
        "requests": {c.value: [u.count(c) for u in hours] for c in RequestClass},
        "bytes_in": [u.bytes_in for u in hours],
        "bytes_out": [u.bytes_out for u in hours],
        # byte_hours of a whole past hour is its mean stored bytes; the current hour's is
        # partial (only the samples taken so far).
        "byte_hours": [u.byte_hours for u in hours],
        "buckets": sorted({r.bucket for r in rows if r.bucket}),
        "total": usage_doc(total(rows)),
    }


def usage_view(by_tenant: Mapping[str, Sequence[Row]], window: Window) -> Doc:
    """Per tenant and hour: requests by price class, bytes in/out, stored byte-hours."""
    return {"hours": [iso(window.first_hour_ms + i * HOUR_MS) for i in range(window.hours)],
            "first_hour_ms": window.first_hour_ms, "hour_ms": HOUR_MS,
            "classes": [c.value for c in RequestClass],
            "tenants": [_tenant_doc(t, rows, window) for t, rows in sorted(by_tenant.items())]}


# -- recent errors -------------------------------------------------------------------------


def errors_view(events: Iterable[ErrorEvent], seen_total: int) -> Doc:
    return {"total": seen_total,
            "events": [{"seq": e.seq, "time": iso(e.time_ms), "time_ms": e.time_ms,
                        "source": e.source.value, "request_id": e.request_id,
                        "operation": e.operation, "code": e.code, "status": e.status,
                        "message": e.message} for e in events]}
