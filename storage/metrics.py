"""Node telemetry: Prometheus metrics, readiness, and the request id that ties a node's work
to the gateway request that caused it.

Rules: one NodeMetrics per app (its own registry, so tests can run several nodes in one
process). Requests are counted by a middleware (HTTP) and by `observe_rpc` (one call of the
framed channel; rpc.py calls it). Per-device figures (records, bytes, free space, commits)
are not copied on the write path: the /metrics handler takes a fresh `Node.info()` snapshot
and a collector turns it into gauges at scrape time. The endpoint label is the route's
template, never the concrete path, so label sets stay bounded.

Request id: the gateway sets REQUEST_ID for each S3 request; NodeClient sends it as the
REQUEST_ID_HEADER header (HTTP) or the call's trailing field (RPC); the node sets it again
around the handler, so every log line on both sides carries the same id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from storage.node import Node

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("coffre_request_id",
                                                                 default="")
REQUEST_ID_HEADER = "X-Coffre-Request-Id"
log = logging.getLogger("coffre.storage.http")
request_id_chars_max = 64  # a longer header is cut: it only ever goes into log lines
# `*_created` series double every counter for a timestamp nobody alerts on (process-wide).
disable_created_metrics()  # type: ignore[no-untyped-call]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RPC_PATH_PREFIX = "rpc/"
# Seconds: an fdatasync on NVMe (~50 us) up to a stalled disk.
FSYNC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 5.0)
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     5.0, 30.0)
# Operations per group commit: powers of two up to limits.commit_batch_ops_max.
BATCH_BUCKETS_OPS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Snapshot = dict[str, Any]  # Node.info(): {"devices": [...], "rings": {...}}
StatusSource = Callable[[], dict[str, Any]]
_METRIC_NAME = re.compile(r"[a-z_][a-z0-9_]*")

# Node.info() device fields exported as gauges: (field, metric name, help).
_DEVICE_GAUGES = (
    ("used_bytes", "coffre_device_used_bytes", "Bytes used by segments on the device"),
    ("free_bytes", "coffre_device_free_bytes", "Bytes still writable on the device"),
    ("fragments", "coffre_device_fragments", "Fragment records indexed on the device"),
    ("meta_records", "coffre_device_meta_records", "Metadata records on the device"),
    ("quarantined", "coffre_device_quarantined", "Records quarantined for a bad checksum"),
    ("repair_jobs", "coffre_device_repair_jobs", "Repair queue: jobs waiting on the device"),
    ("segments", "coffre_device_segments", "Segment files on the device"),
)
_DEVICE_COUNTERS = (
    ("commits", "coffre_device_commits", "Group commits (one fdatasync + one transaction)"),
    ("committed_ops", "coffre_device_committed_ops", "Operations made durable by commits"),
)


class _SnapshotCollector(Collector):
    """Gauges from the last Node.info() snapshot, taken by the /metrics handler."""

    def __init__(self) -> None:
        self.snapshot: Snapshot = {}

    def collect(self) -> Iterator[Metric]:
        devices = [d for d in self.snapshot.get("devices", []) if isinstance(d, dict)]
        up = GaugeMetricFamily("coffre_device_up", "1 if the device serves, 0 if it failed",
                               labels=["device"])
        for dev in devices:
            up.add_metric([str(dev.get("id"))], 0.0 if dev.get("failed") else 1.0)
        yield up
        for field, name, doc in _DEVICE_GAUGES:
            gauge = GaugeMetricFamily(name, doc, labels=["device"])
            for dev in devices:
                if isinstance(dev.get(field), int):
                    gauge.add_metric([str(dev["id"])], float(dev[field]))
            yield gauge
        for field, name, doc in _DEVICE_COUNTERS:
            counter = CounterMetricFamily(name, doc, labels=["device"])
            for dev in devices:
                if isinstance(dev.get(field), int):
                    counter.add_metric([str(dev["id"])], float(dev[field]))
            yield counter
        yield self._rings()

    def _rings(self) -> Metric:
        family = GaugeMetricFamily("coffre_ring_version", "Version of each ring file held",
                                   labels=["ring"])
        rings = self.snapshot.get("rings", {})
        for name, ring in sorted(rings.items()) if isinstance(rings, dict) else ():
            version = ring.get("version") if isinstance(ring, dict) else None
            if isinstance(version, int):
                family.add_metric([name], float(version))
        return family


class _StatusCollector(Collector):
    """`coffre_<prefix>_<field>` gauges from the numbers of a status dict, read at scrape
    time (e.g. the rebalancer's status(): progress, rate, ETA, bytes left)."""

    def __init__(self, prefix: str, source: StatusSource) -> None:
        self._prefix, self._source = prefix, source

    def collect(self) -> Iterator[Metric]:
        try:
            status = self._source()
        except Exception:  # a broken source must not take the whole scrape down
            return
        for field, value in sorted(status.items()):
            if isinstance(value, bool | int | float) and _METRIC_NAME.fullmatch(field):
                yield GaugeMetricFamily(f"coffre_{self._prefix}_{field}",
                                        f"{self._prefix} status field {field}", value=value)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("coffre_node_requests", "Internal requests answered",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("coffre_node_request_seconds", "Internal request time",
                                 ["endpoint"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.bytes_in = Counter("coffre_node_received_bytes", "Request body bytes received",
                                ["endpoint"], registry=r)
        self.bytes_out = Counter("coffre_node_sent_bytes", "Response body bytes sent",
                                 ["endpoint"], registry=r)
        self.fsync = Histogram("coffre_node_fsync_seconds", "fdatasync time per group commit",
                               ["device"], buckets=FSYNC_BUCKETS_S, registry=r)
        self.batch = Histogram("coffre_node_commit_batch_ops", "Operations per group commit",
                               ["device"], buckets=BATCH_BUCKETS_OPS, registry=r)
        self._snapshot = _SnapshotCollector()
        r.register(self._snapshot)
        # Endpoints are our own route and op names (rpc.py labels unknown ops "unknown"),
        # devices the node's own: both sets are small, so these caches stay small.
        self._children: dict[tuple[str, int], tuple[Any, Any, Any, Any]] = {}
        self._commit_children: dict[int, tuple[Any, Any]] = {}

    def observe(self, endpoint: str, status: int, seconds: float, bytes_in: int,
                bytes_out: int) -> None:
        # The labelled children are looked up once per (endpoint, status): labels() takes a
        # lock and checks its arguments, a cost paid on every internal call otherwise.
        children = self._children.get((endpoint, status))
        if children is None:
            children = (self.requests.labels(endpoint, str(status)),
                        self.latency.labels(endpoint), self.bytes_in.labels(endpoint),
                        self.bytes_out.labels(endpoint))
            self._children[(endpoint, status)] = children
        requests, latency, received, sent = children
        requests.inc()
        latency.observe(max(0.0, seconds))
        if bytes_in:
            received.inc(bytes_in)
        if bytes_out:
            sent.inc(bytes_out)

    def observe_rpc(self, op: str, status: int, seconds: float, bytes_in: int = 0,
                    bytes_out: int = 0) -> None:
        """One call of the framed RPC channel, labelled "rpc/<op>"."""
        self.observe(RPC_PATH_PREFIX + op, status, seconds, bytes_in, bytes_out)

    def observe_commit(self, device: int, ops: int, fsync_seconds: float) -> None:
        """One group commit of `device`: its batch size and its fdatasync time."""
        children = self._commit_children.get(device)
        if children is None:
            children = (self.batch.labels(str(device)), self.fsync.labels(str(device)))
            self._commit_children[device] = children
        children[0].observe(ops)
        children[1].observe(max(0.0, fsync_seconds))

    def add_status_source(self, prefix: str, source: StatusSource) -> None:
        """Export the numeric fields of `source()` (called at each scrape) as gauges."""
        if not _METRIC_NAME.fullmatch(prefix):
            raise ValueError(f"bad metric prefix {prefix!r}")
        self.registry.register(_StatusCollector(prefix, source))

    def render(self, snapshot: Snapshot) -> bytes:
        self._snapshot.snapshot = snapshot
        return generate_latest(self.registry)


NODE_METRICS = web.AppKey("node_metrics", NodeMetrics)
NODE = web.AppKey("metrics_node", Node)  # server.py's own key would be a circular import


def endpoint_of(request: web.Request) -> str:
    """`METHOD /route/{template}`; "unmatched" for paths no route knows."""
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    if resource is None:
        return f"{request.method} unmatched"
    return f"{request.method} {resource.canonical}"


def bound_request_id(text: str | None) -> str:
    """The caller's request id as it may go into log lines: its first
    request_id_chars_max characters, letters, digits and "-_." only."""
    if not text:
        return ""
    if _PLAIN_ID.fullmatch(text):
        return text     # what a gateway sends: nothing to drop (once per RPC call)
    return "".join(c for c in text[:request_id_chars_max] if c.isalnum() or c in "-_.")


_PLAIN_ID = re.compile(rf"[A-Za-z0-9_.\-]{{1,{request_id_chars_max}}}")


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every HTTP request (RPC calls are counted by observe_rpc)."""
    REQUEST_ID.set(bound_request_id(request.headers.get(REQUEST_ID_HEADER)))
    started = time.monotonic()
    endpoint = endpoint_of(request)
    status = 500
    response: web.StreamResponse | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        out = 0 if response is None or request.method == "HEAD" else (
            response.content_length or 0)
        seconds = time.monotonic() - started
        request.app[NODE_METRICS].observe(endpoint, status, seconds,
                                          int(request.content.total_bytes), out)
        level = logging.WARNING if status >= 500 else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(level, "%s %s %.1f ms", endpoint, status, seconds * 1000)


def ready_problems(snapshot: Snapshot, rings_expected: bool) -> list[str]:
    """Why this node should not take traffic yet; [] when ready. Pure."""
    problems = []
    devices = [d for d in snapshot.get("devices", []) if isinstance(d, dict)]
    if not devices:
        problems.append("no devices")
    for dev in devices:
        if dev.get("failed"):
            problems.append(f"device {dev.get('id')} failed: {dev.get('failed_reason')}")
    if devices and all(d.get("failed") for d in devices):
        problems.append("no writable device")
    if rings_expected and not snapshot.get("rings"):
        problems.append("no ring file loaded")
    return problems


async def metrics_handler(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    body = request.app[NODE_METRICS].render(await node.info())
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def ready_handler(request: web.Request) -> web.StreamResponse:
    """200 while some device serves and a ring is held; 503 with the reasons otherwise.
    A node with one failed device still serves the others: 200, and the problem is listed."""
    node = request.app[NODE]
    problems = ready_problems(await node.info(), node.config.rings_dir is not None)
    fatal = [p for p in problems if not p.startswith("device ")]
    return web.json_response({"ready": not fatal, "problems": problems},
                             status=503 if fatal else 200)


def install(app: web.Application, node: Node) -> NodeMetrics:
    """Add /metrics and /health/ready to a node app (add `middleware` to its middlewares)."""
    metrics = NodeMetrics()
    app[NODE_METRICS] = metrics
    app[NODE] = node
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/health/ready", ready_handler)
    return metrics
