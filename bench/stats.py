"""Counting a benchmark phase and turning the counts into one report.

A `Recorder` takes one `OpOutcome` and latency per operation; `Recorder.report` gives a
frozen `PhaseReport` with rates, latency percentiles, errors by kind and the client's own CPU
use. Throughput and latency count successful operations only (a fast 503 is not a fast PUT);
errors are counted apart. A phase whose client used most of a core is flagged `client_bound`:
its figures measure the load generator, not the server.
Rules: pure arithmetic except `CpuClock`, which reads the wall clock and getrusage.
"""

import dataclasses
import math
import resource
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.limits import CLIENT_BOUND_CPU_FRACTION, LATENCY_SAMPLES_MAX
from bench.outcome import OpOutcome

MB = 1_000_000


@dataclass(frozen=True)
class PhaseReport:
    workload: str
    target: str
    concurrency: int
    ops: int
    errors: int
    error_kinds: dict[str, int]
    elapsed_s: float
    ops_per_s: float
    mb_per_s: float
    items_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu_fraction: float
    # Client CPU per successful operation: its inverse is the most ops/s one core of this
    # client can drive, whatever the server's speed (the self-test prints it).
    client_cpu_us_per_op: float
    client_bound: bool

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PhaseReport":
        return cls(**data)


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


@dataclass(frozen=True)
class CpuSample:
    wall_s: float
    cpu_s: float


class CpuClock:
    """Wall time and this process's CPU time (user + system), read together."""

    @staticmethod
    def now() -> CpuSample:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return CpuSample(time.perf_counter(), usage.ru_utime + usage.ru_stime)


class Recorder:
    def __init__(self) -> None:
        self.ops = 0
        self.payload_bytes = 0
        self.items = 0
        self.errors: Counter[str] = Counter()
        self.latencies_ns: list[int] = []

    def record(self, latency_ns: int, outcome: OpOutcome) -> None:
        if not outcome.ok:
            self.errors[outcome.error] += 1
            return
        self.ops += 1
        self.payload_bytes += outcome.payload_bytes
        self.items += outcome.items
        if len(self.latencies_ns) < LATENCY_SAMPLES_MAX:
            self.latencies_ns.append(latency_ns)

    def report(
        self, workload: str, target: str, concurrency: int, start: CpuSample, end: CpuSample
    ) -> PhaseReport:
        elapsed = max(end.wall_s - start.wall_s, 1e-9)
        cpu_fraction = (end.cpu_s - start.cpu_s) / elapsed
        lat = sorted(self.latencies_ns)
        return PhaseReport(
            workload=workload,
            target=target,
            concurrency=concurrency,
            ops=self.ops,
            errors=sum(self.errors.values()),
            error_kinds=dict(self.errors),
            elapsed_s=elapsed,
            ops_per_s=self.ops / elapsed,
            mb_per_s=self.payload_bytes / elapsed / MB,
            items_per_s=self.items / elapsed,
            p50_ms=percentile(lat, 0.50) / 1e6,
            p99_ms=percentile(lat, 0.99) / 1e6,
            max_ms=(lat[-1] if lat else 0) / 1e6,
            client_cpu_fraction=cpu_fraction,
            client_cpu_us_per_op=(end.cpu_s - start.cpu_s) / max(self.ops, 1) * 1e6,
            client_bound=cpu_fraction >= CLIENT_BOUND_CPU_FRACTION,
        )


def format_report(r: PhaseReport) -> str:
    """One line per phase, the form `loadgen` prints."""
    rate = f"{r.ops_per_s:9.1f} ops/s {r.mb_per_s:8.1f} MB/s"
    if r.items_per_s:
        rate += f" {r.items_per_s:9.0f} keys/s"
    line = (
        f"{r.target:>8} {r.workload:<10} c={r.concurrency:<3} {rate}  "
        f"p50 {r.p50_ms:7.1f} ms  p99 {r.p99_ms:7.1f} ms  max {r.max_ms:7.1f} ms  "
        f"ops {r.ops}  errors {r.errors}  client cpu {r.client_cpu_fraction:4.0%}"
    )
    if r.error_kinds:
        line += "  " + ", ".join(f"{k}: {v}" for k, v in sorted(r.error_kinds.items()))
    if r.client_bound:
        line += "  [CLIENT-BOUND: this measures the load generator]"
    return line
