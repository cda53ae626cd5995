"""`coffre rebalance plan|status|pause|resume|throttle`: the operator's view of data movement.

Rules: the nodes to ask come from `--nodes HOST:PORT,...` or from the ring files of
`--rings-dir` (every device's and retired device's node). Each node is asked in turn over
plain HTTP (urllib: no event loop in the CLI); a node that does not answer is listed as
unreachable and makes `done` false. Errors are one line on stderr and exit 1; `--json`
prints one JSON object. `status` exits 0 whether or not the work is done (scripts read
`done`); `plan` needs the old and the new ring file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ring.model import Ring
from ring.ringfile import RingFileError, load
from ring.ringset import RingSet
from storage import autofail, wire
from storage import rebalance_plan as plan

timeout_s = 10.0
watch_every_s = 1.0


class CliError(Exception):
    """A one-line error for the operator."""


def _http(addr: str, path: str, method: str = "GET") -> Any:
    req = urllib.request.Request(f"http://{addr}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def _try(addr: str, path: str, method: str = "GET") -> Any | None:
    try:
        return _http(addr, path, method)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def ring_addrs(ring: Ring) -> list[str]:
    return sorted({d.addr for d in (*ring.devices, *ring.retired)})


def node_addrs(args: argparse.Namespace) -> list[str]:
    if args.nodes:
        return sorted({a.strip() for a in args.nodes.split(",") if a.strip()})
    if args.rings_dir is None:
        raise CliError("say which nodes to ask: --nodes HOST:PORT,... or --rings-dir DIR")
    try:
        rings = RingSet(args.rings_dir)
    except (OSError, RingFileError) as e:
        raise CliError(f"{args.rings_dir}: {e}") from None
    found: set[str] = set()
    for width in rings.widths:
        found.update(ring_addrs(rings.data(width)))
    try:
        found.update(ring_addrs(rings.meta))
    except LookupError:
        pass
    if not found:
        raise CliError(f"no built ring in {args.rings_dir}")
    return sorted(found)


def collect_status(addrs: list[str]) -> dict[str, Any]:
    """Every node's status and the totals (what `status --json` prints)."""
    statuses = {a: _try(a, wire.REBALANCE_PATH) for a in addrs}
    return plan.aggregate(statuses, addrs)


def _status_text(doc: dict[str, Any]) -> str:
    lines = [f"{'node':<22} {'done':<5} {'units':>13} {'moved MB':>10} {'left MB':>9} "
             f"{'MB/s':>7} {'errors':>6}"]
    for addr, s in doc["nodes"].items():
        if s.get("reachable") is False:
            lines.append(f"{addr:<22} unreachable")
            continue
        lines.append(
            f"{addr:<22} {'yes' if s['done'] else 'no':<5} "
            f"{s['units_done']:>6}/{s['units_total']:<6} {s['bytes_moved'] / plan.MB:>10.1f} "
            f"{s['bytes_left'] / plan.MB:>9.1f} {s['rate_bytes_per_s'] / plan.MB:>7.1f} "
            f"{s['errors']:>6}" + ("  paused" if s.get("paused") else ""))
    eta = doc["eta_s"]
    lines.append(f"total: {'done' if doc['done'] else 'in progress'}, "
                 f"{doc['bytes_moved'] / plan.MB:.1f} MB moved, "
                 f"{doc['bytes_left'] / plan.MB:.1f} MB left, "
                 f"ETA {'unknown' if eta is None else f'{eta:.0f} s'}, "
                 f"{doc['errors']} errors; orphans: {doc['orphans_collected']} collected "
                 f"({doc['orphan_bytes_collected'] / plan.MB:.1f} MB), "
                 f"{doc['orphans_pending']} awaiting confirmation")
    # Bytes, not units: a unit with nothing to move is quick, one with a full disk is not.
    moved, left = doc["bytes_moved"], doc["bytes_left"]
    lines.append(plan.progress_bar(1 if doc["done"] else moved, 1 if doc["done"] else
                                   moved + left + (0 if moved + left else 1)))
    return "\n".join(lines)


def _status(args: argparse.Namespace) -> tuple[Any, str]:
    addrs = node_addrs(args)
    doc = collect_status(addrs)
    while args.watch and not doc["done"]:
        print("\033[2J\033[H" + _status_text(doc), flush=True)
        time.sleep(watch_every_s)
        doc = collect_status(addrs)
    return doc, _status_text(doc)


def _control(path: str) -> Callable[[argparse.Namespace], tuple[Any, str]]:
    def run(args: argparse.Namespace) -> tuple[Any, str]:
        addrs = node_addrs(args)
        got = {a: _try(a, path + _throttle_query(args), "POST") for a in addrs}
        doc = plan.aggregate(got, addrs)
        failed = doc["unreachable"]
        text = "\n".join(f"{a}: {'FAILED' if a in failed else 'ok'}" for a in addrs)
        if failed:
            raise _Partial(doc, text)
        return doc, text

    return run


