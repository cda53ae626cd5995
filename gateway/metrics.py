"""The gateway's Prometheus metrics: one registry per app, fed once per S3 request.

Rules: the dispatcher calls `record` once at the end of every request (errors
included), so the counters match what clients were answered. Labels stay bounded: the
operation is AWS's name from the router (or "Unknown" when routing failed), the status is
the HTTP status, the error label is the S3 error code. Each app gets its own registry (not
prometheus_client's global one) so that tests can build many apps in one process. Values
that already live elsewhere (ring versions) are read at scrape time by a collector, never
copied on the request path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.logs import log_request

# `*_created` series double every counter for a timestamp nobody alerts on (process-wide).
disable_created_metrics()  # type: ignore[no-untyped-call]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNKNOWN_OP = "Unknown"
# Seconds: from a metadata hit on a warm gateway (~1 ms) to a multi-GiB transfer.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                     5.0, 10.0, 30.0, 60.0, 300.0)
# Error codes the gateway answers when too few storage nodes answered (metastore: metadata
# quorum; datapath: fragment write quorum). Counted as quorum failures.
QUORUM_ERROR_CODES = frozenset({"ServiceUnavailable", "SlowDown"})

RingVersions = Callable[[], dict[str, int]]
_Children = tuple[Counter, Histogram, Counter, Counter]  # one (op, status)'s series


class _RingCollector(Collector):
    """`coffre_ring_version{ring}` read from the live RingSet at each scrape."""

    def __init__(self, versions: RingVersions) -> None:
        self._versions = versions

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily("coffre_ring_version", "Version of each ring in use",
                                   labels=["ring"])
        for name, version in self._versions().items():
            family.add_metric([name], float(version))
        yield family


class GatewayMetrics:
    """Counters and histograms of one gateway process."""

    def __init__(self, ring_versions: RingVersions | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("coffre_s3_requests", "S3 requests answered",
                                ["op", "status"], registry=r)
        self.latency = Histogram("coffre_s3_request_seconds",
                                 "Time from request to answer (body streamed included)",
                                 ["op"], buckets=LATENCY_BUCKETS_S, registry=r)
        self.bytes_in = Counter("coffre_s3_received_bytes", "Request body bytes received",
                                ["op"], registry=r)
        self.bytes_out = Counter("coffre_s3_sent_bytes", "Response body bytes sent",
                                 ["op"], registry=r)
        self.errors = Counter("coffre_s3_errors", "S3 error responses by code",
                              ["op", "code"], registry=r)
        self.quorum_failures = Counter(
            "coffre_quorum_failures", "Requests failed for lack of a node quorum", ["op"],
            registry=r)
        if ring_versions is not None:
            r.register(_RingCollector(ring_versions))
        self._cache: dict[tuple[str, int], _Children] = {}

    def watch_budget(self, held: Callable[[], float], peak: Callable[[], float]) -> None:
        """Export the memory budget's bytes held now and at most (gateway.budget)."""
        Gauge("coffre_gateway_inflight_object_bytes", "Object bytes held in flight",
              registry=self.registry).set_function(held)
        Gauge("coffre_gateway_inflight_object_bytes_peak", "Most object bytes held at once",
              registry=self.registry).set_function(peak)

    def watch_retirement(self, pending: Callable[[], float], early: Callable[[], float]) -> None:
        """Export the replaced data waiting to be deleted (gateway.retire)."""
        Gauge("coffre_gateway_retired_objects_pending",
              "Replaced or deleted objects whose data waits for its deletion delay",
              registry=self.registry).set_function(pending)
        Gauge("coffre_gateway_retired_objects_early",
              "Retired objects deleted before their delay because too many waited",
              registry=self.registry).set_function(early)

    def watch_read_ahead(self, counts: Callable[[], tuple[int, int]]) -> None:
        """Export the listing read-ahead's use (gateway.list_ahead)."""
        Gauge("coffre_gateway_list_ahead_served",
              "Listing pages answered from a page listed ahead (since start)",
              registry=self.registry).set_function(lambda: counts()[0])
        Gauge("coffre_gateway_list_ahead_stale",
              "Pages listed ahead but listed afresh: digests moved, failed or too old",
              registry=self.registry).set_function(lambda: counts()[1])

    def observe(self, op: str, status: int, seconds: float, bytes_in: int, bytes_out: int,
                error_code: str | None = None) -> None:
        """Record one answered request."""
        count, latency, received, sent = self._children(op, status)
        count.inc()
        latency.observe(max(0.0, seconds))
        if bytes_in:
            received.inc(bytes_in)
        if bytes_out:
            sent.inc(bytes_out)
        if error_code is not None:
            self.errors.labels(op, error_code).inc()
            if error_code in QUORUM_ERROR_CODES:
                self.quorum_failures.labels(op).inc()

    def _children(self, op: str, status: int) -> _Children:
        # labels() takes a lock and builds a tuple each call (~4 us each); requests repeat a
        # few dozen (op, status) pairs, so the children are looked up once per pair.
        children = self._cache.get((op, status))
        if children is None:
            children = (self.requests.labels(op, str(status)), self.latency.labels(op),
                        self.bytes_in.labels(op), self.bytes_out.labels(op))
            self._cache[(op, status)] = children
        return children

    def render(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)


def request_bytes(request: web.Request) -> int:
    """Body bytes received so far (all of them once the handler has read the body)."""
    return int(request.content.total_bytes)


def response_bytes(request: web.Request, response: web.StreamResponse) -> int:
    """Body bytes of the answer: its Content-Length (a streamed GET sets it before the first
    byte; aiohttp's own byte count includes headers and only exists after write_eof)."""
    if request.method == "HEAD":
        return 0
    return response.content_length or 0


METRICS = web.AppKey("metrics", GatewayMetrics)


def record(request: web.Request, response: web.StreamResponse, op: str, started_s: float,
           error_code: str | None = None) -> None:
    """What the dispatcher calls once per answered request: metrics, then the access log."""
    seconds = time.monotonic() - started_s
    bytes_in, bytes_out = request_bytes(request), response_bytes(request, response)
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.observe(op, response.status, seconds, bytes_in, bytes_out, error_code)
    log_request(op, request.method, request.path, response.status, seconds, bytes_in,
                bytes_out, error_code)
