"""`coffre status [--json]`: the whole cluster on one screen.

It reads the published rings (the config's rings directory) to learn every node and device,
asks each node's /admin/info and each gateway's admin /admin/info at once (each bounded by
--timeout-s), and prints nodes, devices (up/down, used/free, fragments, repair queue), the ring
versions each process runs, and warnings: a node unreachable, a device failed or missing or
near full, a process on a ring version other than the published one.
Rules: fetching (`collect`) is apart from judging (`build_report`, pure) and from printing
(`render_text`, `to_json`), so tests feed the judge canned answers. Exit code 0 when there is
no warning, 1 otherwise: scripts and cron can alert on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

import aiohttp

from gateway import config as config_mod
from ring.model import Ring
from ring.ringset import RingSet

near_full_fraction_min = 0.10  # warn when a device has less than this fraction free
status_timeout_s = 2.0         # default bound on each process's answer

Info = dict[str, Any]


class Health(Enum):
    UP = "up"
    DOWN = "down"        # the process did not answer
    FAILED = "failed"    # the node answers but marks the device failed
    MISSING = "missing"  # in the ring, but the node does not report it


@dataclass(frozen=True)
class ProcessStatus:
    kind: str            # "node" or "gateway"
    addr: str
    health: Health
    error: str
    rings: dict[str, int]  # ring file name -> version this process holds/runs


@dataclass(frozen=True)
class DeviceStatus:
    id: int
    addr: str
    domain: str
    health: Health
    used_bytes: int
    free_bytes: int
    fragments: int
    meta_records: int
    repair_jobs: int


@dataclass(frozen=True)
class Report:
    rings: dict[str, int]  # published ring versions
    processes: tuple[ProcessStatus, ...]
    devices: tuple[DeviceStatus, ...]
    warnings: tuple[str, ...]


# -- judging (pure) ----------------------------------------------------------------------
def _device_of(info: Info | None, dev_id: int) -> Info | None:
    for dev in (info or {}).get("devices", []):
        if isinstance(dev, dict) and dev.get("id") == dev_id:
            return dev
    return None


def _int(dev: Info | None, field: str) -> int:
    value = (dev or {}).get(field)
    return value if isinstance(value, int) else 0


def _node_rings(info: Info | None) -> dict[str, int]:
    rings = (info or {}).get("rings", {})
    out = {}
    for name, ring in rings.items() if isinstance(rings, dict) else ():
        version = ring.get("version") if isinstance(ring, dict) else ring
        if isinstance(version, int):
            out[name] = version
    return out


def _device_status(ring_dev: Any, info: Info | None) -> DeviceStatus:
    dev = _device_of(info, ring_dev.id)
    if info is None:
        health = Health.DOWN
    elif dev is None:
        health = Health.MISSING
    else:
        health = Health.FAILED if dev.get("failed") else Health.UP
    return DeviceStatus(ring_dev.id, ring_dev.addr, ring_dev.domain, health,
                        _int(dev, "used_bytes"), _int(dev, "free_bytes"),
                        _int(dev, "fragments"), _int(dev, "meta_records"),
                        _int(dev, "repair_jobs"))


def _device_warnings(d: DeviceStatus) -> list[str]:
    if d.health is Health.FAILED:
        return [f"device {d.id} on {d.addr} failed"]
    if d.health is Health.MISSING:
        return [f"device {d.id} is in the ring but {d.addr} does not serve it"]
    total = d.used_bytes + d.free_bytes
    if d.health is Health.UP and total and d.free_bytes < near_full_fraction_min * total:
        return [f"device {d.id} on {d.addr} is near full ({d.free_bytes} bytes free)"]
    return []


def _ring_warnings(p: ProcessStatus, published: Mapping[str, int]) -> list[str]:
    out = []
    for name, version in sorted(published.items()):
        held = p.rings.get(name)
        if held is None:
            out.append(f"{p.kind} {p.addr} has no {name} (published version {version})")
        elif held != version:
            out.append(f"{p.kind} {p.addr} runs {name} version {held}, published {version}")
    return out


def build_report(rings: Mapping[str, Ring], node_infos: Mapping[str, Info | None],
                 gateway_infos: Mapping[str, Info | None],
                 errors: Mapping[str, str]) -> Report:
    """Judge the answers: `*_infos` map an address to its /admin/info (None: no answer),
    `errors` an address to why it did not answer."""
    published = {name: ring.version for name, ring in sorted(rings.items())}
    ring_devs = {d.id: d for ring in rings.values() for d in ring.devices}
    devices = tuple(_device_status(d, node_infos.get(d.addr))
                    for _, d in sorted(ring_devs.items()))
    processes = [
        ProcessStatus("node", addr, Health.DOWN if info is None else Health.UP,
                      errors.get(addr, ""), _node_rings(info))
        for addr, info in sorted(node_infos.items())
    ] + [
        ProcessStatus("gateway", addr, Health.DOWN if info is None else Health.UP,
                      errors.get(addr, ""), _node_rings(info))
        for addr, info in sorted(gateway_infos.items())
    ]
    warnings = [f"{p.kind} {p.addr} unreachable: {p.error}" for p in processes
                if p.health is Health.DOWN]
    for d in devices:
        warnings += _device_warnings(d)
    for p in processes:
        if p.health is Health.UP:
            warnings += _ring_warnings(p, published)
    return Report(published, tuple(processes), devices, tuple(warnings))


# -- printing ----------------------------------------------------------------------------
def to_json(report: Report) -> str:
    def plain(obj: Any) -> Any:
        return obj.value if isinstance(obj, Enum) else str(obj)

    return json.dumps(asdict(report), default=plain, indent=2)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def render_text(report: Report) -> str:
    rings = ", ".join(f"{n} v{v}" for n, v in report.rings.items()) or "none"
    lines = [f"rings published: {rings}", "", "PROCESS  ADDRESS                STATE  RINGS"]
    for p in report.processes:
        held = ", ".join(f"{n} v{v}" for n, v in sorted(p.rings.items())) or "-"
        lines.append(f"{p.kind:<8} {p.addr:<22} {p.health.value:<6} {held}")
    lines += ["", "DEVICE  NODE                   DOMAIN              STATE    USED       "
              "FREE       FRAGMENTS  META  REPAIR"]
    for d in report.devices:
        lines.append(f"{d.id:<7} {d.addr:<22} {d.domain:<19} {d.health.value:<8} "
                     f"{_size(d.used_bytes):<10} {_size(d.free_bytes):<10} "
                     f"{d.fragments:<10} {d.meta_records:<5} {d.repair_jobs}")
    lines += ["", f"warnings: {len(report.warnings)}"]
    lines += [f"  ! {w}" for w in report.warnings]
    return "\n".join(lines)


# -- fetching ----------------------------------------------------------------------------
async def _fetch(session: aiohttp.ClientSession, addr: str, path: str
                 ) -> tuple[Info | None, str]:
    try:
        async with session.get(f"http://{addr}{path}") as resp:
            if resp.status != 200:
                return None, f"HTTP {resp.status}"
            body = await resp.json(content_type=None)
            return (body, "") if isinstance(body, dict) else (None, "not a JSON object")
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}".rstrip(": ")


async def collect(node_addrs: list[str], gateway_addrs: list[str], timeout_s: float
                  ) -> tuple[dict[str, Info | None], dict[str, Info | None], dict[str, str]]:
    """Ask every process at once; a silent one costs at most timeout_s."""
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        targets = [(a, "node") for a in node_addrs] + [(a, "gateway") for a in gateway_addrs]
        answers = await asyncio.gather(*(_fetch(session, a, "/admin/info")
                                         for a, _ in targets))
    nodes: dict[str, Info | None] = {}
    gateways: dict[str, Info | None] = {}
    errors: dict[str, str] = {}
    for (addr, kind), (info, error) in zip(targets, answers, strict=True):
        (nodes if kind == "node" else gateways)[addr] = info
        if error:
            errors[addr] = error
    return nodes, gateways, errors


def load_rings(rings_dir: str) -> dict[str, Ring]:
    ringset = RingSet(rings_dir)
    out = {}
    for name in ringset.versions():
        out[name] = ringset.meta if name == "meta.ring" else ringset.data(
            int(name.removeprefix("data-").removesuffix(".ring")))
    return out


def status_command(args: argparse.Namespace) -> int:
    cfg = config_mod.load(args.config, args.data)
    rings = load_rings(str(cfg.rings_dir))
    node_addrs = sorted({d.addr for ring in rings.values() for d in ring.devices})
    gateways = args.gateway_admin or ([cfg.admin_listen] if cfg.admin_listen else [])
    nodes, gws, errors = asyncio.run(collect(node_addrs, gateways, args.timeout_s))
    report = build_report(rings, nodes, gws, errors)
    print(to_json(report) if args.json else render_text(report))
    return 1 if report.warnings else 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser("status", help="every node, device and ring version at a glance")
    status.add_argument("--config", default="conf/local.toml")
    status.add_argument("--data", default=None, help="data root (default: COFFRE_DATA/config)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--gateway-admin", action="append", metavar="HOST:PORT",
                        help="a gateway's admin address; repeatable (default from config)")
    status.add_argument("--timeout-s", type=float, default=status_timeout_s,
                        help="how long to wait for each process")
    status.set_defaults(func=status_command)


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.status status ...`: the same command without the coffre front."""
    parser = argparse.ArgumentParser(prog="python -m gateway.status")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
