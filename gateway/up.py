"""`coffre up`: a whole local cluster (storage nodes + a gateway) from one config file.

`prepare` lays out the data root (device directories, rings, admin credentials) the first
time and leaves it alone afterwards, so a second start finds the data as it was.
`process_specs` says which processes make up the cluster; `coffre up` and the cluster tests
both start exactly these.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.credentials import AccessKey, ensure
from gateway.tenants import ensure_master_key
from ring import ringfile
from ring.builder import build_ring
from ring.model import Device


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: list[str]
    port: int               # 0: listens nowhere (the auto-fail watcher)


def node_dir(config: Config, node: int) -> Path:
    return config.data_root / "nodes" / f"n{node}"


def devices(config: Config) -> list[Device]:
    layout = config.nodes
    out = []
    for n in range(layout.count):
        for d in range(layout.devices_per_node):
            out.append(Device(
                id=n * layout.devices_per_node + d,
                addr=f"127.0.0.1:{layout.first_port + n}",
                weight=1.0,
                domain=f"local/z1/n{n}/d{d}",
            ))
    return out


def prepare(config: Config) -> AccessKey:
    """Create device directories, rings and credentials that do not exist yet."""
    devs = devices(config)
    for n in range(config.nodes.count):
        for d in range(config.nodes.devices_per_node):
            (node_dir(config, n) / f"d{d}").mkdir(parents=True, exist_ok=True)
    config.rings_dir.mkdir(parents=True, exist_ok=True)
    widths = {p.width for p in config.all_policies if p.width <= len(devs)}
    for width in sorted(widths):
        _ensure_ring(config.rings_dir / f"data-{width}.ring", devs, config.part_power, width)
    _ensure_ring(config.rings_dir / "meta.ring", devs, config.part_power,
                 min(config.meta_replicas, len(devs)))
    # The key that seals access key secrets in the metadata store (0600). The gateway
    # writes the admin tenant and this admin key into the store when it first starts.
    ensure_master_key(config.data_root)
    host, port = config.listen.rsplit(":", 1)
    return ensure(config.credentials_path, f"http://{host}:{port}", config.region)


def _ensure_ring(path: Path, devs: list[Device], part_power: int, width: int) -> None:
    if not path.exists():
        ringfile.save(build_ring(devs, part_power, width, seed=0), path)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", *args]


def process_specs(config: Config, config_path: str) -> list[ProcessSpec]:
    specs = []
    layout = config.nodes
    for n in range(layout.count):
        port = layout.first_port + n
        argv = ["node", "serve", "--listen", f"127.0.0.1:{port}",
                "--rings-dir", str(config.rings_dir)]
        for d in range(layout.devices_per_node):
            dev_id = n * layout.devices_per_node + d
            argv += ["--device", f"{dev_id}={node_dir(config, n) / f'd{d}'}"]
        if layout.capacity_bytes:
            argv += ["--capacity-bytes", str(layout.capacity_bytes)]
        argv += ["--orphan-grace-s", str(layout.orphan_grace_s)]
        specs.append(ProcessSpec(f"node{n}", _cli(*argv), port))
    _host, port_text = config.listen.rsplit(":", 1)
    for w in range(config.workers):
        name = "gateway" if w == 0 else f"gateway{w + 1}"
        specs.append(ProcessSpec(name, _cli("gateway", "--config", config_path,
                                            "--data", str(config.data_root),
                                            "--listen", config.listen), int(port_text)))
    if config.auto_fail_after_s > 0:
        specs.append(ProcessSpec("autofail", _cli(
            "rebalance", "auto-fail", "--rings-dir", str(config.rings_dir),
            "--after-s", str(config.auto_fail_after_s)), 0))
    return specs


START_WAIT_S = 600.0     # how long `coffre up` waits for each process to listen


def wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout_s} s")


def stop_all(procs: list[subprocess.Popen[bytes]], grace_s: float = 10.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run(config: Config, config_path: str) -> int:
    key = prepare(config)
    procs: list[subprocess.Popen[bytes]] = []
    specs = process_specs(config, config_path)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for spec in specs:
            # Own process group: a Ctrl-C reaches us, and we stop the children in order.
            proc = subprocess.Popen(spec.argv, start_new_session=True)
            procs.append(proc)
            if spec.port:
                # A node listens once its devices are open, which after an upgrade may mean
                # computing index digests over every record (seconds per million): wait
                # long; a process that dies is noticed at once anyway.
                wait_port(spec.port, START_WAIT_S, proc)
        print(_banner(config, key), flush=True)
        while not stopping:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                print(f"coffre up: a process exited ({dead[0].args!r}); stopping", flush=True)
                return 1
            time.sleep(0.2)
        return 0
    finally:
        # Gateways first: what they still hold (access log lines) is written to the nodes.
        gateways = [p for p, s in zip(procs, specs, strict=False) if s.name.startswith("gateway")]
        stop_all(gateways)
        stop_all([p for p in procs if p not in gateways])
        print("coffre up: stopped", flush=True)


def _banner(config: Config, key: AccessKey) -> str:
    return (
        f"Coffre is up: {config.nodes.count} storage nodes, data in {config.data_root}\n"
        f"  endpoint    http://{config.listen}\n  region      {config.region}\n"
        + (f"  admin       http://{config.admin_listen}/metrics (and /health/ready)\n"
           if config.admin_listen else "")
        + f"  access key  {key.access_key}\n  secret key  {key.secret_key}\n"
        f"  (also in {config.credentials_path}); Ctrl-C stops the cluster."
    )
