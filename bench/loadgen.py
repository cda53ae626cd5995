"""A compact asyncio S3 load generator: `python -m bench.loadgen --help`.

It drives any S3 endpoint (Coffre, Swift's s3api, ...) with the workloads of
`bench.workloads` and prints, per workload: ops/s, MB/s, keys/s for listings, latency
p50/p99/max, errors (non-2xx answers and wrong bytes read back) and the client's own CPU use
as a fraction of one core, flagging phases where the client was the bottleneck.
`--self-test` measures the client's own ceiling against a trivial local server instead.
`--json FILE` writes the reports for `bench.compare`.

Rules: loopback or explicitly given endpoints only; every phase is bounded by a duration and
an operation count; bodies come from the seed and are checked, never kept.
"""

import argparse
import asyncio
import itertools
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

import aiohttp
import uvloop

from bench import limits
from bench.bodies import BodySource
from bench.outcome import OpOutcome, failed
from bench.s3client import S3Client
from bench.signer import SignerKind, make_signer
from bench.stats import CpuClock, PhaseReport, Recorder, format_report
from bench.workloads import DEFAULT_CONCURRENCY, Job, JobContext, Sizes, Workload, make_job

# Transport failures that count as an operation's error rather than stopping the run.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)


@dataclass(frozen=True)
class Target:
    """One S3 endpoint and the credentials and bucket to use there."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    bucket: str = "coffre-bench"


@dataclass(frozen=True)
class RunOptions:
    concurrency: int | None = None  # None: the workload's default (DEFAULT_CONCURRENCY)
    duration_s: float = limits.DURATION_S_DEFAULT
    max_ops: int = limits.MAX_OPS_DEFAULT
    seed: int = 1
    signer: SignerKind = SignerKind.FAST
    signed_payload: bool = False
    sizes: Sizes = field(default_factory=Sizes)

    def concurrency_for(self, workload: Workload) -> int:
        return self.concurrency or DEFAULT_CONCURRENCY[workload]


async def _timed(job: Job, index: int) -> tuple[int, OpOutcome]:
    start = time.perf_counter_ns()
    try:
        outcome = await job.op(index)
    except TRANSPORT_ERRORS as exc:
        outcome = failed(type(exc).__name__)
    return time.perf_counter_ns() - start, outcome


async def run_phase(
    job: Job, workload: str, target: str, concurrency: int, duration_s: float, max_ops: int
) -> PhaseReport:
    """Run *job* with *concurrency* operations in flight until *duration_s* has passed or
    *max_ops* operations have started; operations in flight at the deadline complete."""
    recorder = Recorder()
    counter = itertools.count()
    start = CpuClock.now()
    deadline = start.wall_s + duration_s

    async def worker() -> None:
        while time.perf_counter() < deadline:
            index = next(counter)
            if index >= max_ops:
                return
            recorder.record(*await _timed(job, index))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return recorder.report(workload, target, concurrency, start, CpuClock.now())


class Bench:
    """A client session on one target, with one prepared job per workload.

    `async with Bench(target, options) as bench: await bench.run(Workload.GET_SMALL)`.
    Jobs are prepared on first use and kept, so rounds after the first are timed only.
    """

    def __init__(self, target: Target, options: RunOptions) -> None:
        self.target = target
        self.options = options
        self._session: aiohttp.ClientSession | None = None
        self._jobs: dict[Workload, Job] = {}
        self._ctx: JobContext | None = None

    async def __aenter__(self) -> "Bench":
        connector = aiohttp.TCPConnector(limit=limits.CONCURRENCY_MAX, force_close=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=limits.REQUEST_TIMEOUT_S),
            # Fewer headers to build and send; the bench never asks for compressed bodies.
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
            read_bufsize=limits.CHUNK_BYTES,
        )
        t, o = self.target, self.options
        client = S3Client(
            self._session, t.endpoint, make_signer(o.signer, t.access_key, t.secret_key, t.region),
            BodySource(o.seed), o.signed_payload,
        )
        self._ctx = JobContext(client, t.bucket, o.seed, o.sizes)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def client(self) -> S3Client:
        assert self._ctx is not None, "Bench used outside 'async with'"
        return self._ctx.client

    async def prepare(self, workload: Workload) -> Job:
        job = self._jobs.get(workload)
        if job is None:
            assert self._ctx is not None, "Bench used outside 'async with'"
            job = make_job(workload, self._ctx)
            await job.prepare()
            self._jobs[workload] = job
        return job

    async def run(self, workload: Workload) -> PhaseReport:
        job = await self.prepare(workload)
        o = self.options
        return await run_phase(
            job, workload.value, self.target.name, o.concurrency_for(workload),
            o.duration_s, o.max_ops,
        )


async def run_workloads(
    target: Target, workloads: Sequence[Workload], options: RunOptions
) -> list[PhaseReport]:
    async with Bench(target, options) as bench:
        return [await bench.run(w) for w in workloads]


def parse_workloads(text: str) -> list[Workload]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    aliases = {"list": ["list-flat", "list-delim", "list-root"], "all": [w.value for w in Workload]}
    expanded = [x for n in names for x in aliases.get(n, [n])]
    return [Workload(n) for n in expanded]


def add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", default="http://127.0.0.1:9000")
    parser.add_argument("--access-key", default="")
    parser.add_argument("--secret-key", default="")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--bucket", default="coffre-bench")


def add_run_args(parser: argparse.ArgumentParser) -> None:
    """Options shared by loadgen and compare: load shape, sizes, seed, signer."""
    p = parser
    p.add_argument("--workloads", default="put-small,get-small",
                   help="comma-separated: " + ", ".join(w.value for w in Workload)
                   + ", or 'list' / 'all'")
    p.add_argument("--concurrency", type=int, default=None,
                   help="operations in flight (default: per workload, e.g. 32 small, 4 large)")
    p.add_argument("--duration", type=float, default=limits.DURATION_S_DEFAULT,
                   help="seconds per timed phase")
    p.add_argument("--max-ops", type=int, default=limits.MAX_OPS_DEFAULT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--signer", choices=[k.value for k in SignerKind], default="fast")
    p.add_argument("--signed-payload", action="store_true",
                   help="sign body SHA-256 (default UNSIGNED-PAYLOAD)")
    d = Sizes()
    for name in ("small_bytes", "large_bytes", "range_object_bytes", "range_bytes",
                 "part_bytes", "parts", "list_keys", "list_prefixes", "key_pool"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))


def options_from_args(args: argparse.Namespace) -> RunOptions:
    if args.concurrency is not None and not 0 < args.concurrency <= limits.CONCURRENCY_MAX:
        raise SystemExit(f"--concurrency must be in 1..{limits.CONCURRENCY_MAX}")
    if not 0 < args.duration <= limits.DURATION_S_MAX:
        raise SystemExit(f"--duration must be in (0, {limits.DURATION_S_MAX}]")
    sizes = replace(Sizes(), **{k: getattr(args, k) for k in Sizes.__dataclass_fields__})
    if sizes.list_keys % sizes.list_prefixes or sizes.range_bytes > sizes.range_object_bytes:
        raise SystemExit("--list-keys must be a multiple of --list-prefixes, "
                         "--range-bytes at most --range-object-bytes")
    return RunOptions(
        concurrency=args.concurrency, duration_s=args.duration, max_ops=args.max_ops,
        seed=args.seed, signer=SignerKind(args.signer), signed_payload=args.signed_payload,
        sizes=sizes,
    )


def target_from_args(args: argparse.Namespace, name: str = "target") -> Target:
    return Target(name, args.endpoint, args.access_key, args.secret_key, args.region, args.bucket)


def write_json(path: str, reports: Sequence[PhaseReport]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump([r.to_json() for r in reports], f, indent=1)


async def _main(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    if args.self_test:
        from bench.selftest import self_test

        return await self_test(options)
    target = target_from_args(args, args.name)
    print(f"# seed {options.seed}, signer {options.signer.value}, {target.endpoint}", flush=True)
    reports = []
    async with Bench(target, options) as bench:
        for workload in parse_workloads(args.workloads):
            reports.append(await bench.run(workload))
            print(format_report(reports[-1]), flush=True)
    if args.json:
        write_json(args.json, reports)
    return 1 if any(r.errors for r in reports) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_args(parser)
    add_run_args(parser)
    parser.add_argument("--name", default="target", help="label of the target in reports")
    parser.add_argument("--json", default="", help="also write the reports to this file")
    parser.add_argument("--self-test", action="store_true",
                        help="measure the client's ceiling against a trivial local server")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return uvloop.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())