class _Partial(Exception):
    def __init__(self, doc: Any, text: str) -> None:
        super().__init__(text)
        self.doc, self.text = doc, text


def _throttle_query(args: argparse.Namespace) -> str:
    if getattr(args, "mbps", None) is None:
        return ""
    try:
        rate = float(args.mbps) * plan.MB
    except ValueError:
        raise CliError(f"MBPS must be a number, got {args.mbps!r}") from None
    if not 0 <= rate < float("inf"):
        raise CliError("MBPS must be >= 0 (0: unlimited)")
    query = f"?bytes_per_s={rate:.0f}"
    if args.concurrency is not None:
        query += f"&concurrency={int(args.concurrency)}"
    return query


def _plan(args: argparse.Namespace) -> tuple[Any, str]:
    try:
        old, new = load(args.old), load(args.new)
    except (OSError, RingFileError) as e:
        raise CliError(str(e)) from None
    addrs = sorted(set(ring_addrs(old)) | (set(args.nodes.split(",")) if args.nodes else set()))
    sizes: dict[int, dict[int, plan.PartSize]] = {}
    rates: list[float] = []
    for addr in addrs:
        got = _try(addr, wire.REBALANCE_PATH + "/sizes")
        st = _try(addr, wire.REBALANCE_PATH)
        if st is not None:
            rates.append(float(st.get("bytes_per_s", 0)))
        for dev, rows in (got or {}).get("devices", {}).items():
            sizes[int(dev)] = {int(p): plan.PartSize(int(f), int(b)) for p, f, b in rows}
    rate = float(args.mbps) * plan.MB if args.mbps is not None else min(rates, default=0.0)
    try:
        moves = plan.plan_moves(old, new, sizes, rate)
    except ValueError as e:
        raise CliError(str(e)) from None
    doc = moves.to_json() | {"bytes_per_s": rate}
    lines = [f"version {moves.old_version} -> {moves.new_version}: {moves.slots_moved} slots, "
             f"{moves.fragments_moved} fragments, {moves.bytes_moved / plan.MB:.1f} MB move "
             f"(optimal {moves.optimal_bytes / plan.MB:.1f} MB); ETA "
             + ("unthrottled" if moves.eta_s is None else f"{moves.eta_s:.0f} s")]
    lines += [f"{f.addr:<22} out {f.bytes_out / plan.MB:>9.1f} MB ({f.fragments_out:>6}) "
              f"in {f.bytes_in / plan.MB:>9.1f} MB ({f.fragments_in:>6})" for f in moves.nodes]
    return doc, "\n".join(lines)


def _run(handler: Callable[[argparse.Namespace], tuple[Any, str]]
         ) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        code = 0
        try:
            doc, text = handler(args)
        except CliError as e:
            print(f"coffre rebalance: error: {e}", file=sys.stderr)
            return 1
        except _Partial as e:
            doc, text, code = e.doc, e.text, 1
        print(json.dumps(doc, sort_keys=True) if args.json else text)
        return code

    return command


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--nodes", help="HOST:PORT,... of the nodes to ask")
    p.add_argument("--rings-dir", type=Path, help="ask every node named in these rings")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rebalance` and its subcommands to the `coffre` parser."""
    top = sub.add_parser("rebalance", help="plan, watch and steer data movement")
    cmds = top.add_subparsers(dest="rebalance_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("plan", help="what going from OLD to NEW ring moves, and how long")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--mbps", help="rate per node for the ETA (default: the nodes' throttle)")
    _common(p)
    p.set_defaults(func=_run(_plan))
    p = cmds.add_parser("status", help="progress per node and in total")
    p.add_argument("--watch", action="store_true", help="redraw every second until done")
    _common(p)
    p.set_defaults(func=_run(_status))
    for name, text in (("pause", "stop moving data (in-flight pieces finish)"),
                       ("resume", "move data again")):
        p = cmds.add_parser(name, help=text)
        _common(p)
        p.set_defaults(func=_run(_control(f"{wire.REBALANCE_PATH}/{name}")))
    p = cmds.add_parser("throttle", help="bandwidth per node (MB/s, 0 = unlimited)")
    p.add_argument("mbps", metavar="MBPS")
    p.add_argument("--concurrency", type=int, help="work units in flight per node")
    _common(p)
    p.set_defaults(func=_run(_control(f"{wire.REBALANCE_PATH}/throttle")))
    autofail.add_command(cmds)


def main(argv: list[str] | None = None) -> int:
    """Run `rebalance ...` without the `coffre` front (tests: python -m storage.rebalance_cli)."""
    parser = argparse.ArgumentParser(prog="coffre")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
