"""`coffre admin usage`: a tenant's metered usage for billing, per bucket and hour.

    coffre admin usage --tenant T --from ISO --to ISO [--bucket B] [--json | --csv]

It reads the metering records (gateway.metering) straight from the storage nodes, as the
other admin commands do: no gateway needs to be up. The hours reported are those that start
in [--from, --to); an hour is the unit of the records, so a bound inside an hour moves to the
next hour start. Every figure is an integer sum over all gateways' records, so the totals
are exact whatever gateways ran and restarted; byte_hours alone is a derived fraction
(byte_seconds / 3600). Exit codes: 0, 1 bad arguments, 2 the cluster did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import sys
from datetime import UTC, datetime
from typing import Any

from gateway import config as config_mod
from gateway import errors
from gateway.catalog import Catalog
from gateway.hlc import Clock
from gateway.metastore import MetaStore
from gateway.metering import RequestClass, Row, Usage, read_usage, total
from ring.ringset import RingSet
from storage.client import NodeClient

read_timeout_s = 10.0      # one internal request from the CLI

CSV_FIELDS = ("tenant", "bucket", "hour", *(f"requests_{c.value}" for c in RequestClass),
              "bytes_in", "bytes_out", "byte_seconds", "byte_hours")


def parse_time(text: str) -> int:
    """ISO 8601 (a date, or a date and time; no zone means UTC) to epoch milliseconds."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def usage_doc(u: Usage) -> dict[str, Any]:
    return {"requests": {c.value: u.count(c) for c in RequestClass},
            "bytes_in": u.bytes_in, "bytes_out": u.bytes_out,
            "byte_seconds": u.byte_seconds, "byte_hours": u.byte_hours}


def export_doc(tenant: str, from_ms: int, to_ms: int, bucket: str | None,
               rows: list[Row]) -> dict[str, Any]:
    """The JSON export: one entry per bucket and hour, and the total."""
    return {"tenant": tenant, "from": iso(from_ms), "to": iso(to_ms), "bucket": bucket,
            "rows": [{"bucket": r.bucket, "hour": iso(r.hour_ms), **usage_doc(r.usage)}
                     for r in rows],
            "total": usage_doc(total(rows))}


def csv_rows(tenant: str, rows: list[Row]) -> list[list[str]]:
    """CSV lines (header first); the last line, hour "total", sums the others."""
    out = [list(CSV_FIELDS)]
    lines = [(r.bucket, iso(r.hour_ms), r.usage) for r in rows]
    lines.append(("", "total", total(rows)))
    for bucket, hour, u in lines:
        out.append([tenant, bucket, hour, *(str(u.count(c)) for c in RequestClass),
                    str(u.bytes_in), str(u.bytes_out), str(u.byte_seconds),
                    f"{u.byte_hours:.6f}"])
    return out


async def fetch(args: argparse.Namespace, from_ms: int, to_ms: int) -> list[Row]:
    cfg = config_mod.load(args.config, args.data)
    client = NodeClient(request_timeout_s=min(cfg.node_timeout_s, read_timeout_s))
    try:
        meta = MetaStore(RingSet(cfg.rings_dir), client, Clock())
        return await read_usage(Catalog(meta, 0.0), args.tenant, from_ms, to_ms, args.bucket)
    finally:
        await client.close()


def run(args: argparse.Namespace) -> int:
    try:
        from_ms, to_ms = parse_time(args.from_), parse_time(args.to)
    except ValueError as exc:
        print(f"coffre admin usage: bad time: {exc}", file=sys.stderr)
        return 1
    if to_ms <= from_ms:
        print("coffre admin usage: --to must be after --from", file=sys.stderr)
        return 1
    try:
        rows = asyncio.run(fetch(args, from_ms, to_ms))
    except (errors.S3Error, OSError, ValueError) as exc:
        print(f"coffre admin usage: the cluster did not answer: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(export_doc(args.tenant, from_ms, to_ms, args.bucket, rows)))
    elif args.csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(csv_rows(args.tenant, rows))
    else:
        for line in csv_rows(args.tenant, rows):
            print("  ".join(line))
    return 0


def add_usage_command(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `usage` under `coffre admin`'s subparsers."""
    p = groups.add_parser("usage", help="metered usage of a tenant, per bucket and hour")
    p.add_argument("--tenant", required=True)
    p.add_argument("--from", dest="from_", required=True, metavar="ISO",
                   help="first hour (ISO 8601, UTC unless a zone is given)")
    p.add_argument("--to", required=True, metavar="ISO", help="end (exclusive)")
    p.add_argument("--bucket", default=None, help="only this bucket")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="one JSON document on stdout")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header line")
    p.add_argument("--config", default="conf/local.toml")
    p.add_argument("--data", default=None, help="data root (default: COFFRE_DATA or config)")
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.usage_cli --tenant ...`: the command without `coffre`."""
    parser = argparse.ArgumentParser(prog="coffre admin")
    add_usage_command(parser.add_subparsers(dest="admin_command", required=True))
    args = parser.parse_args(["usage", *(sys.argv[1:] if argv is None else argv)])
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
