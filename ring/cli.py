"""`coffre ring ...`: the operator CLI that edits, rebalances, checks and publishes rings.

Rules: every command loads the ring file, computes, and writes it back atomically only when
the whole command succeeded, so bad input leaves the files as they were. Errors print one
line (`coffre ring: error: ...`) on stderr and exit 1; numbers are parsed here rather than by
argparse so that a bad number is a one-line error too. `--json` prints one JSON object on
stdout for scripts. The RING file holds the ring and its builder state (ring.ringfile), so
processes load the very file the CLI writes; `publish` pushes it to every node.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ring import publish as publisher
from ring import state as st
from ring.builder import rebalance
from ring.model import Device, Ring
from ring.plan import Plan, diff
from ring.ringfile import RingFileError, load, load_state, loads, save_state
from ring.validate import Finding, balance_table, ok, validate


class CliError(Exception):
    """A one-line error for the operator."""


Handler = Callable[[argparse.Namespace], Any]


def _run(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        try:
            result = handler(args)
        except (CliError, ValueError, RingFileError) as exc:
            print(f"coffre ring: error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"coffre ring: error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
            return 1
        doc, text, code = result
        if args.json:
            print(json.dumps(doc, sort_keys=True))
        else:
            print(text)
        return int(code)

    return command


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise CliError(f"{what} must be an integer, got {text!r}") from None


def _float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CliError(f"{what} must be a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise CliError(f"{what} must be a finite number")
    return value


def _device_json(dev: Device) -> dict[str, Any]:
    return {"id": dev.id, "addr": dev.addr, "weight": dev.weight, "domain": dev.domain}


def _findings_json(findings: tuple[Finding, ...]) -> list[dict[str, str]]:
    return [{"severity": f.severity.value, "check": f.check, "message": f.message}
            for f in findings]


def _findings_text(findings: tuple[Finding, ...]) -> str:
    if not findings:
        return "valid: no findings"
    return "\n".join(f"{f.severity.value}: {f.check}: {f.message}" for f in findings)


# -- edits ---------------------------------------------------------------------------------


def _create(args: argparse.Namespace) -> tuple[Any, str, int]:
    if os.path.exists(args.ring) and not args.force:
        raise CliError(f"{args.ring} exists (use --force to replace it)")
    moves = None if args.max_moves is None else _int(args.max_moves, "--max-moves")
    state = st.new_state(
        part_power=_int(args.part_power, "--part-power"),
        width=_int(args.width, "--width"),
        min_part_hours=_int(args.min_part_hours, "--min-part-hours"),
        seed=_int(args.seed, "--seed"),
        max_moves=moves,
    )
    save_state(state, args.ring)
    doc = {"ring": args.ring, "part_power": state.ring.part_power, "width": state.ring.width,
           "min_part_hours": state.min_part_hours, "max_moves": state.max_moves,
           "seed": state.seed}
    return doc, f"created {args.ring}: 2^{state.ring.part_power} partitions x {state.ring.width}", 0


def _edit(args: argparse.Namespace, change: Callable[[st.BuilderState], st.BuilderState],
          what: str) -> tuple[Any, str, int]:
    state = change(load_state(args.ring))
    save_state(state, args.ring)
    doc = {"ring": args.ring, "pending_devices": [_device_json(d) for d in state.devices],
           "dirty": state.dirty}
    return doc, f"{what}; run `coffre ring rebalance {args.ring}` to place it", 0


def _add(args: argparse.Namespace) -> tuple[Any, str, int]:
    dev = Device(_int(args.id, "--id"), args.addr, _float(args.weight, "--weight"), args.domain)
    return _edit(args, lambda s: st.add_device(s, dev), f"added device {dev.id}")


def _remove(args: argparse.Namespace) -> tuple[Any, str, int]:
    dev_id = _int(args.id, "--id")
    return _edit(args, lambda s: st.remove_device(s, dev_id), f"removed device {dev_id}")


def _fail(args: argparse.Namespace) -> tuple[Any, str, int]:
    dev_id = _int(args.id, "--id")
    return _edit(args, lambda s: st.fail_device(s, dev_id), f"marked device {dev_id} failed")


def _set_weight(args: argparse.Namespace) -> tuple[Any, str, int]:
    dev_id = _int(args.id, "--id")
    weight = _float(args.weight, "--weight")
    return _edit(args, lambda s: st.set_weight(s, dev_id, weight),
                 f"device {dev_id} weight set to {weight:g}")


# -- plans and checks ------------------------------------------------------------------------


def _slot_bytes(path: str | None) -> dict[int, int] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        return {int(k): int(v) for k, v in raw.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise CliError(f"{path}: expected a JSON object partition -> bytes ({exc})") from None


def _plan_text(plan: Plan) -> str:
    lines = [
        f"version {plan.old_version} -> {plan.new_version}: {plan.slots_moved} of "
        f"{plan.slots_total} slots move ({100 * plan.fraction_moved:.2f}%), "
        f"{plan.partitions_moved} partitions, at most {plan.most_moved_in_one_partition} "
        "slots in one partition"
    ]
    if plan.bytes_moved is not None:
        lines.append(f"bytes to move: {plan.bytes_moved}")
    for title, flows in (("device", plan.devices), ("zone", plan.zones)):
        lines.append(f"{title:<24} {'out':>8} {'in':>8}")
        lines += [f"{f.name:<24} {f.slots_out:>8} {f.slots_in:>8}" for f in flows]
    return "\n".join(lines)


def _rebalance(args: argparse.Namespace) -> tuple[Any, str, int]:
    state = load_state(args.ring)
    now = int(time.time()) if args.now is None else _int(args.now, "--now")
    result = rebalance(state, now)
    new_ring = result.state.ring
    plan = diff(state.ring, new_ring, _slot_bytes(args.partition_bytes))
    findings = validate(new_ring)
    if result.changed and not args.dry_run:
        save_state(result.state, args.ring)
    doc = plan.to_json() | {"changed": result.changed, "dry_run": args.dry_run,
                            "version": new_ring.version, "valid": ok(findings),
                            "findings": _findings_json(findings)}
    head = "dry run, nothing written" if args.dry_run else (
        f"wrote {args.ring} version {new_ring.version}" if result.changed else "nothing to do")
    return doc, f"{head}\n{_plan_text(plan)}\n{_findings_text(findings)}", 0


def _show(args: argparse.Namespace) -> tuple[Any, str, int]:
    state = load_state(args.ring)
    ring = state.ring
    rows = balance_table(ring)
    devices = {d.id: d for d in ring.devices}
    table = [_device_json(devices[r.id]) | {
        "zone": r.zone, "slots": r.slots, "share_slots": r.share_slots,
        "target_slots": r.target_slots, "over_percent": r.over_percent} for r in rows]
    w = ring.width
    doc = {
        "version": ring.version, "part_power": ring.part_power, "width": w,
        "min_part_hours": state.min_part_hours, "max_moves": state.max_moves,
        "seed": state.seed, "devices": table,
        "assignment": [list(ring.assignment[p * w:(p + 1) * w]) for p in range(
            ring.partitions if ring.built else 0)],
        "previous_partitions": len(ring.previous),
        "pending_devices": [_device_json(d) for d in state.devices], "dirty": state.dirty,
    }
    return doc, _show_text(state, table), 0


def _show_text(state: st.BuilderState, table: list[dict[str, Any]]) -> str:
    ring = state.ring
    lines = [f"version {ring.version}: 2^{ring.part_power} partitions x {ring.width} slots, "
             f"min_part_hours {state.min_part_hours}, max moves {state.max_moves}",
             f"{'id':>5} {'zone':<20} {'weight':>8} {'slots':>8} {'over %':>8}"]
    lines += [f"{r['id']:>5} {r['zone']:<20} {r['weight']:>8g} {r['slots']:>8} "
              f"{r['over_percent']:>+8.2f}" for r in table]
    if state.dirty:
        lines.append("pending changes: run rebalance")
    return "\n".join(lines)


def _validate(args: argparse.Namespace) -> tuple[Any, str, int]:
    findings = validate(load(args.ring))
    valid = ok(findings)
    doc = {"valid": valid, "findings": _findings_json(findings)}
    return doc, _findings_text(findings), 0 if valid else 1


def _diff(args: argparse.Namespace) -> tuple[Any, str, int]:
    plan = diff(load(args.old), load(args.new), _slot_bytes(args.partition_bytes))
    return plan.to_json(), _plan_text(plan), 0


def _publish(args: argparse.Namespace) -> tuple[Any, str, int]:
    with open(args.ring, "rb") as f:
        data = f.read()
    ring = _loaded_for_publish(data)
    name = args.name or os.path.basename(args.ring)
    timeout = _float(args.timeout, "--timeout")
    addrs = sorted(set(_publish_addrs(ring)) | set(args.to or []))
    results = publisher.publish(data, name, addrs, timeout)
    failed = [r for r in results if not r.ok]
    doc = {"name": name, "version": ring.version,
           "nodes": [{"addr": r.addr, "ok": r.ok, "detail": r.detail} for r in results]}
    text = "\n".join(f"{r.addr}: {'ok' if r.ok else 'FAILED ' + r.detail}" for r in results)
    return doc, text, 1 if failed else 0


def _loaded_for_publish(data: bytes) -> Ring:
    ring = loads(data)
    if not ring.built:
        raise CliError("the ring has never been rebalanced; nothing to publish")
    return ring


def _publish_addrs(ring: Ring) -> list[str]:
    # Nodes of retired devices still serve old data and must learn they no longer own it.
    return sorted({d.addr for d in (*ring.devices, *ring.retired)})


# -- parser ----------------------------------------------------------------------------------


def _parser(sub: Any, name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run(handler))
    return p


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `ring` and its subcommands to the `coffre` parser."""
    top = sub.add_parser("ring", help="edit, rebalance, check and publish rings")
    cmds = top.add_subparsers(dest="ring_command", required=True, metavar="COMMAND")
    p = _parser(cmds, "create", _create, "create an empty ring file")
    p.add_argument("ring")
    p.add_argument("--part-power", required=True)
    p.add_argument("--width", required=True)
    p.add_argument("--min-part-hours", default="1")
    p.add_argument("--seed", default="0")
    p.add_argument("--max-moves", help="slots of a partition one rebalance may move (m)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p = _parser(cmds, "add", _add, "add a device (placed at the next rebalance)")
    p.add_argument("ring")
    p.add_argument("--id", required=True)
    p.add_argument("--addr", required=True, help="HOST:PORT of the node serving it")
    p.add_argument("--domain", required=True, help="REGION/ZONE/NODE/DEVICE")
    p.add_argument("--weight", required=True)
    for name, handler, text in (("remove", _remove, "remove a device (its data moves away)"),
                                ("fail", _fail, "mark a device gone (its data is lost)")):
        p = _parser(cmds, name, handler, text)
        p.add_argument("ring")
        p.add_argument("--id", required=True)
    p = _parser(cmds, "set-weight", _set_weight, "change a device's weight")
    p.add_argument("ring")
    p.add_argument("--id", required=True)
    p.add_argument("--weight", required=True)
    p = _parser(cmds, "rebalance", _rebalance, "place pending changes, print the plan")
    p.add_argument("ring")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--now", help="epoch seconds (default: the clock)")
    p.add_argument("--partition-bytes", help="JSON {partition: bytes per slot} from the nodes")
    for name, handler, text in (("show", _show, "print the balance table"),
                                ("validate", _validate, "check the ring, exit 1 if unfit")):
        p = _parser(cmds, name, handler, text)
        p.add_argument("ring")
    p = _parser(cmds, "diff", _diff, "print what going from OLD to NEW moves")
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--partition-bytes", help="JSON {partition: bytes per slot} from the nodes")
    p = _parser(cmds, "publish", _publish, "push the ring file to every node's admin API")
    p.add_argument("ring")
    p.add_argument("--name", help="ring name on the nodes (default: the file's name)")
    p.add_argument("--timeout", default="10", help="seconds per node")
    p.add_argument("--to", action="append", metavar="HOST:PORT",
                   help="also push to this admin endpoint (a gateway); repeatable")


def main(argv: list[str] | None = None) -> int:
    """Run `ring ...` without the `coffre` front (tests, or `python -m ring.cli`)."""
    parser = argparse.ArgumentParser(prog="coffre")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
