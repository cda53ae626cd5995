"""The load generator's own ceiling: the same workloads against a trivial local server.

The stub (`bench.stubserver`) runs in its own process, so on a 2-core machine the client has
a core to itself; the figures printed are the most this client can measure, and a result
against a real server that comes near them (or is flagged client-bound) says little about
that server. Also prints the CPU cost of one SigV4 signature with each signer.
Rules: the stub listens on 127.0.0.1 on a free port and is stopped by its PID.
"""

import asyncio
import sys
from dataclasses import replace

from bench.loadgen import RunOptions, Target, run_workloads
from bench.signer import SignerKind, make_signer, sign_cost_us
from bench.stats import PhaseReport, format_report
from bench.workloads import Workload

CEILING_WORKLOADS = (
    Workload.PUT_SMALL, Workload.GET_SMALL, Workload.PUT_LARGE, Workload.GET_LARGE,
    Workload.GET_RANGE, Workload.LIST_FLAT,
)
STUB_START_TIMEOUT_S = 30.0


async def start_stub(seed: int) -> tuple[asyncio.subprocess.Process, str]:
    """Start the stub server; returns the process and its endpoint URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.stubserver", "--port", "0", "--seed", str(seed),
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), STUB_START_TIMEOUT_S)
    if not line.startswith(b"listening "):
        await stop_stub(proc)
        raise RuntimeError(f"stub server did not start: {line!r}")
    return proc, "http://" + line.split()[1].decode()


async def stop_stub(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        await proc.wait()


def print_sign_costs() -> None:
    for kind in SignerKind:
        try:
            signer = make_signer(kind, "AKIDEXAMPLE", "secret", "us-east-1")
        except ImportError as exc:
            print(f"signer {kind.value:9}: unavailable ({exc})")
            continue
        print(f"signer {kind.value:9}: {sign_cost_us(signer):6.1f} us CPU per request")


def ceiling_line(r: PhaseReport) -> str:
    ops = 1e6 / r.client_cpu_us_per_op if r.client_cpu_us_per_op else 0.0
    per_op_mb = r.mb_per_s / r.ops_per_s if r.ops_per_s else 0.0
    line = f"{r.workload:<10} {r.client_cpu_us_per_op:9.0f} us/op  ceiling {ops:9.0f} ops/s"
    line += f" {ops * per_op_mb:8.0f} MB/s"
    if r.items_per_s and r.ops_per_s:
        line += f" {ops * r.items_per_s / r.ops_per_s:9.0f} keys/s"
    return line


async def self_test(options: RunOptions) -> int:
    """Print the ceiling of every workload in CEILING_WORKLOADS; 0 if none had errors."""
    print_sign_costs()
    # Short phases: a ceiling needs seconds, not minutes.
    options = replace(options, duration_s=min(options.duration_s, 5.0))
    proc, endpoint = await start_stub(options.seed)
    try:
        target = Target("stub", endpoint, "AKIDEXAMPLE", "secret", bucket="ceiling")
        reports: list[PhaseReport] = await run_workloads(target, CEILING_WORKLOADS, options)
    finally:
        await stop_stub(proc)
    print(f"# client ceiling (signer {options.signer.value}) against a trivial local server:")
    for report in reports:
        print(format_report(report))
    print("# ceiling of one client core (1 / client CPU per op), whatever the server's speed:")
    for report in reports:
        print(ceiling_line(report))
    return 1 if any(r.errors for r in reports) else 0
