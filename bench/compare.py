"""Side-by-side comparison of two S3 endpoints: `python -m bench.compare --help`.

Absolute figures drift on a shared machine, so a claim is a ratio measured in one run: every
workload is prepared on both endpoints first (untimed), then timed on A, then on B, then on A
again... for `--rounds` rounds. For each workload and side it prints the median and the spread
(min..max) of the workload's main figure (ops/s, MB/s or keys/s), the ratio of the medians
A/B, and writes the same as a Markdown table to `bench/results/<date>-<name>.md` with the date
and the core count. Without `--b-endpoint` it measures A alone (a one-sided table).
Rules: the timed phases of A and B never overlap; every report of every round is kept in the
JSON output (`--json`) so a table can be rebuilt or audited.
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tomllib
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

from bench.loadgen import (
    TRANSPORT_ERRORS,
    Bench,
    RunOptions,
    Target,
    add_run_args,
    options_from_args,
    parse_workloads,
    write_json,
)
from bench.stats import PhaseReport, format_report
from bench.workloads import PrepareError, Workload

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# The figure each workload is judged by, as a PhaseReport field and a unit.
METRIC: dict[Workload, tuple[str, str]] = {
    Workload.PUT_SMALL: ("ops_per_s", "ops/s"),
    Workload.GET_SMALL: ("ops_per_s", "ops/s"),
    Workload.MIXED: ("ops_per_s", "ops/s"),
    Workload.PUT_LARGE: ("mb_per_s", "MB/s"),
    Workload.GET_LARGE: ("mb_per_s", "MB/s"),
    Workload.GET_RANGE: ("ops_per_s", "ops/s"),
    Workload.LIST_FLAT: ("items_per_s", "keys/s"),
    Workload.LIST_DELIM: ("items_per_s", "keys/s"),
    Workload.LIST_ROOT: ("ops_per_s", "lists/s"),
    Workload.MULTIPART: ("mb_per_s", "MB/s"),
}

# Issue 3's targets for Coffre (A) against Swift (B) on the same run.
TARGET_RATIO: dict[Workload, float] = {
    Workload.PUT_SMALL: 25.0,
    Workload.GET_SMALL: 14.0,
    Workload.PUT_LARGE: 2.3,
    Workload.GET_LARGE: 2.7,
    Workload.LIST_FLAT: 1.2,
}


@dataclass(frozen=True)
class SideSummary:
    median: float
    low: float
    high: float
    p50_ms: float
    errors: int
    client_bound_rounds: int
    client_cpu_max: float  # highest fraction of one core the client used in a round


@dataclass(frozen=True)
class Row:
    workload: Workload
    unit: str
    a: SideSummary
    b: SideSummary | None

    @property
    def ratio(self) -> float | None:
        if self.b is None or self.b.median == 0:
            return None
        return self.a.median / self.b.median


def summarize(workload: Workload, reports: Sequence[PhaseReport]) -> SideSummary:
    field, _ = METRIC[workload]
    values = [float(getattr(r, field)) for r in reports]
    return SideSummary(
        median=statistics.median(values),
        low=min(values),
        high=max(values),
        p50_ms=statistics.median(r.p50_ms for r in reports),
        errors=sum(r.errors for r in reports),
        client_bound_rounds=sum(r.client_bound for r in reports),
        client_cpu_max=max(r.client_cpu_fraction for r in reports),
    )


def build_rows(
    workloads: Sequence[Workload],
    a_reports: dict[Workload, list[PhaseReport]],
    b_reports: dict[Workload, list[PhaseReport]] | None,
) -> list[Row]:
    return [
        Row(
            w, METRIC[w][1], summarize(w, a_reports[w]),
            summarize(w, b_reports[w]) if b_reports is not None else None,
        )
        for w in workloads
    ]


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _side_cells(s: SideSummary) -> list[str]:
    spread = f"{_fmt(s.low)}..{_fmt(s.high)}"
    bound = f", client-bound x{s.client_bound_rounds}" if s.client_bound_rounds else ""
    return [_fmt(s.median), spread, f"{s.p50_ms:.1f}", f"{s.errors}",
            f"{s.client_cpu_max:.0%}{bound}"]


def _ratio_cells(row: Row) -> list[str]:
    ratio = row.ratio
    if ratio is None:
        return ["", ""]
    target = TARGET_RATIO.get(row.workload)
    verdict = "" if target is None else f"{target:g}x " + ("met" if ratio >= target else "not met")
    return [f"{ratio:.2f}x", verdict]


def markdown_table(rows: Sequence[Row], a_name: str, b_name: str | None) -> str:
    head = [f"{a_name} median", f"{a_name} min..max", f"{a_name} p50 ms", f"{a_name} errors",
            f"{a_name} client cpu"]
    if b_name is not None:
        head += [f"{b_name} median", f"{b_name} min..max", f"{b_name} p50 ms",
                 f"{b_name} errors", f"{b_name} client cpu", f"{a_name}/{b_name}", "target"]
    head = ["workload", "unit", *head]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.workload.value, row.unit, *_side_cells(row.a)]
        if row.b is not None:
            cells += [*_side_cells(row.b), *_ratio_cells(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def core_count() -> int:
    """What `nproc` prints: the CPUs this process may run on."""
    return len(os.sched_getaffinity(0))


def markdown_report(
    rows: Sequence[Row], a: Target, b: Target | None, options: RunOptions, rounds: int,
    when: datetime.datetime, note: str, load_at_start: str = "",
) -> str:
    sides = f"A = **{a.name}** ({a.endpoint})"
    if b is not None:
        sides += f", B = **{b.name}** ({b.endpoint})"
    conc = options.concurrency or "per workload (32 small, 4 large, 8 range, 4 list, 2 multipart)"
    parts = [
        f"# {a.name}" + (f" vs {b.name}" if b else "") + f" — {when:%Y-%m-%d %H:%M} UTC",
        "",
        f"- date: {when:%Y-%m-%d %H:%M:%S} UTC; machine: `nproc` = {core_count()}, "
        f"{platform.machine()}, Python {platform.python_version()}; load average at start "
        f"{load_at_start} (the machine is shared: compare ratios, not absolute figures)",
        f"- {sides}",
        f"- rounds: {rounds}{', A then B in each' if b else ''}; "
        f"{options.duration_s:g} s per phase; "
        f"concurrency {conc}; seed {options.seed}; signer {options.signer.value}; "
        f"payload {'signed' if options.signed_payload else 'UNSIGNED-PAYLOAD'}",
        f"- sizes: {options.sizes}",
        "- median and min..max over the rounds; p50 is the median of the rounds' p50 latency; "
        "errors are non-2xx answers plus wrong bytes or counts read back, summed over rounds; "
        "client cpu is the load generator's highest share of one core in a round (flagged "
        "client-bound at 85%: that figure measured the client)",
        "",
        markdown_table(rows, a.name, b.name if b else None),
        "",
    ]
    if note:
        parts += [note, ""]
    return "\n".join(parts)


def results_path(name: str, when: datetime.datetime, directory: Path = RESULTS_DIR) -> Path:
    """bench/results/<date>-<name>.md, with a counter if that file exists already."""
    path = directory / f"{when:%Y-%m-%d}-{name}.md"
    n = 2
    while path.exists():
        path = directory / f"{when:%Y-%m-%d}-{name}-{n}.md"
        n += 1
    return path


@dataclass
class Comparison:
    """Every round's reports per side, and the workloads left out (with the reason)."""

    a: dict[Workload, list[PhaseReport]] = field(default_factory=dict)
    b: dict[Workload, list[PhaseReport]] | None = None
    skipped: dict[Workload, str] = field(default_factory=dict)

    def all_reports(self) -> list[PhaseReport]:
        return [r for side in (self.a, self.b or {}) for v in side.values() for r in v]


async def _prepare_all(benches: Sequence[Bench], workloads: Sequence[Workload]) -> dict[
        Workload, str]:
    """Prepare each workload on every side; a workload one side cannot set up is skipped
    (the table says why) rather than ending the whole comparison."""
    skipped: dict[Workload, str] = {}
    for workload in workloads:
        for bench in benches:
            print(f"# preparing {workload.value} on {bench.target.name}", flush=True)
            try:
                await bench.prepare(workload)
            except (PrepareError, *TRANSPORT_ERRORS) as exc:
                skipped[workload] = f"{bench.target.name}: {type(exc).__name__}: {exc}"
                print(f"# skipping {workload.value}: {skipped[workload]}", flush=True)
                break
    return skipped


async def compare(
    a: Target, b: Target | None, workloads: Sequence[Workload], options: RunOptions, rounds: int
) -> Comparison:
    """Prepare every workload on both sides, then run the rounds, A then B."""
    result = Comparison(b={} if b is not None else None)
    async with AsyncExitStack() as stack:
        benches = [await stack.enter_async_context(Bench(t, options)) for t in (a, b) if t]
        result.skipped = await _prepare_all(benches, workloads)
        sides = [result.a] + ([result.b] if result.b is not None else [])
        for round_no in range(1, rounds + 1):
            print(f"# round {round_no}/{rounds}", flush=True)
            for workload in workloads:
                if workload in result.skipped:
                    continue
                for bench, reports in zip(benches, sides, strict=True):
                    report = await bench.run(workload)
                    reports.setdefault(workload, []).append(report)
                    print(format_report(report), flush=True)
    return result


def read_credentials(path: str) -> tuple[str, str]:
    """access_key and secret_key from a TOML file, at the top level or in any table."""
    with open(path, "rb") as f:
        data = tomllib.load(f)
    tables = [data, *(v for v in data.values() if isinstance(v, dict))]
    for table in tables:
        if "access_key" in table and "secret_key" in table:
            return str(table["access_key"]), str(table["secret_key"])
    raise SystemExit(f"{path}: no access_key / secret_key")


def add_side_args(parser: argparse.ArgumentParser, side: str, default_name: str) -> None:
    parser.add_argument(f"--{side}-name", default=default_name)
    parser.add_argument(f"--{side}-endpoint", default="")
    parser.add_argument(f"--{side}-access-key", default="")
    parser.add_argument(f"--{side}-secret-key", default="")
    parser.add_argument(f"--{side}-credentials", default="",
                        help="TOML file with access_key and secret_key (e.g. Coffre's)")
    parser.add_argument(f"--{side}-region", default="us-east-1")


def target_of(args: argparse.Namespace, side: str, bucket: str) -> Target | None:
    endpoint = getattr(args, f"{side}_endpoint")
    if not endpoint:
        return None
    access, secret = getattr(args, f"{side}_access_key"), getattr(args, f"{side}_secret_key")
    if getattr(args, f"{side}_credentials"):
        access, secret = read_credentials(getattr(args, f"{side}_credentials"))
    return Target(getattr(args, f"{side}_name"), endpoint, access, secret,
                  getattr(args, f"{side}_region"), bucket)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_side_args(parser, "a", "coffre")
    add_side_args(parser, "b", "swift")
    add_run_args(parser)
    parser.add_argument("--bucket", default="coffre-bench")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--name", default="", help="results file: <date>-<name>.md")
    parser.add_argument("--results-dir", default=str(RESULTS_DIR))
    parser.add_argument("--note", default="", help="a paragraph added under the table")
    parser.add_argument("--json", default="", help="also write every round's report here")
    return parser


async def _main(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    a, b = target_of(args, "a", args.bucket), target_of(args, "b", args.bucket)
    if a is None:
        raise SystemExit("--a-endpoint is required")
    if not 1 <= args.rounds <= 100:
        raise SystemExit("--rounds must be in 1..100")
    workloads = parse_workloads(args.workloads)
    when = datetime.datetime.now(datetime.UTC)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    result = await compare(a, b, workloads, options, args.rounds)
    ran = [w for w in workloads if w not in result.skipped]
    rows = build_rows(ran, result.a, result.b)
    note = "\n".join([args.note] * bool(args.note) + [
        f"- skipped {w.value} ({why})" for w, why in result.skipped.items()])
    text = markdown_report(rows, a, b, options, args.rounds, when, note, load)
    print(text)
    name = args.name or (f"{a.name}-vs-{b.name}" if b else a.name)
    path = results_path(name, when, Path(args.results_dir))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"# wrote {path}")
    if args.json:
        write_json(args.json, result.all_reports())
    return 1 if result.skipped or any(r.errors for r in result.all_reports()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    return uvloop.run(_main(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
