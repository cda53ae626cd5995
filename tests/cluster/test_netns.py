"""Coffre across real (virtual) hosts: the 3 hosts x 2 devices deployment of
conf/cluster-3x2.toml, bootstrapped as the README's "Deploying on several hosts" section says,
in network namespaces (issue 11); then network faults under a mixed workload (issue 12).

Deployment. Each host is a namespace (tests/cluster/netns.py) with its own data root, device
directories and a copy of the example config, in which only the hosts' addresses and device
paths are the test's. The operator side (this process, in the root namespace) builds the
rings with `coffre ring create/add/rebalance`, starts one node per host on <host>:9101,
publishes the rings to the nodes (each node writes them where its host's gateway reads them),
copies one credentials.toml and master key to every host, starts a gateway on every host
(0.0.0.0:9000, admin port on the host's own loopback), waits for /health/ready on each host,
creates a tenant and its key with `coffre admin` and runs `coffre status` on a host.

Faults. The workload and its checks are test_faults.py's (`Worker`, `verify`): each worker
owns its keys, the model knows which values a key may hold, and a request may fail only with
a retryable error, and only when too many fragments' holders were unreachable during it. Here
one host is "down" for the model while its link is cut or it is partitioned off: its two
devices count as two of the m = 2 tolerated, and clients use the other hosts' gateways (what
a load balancer's health check does). The example's write_quorum_extra = 0 lets a PUT
succeed with 4 of 6 fragments, so a host off should fail no request; the model still
tolerates a retryable 503 on large PUTs then (as with write_quorum_extra = 1). A host under
delay and loss is not down: nothing may fail. Seeds are printed; COFFRE_NETNS_SEED replays
fault and operation choices; COFFRE_NETNS_KEEP=1 keeps the hosts' directories (config,
logs, devices) after the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from botocore.config import Config as BotoConfig

from gateway.cli import main as coffre
from gateway.tenants import MASTER_KEY_FILE
from tests.cluster.harness import Cluster
from tests.cluster.netns import NetnsUnavailable, Network, network, relay_counts, wait_tcp
from tests.cluster.test_faults import TABLE, Faults, Worker, print_table, verify

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "conf" / "cluster-3x2.toml"
SEED = int(os.environ.get("COFFRE_NETNS_SEED", random.randrange(1 << 30)))
NODE_PORT, S3_PORT, ADMIN_PORT = 9101, 9000, 10000      # as in the example config
START_S = 60.0                  # a process listens / a gateway is ready within this
# The long run's fault lengths, in units of the short run's (4: the cut lasts 40 s, longer
# than the gateways' 30 s node timeout).
LONG_SCALE = float(os.environ.get("COFFRE_NETNS_LONG_SCALE", "4"))


# ---------------------------------------------------------------- the deployment


@dataclass(frozen=True)
class DevicePlan:
    id: int
    dirname: str        # last part of the example's path (/srv/coffre/d0 -> d0)
    domain: str


@dataclass(frozen=True)
class HostPlan:
    name: str
    example_addr: str   # the example's address, replaced by the test host's
    devices: tuple[DevicePlan, ...]


def host_plans() -> list[HostPlan]:
    raw = tomllib.loads(EXAMPLE.read_text())
    return [HostPlan(h["name"], h["node"].rsplit(":", 1)[0],
                     tuple(DevicePlan(d["id"], Path(d["path"]).name, d["domain"])
                           for d in h["devices"]))
            for h in raw["hosts"]]


def run_coffre(*argv: str) -> str:
    """One `coffre` command in this process (the operator's machine); its stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = coffre(list(argv))
    assert code == 0, (argv, out.getvalue())
    return out.getvalue()


def _python(*argv: str) -> list[str]:
    return [sys.executable, "-m", "gateway.cli", "--log-format", "json", *argv]


@dataclass
class Deployment:
    net: Network
    root: Path
    plans: list[HostPlan]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    access_key: str = ""
    secret_key: str = ""

    def addr(self, host: str) -> str:
        return self.net.hosts[host].addr

    def host_root(self, host: str) -> Path:
        return self.root / f"host-{host}"

    @property
    def admin_root(self) -> Path:
        return self.root / "admin"

    def config_path(self, host: str) -> Path:
        return self.host_root(host) / "cluster.toml"

    def devices_of(self, host: str) -> frozenset[str]:
        """The model's names for a host's devices: each holds one fragment of an object."""
        plan = next(p for p in self.plans if p.name == host)
        return frozenset(f"{host}/{d.dirname}" for d in plan.devices)

    def node_names(self) -> list[str]:
        return sorted(n for p in self.plans for n in self.devices_of(p.name))

    def client(self, host: str) -> Any:
        return boto3.client(
            "s3", endpoint_url=f"http://{self.addr(host)}:{S3_PORT}", region_name="us-east-1",
            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                              connect_timeout=5, read_timeout=90))

    def s3(self) -> Any:
        return self.client(self.plans[0].name)

    def crashed(self) -> list[str]:
        return [f"{n} exited {p.returncode}" for n, p in self.procs.items()
                if p.poll() is not None]


def write_host_files(d: Deployment, host: HostPlan) -> None:
    """The host's copy of the example config (its addresses) and its device directories."""
    text = EXAMPLE.read_text()
    for other in d.plans:
        text = text.replace(other.example_addr, d.addr(other.name))
    root = d.host_root(host.name)
    (root / "data").mkdir(parents=True)
    text = text.replace('"/srv/coffre/', f'"{root}/srv/')
    d.config_path(host.name).write_text(text)
    for dev in host.devices:
        (root / "srv" / dev.dirname).mkdir(parents=True)


def build_rings(d: Deployment) -> list[Path]:
    """README step 2: one ring per width the config needs, every device in each."""
    raw = tomllib.loads(EXAMPLE.read_text())["cluster"]
    widths = {"meta.ring": raw["meta_replicas"], "data-6.ring": 6, "data-3.ring": 3}
    rings = d.admin_root / "rings"
    rings.mkdir(parents=True)
    paths = []
    for name, width in widths.items():
        path = str(rings / name)
        run_coffre("ring", "create", path, "--part-power", str(raw["part_power"]),
                   "--width", str(width))
        for host in d.plans:
            for dev in host.devices:
                run_coffre("ring", "add", path, "--id", str(dev.id), "--domain", dev.domain,
                           "--addr", f"{d.addr(host.name)}:{NODE_PORT}", "--weight", "1")
        run_coffre("ring", "rebalance", path)
        paths.append(Path(path))
    return paths


def start_node(d: Deployment, host: HostPlan) -> None:
    root = d.host_root(host.name)
    argv = ["node", "serve", "--listen", f"{d.addr(host.name)}:{NODE_PORT}",
            "--rings-dir", str(root / "data" / "rings")]
    for dev in host.devices:
        argv += ["--device", f"{dev.id}={root / 'srv' / dev.dirname}"]
    d.procs[f"node-{host.name}"] = d.net.spawn(host.name, _python(*argv), root / "node.log")


def start_gateway(d: Deployment, host: str) -> None:
    root = d.host_root(host)
    d.procs[f"gw-{host}"] = d.net.spawn(
        host, _python("gateway", "--config", str(d.config_path(host)), "--data",
                      str(root / "data")), root / "gateway.log")


def wait_ready(d: Deployment, host: str) -> None:
    """README step 4's health check, run on the host itself (the admin port is loopback)."""
    probe = ("import sys, urllib.request\ntry:\n    urllib.request.urlopen("
             f"'http://127.0.0.1:{ADMIN_PORT}/health/ready', timeout=2)\n"
             "except Exception as exc:\n    sys.exit(str(exc))\n")
    deadline = time.monotonic() + START_S
    while True:
        done = d.net.run_in(host, [sys.executable, "-c", probe])
        if done.returncode == 0:
            return
        assert time.monotonic() < deadline, f"gateway on {host} not ready: {done.stderr}"
        time.sleep(0.5)


def share_credentials(d: Deployment) -> None:
    """README step 4: one admin key and one master key, the same on every host."""
    run_coffre("admin", "init", "--config", str(EXAMPLE), "--data", str(d.admin_root))
    for host in d.plans:
        for name in ("credentials.toml", MASTER_KEY_FILE):
            target = d.host_root(host.name) / "data" / name
            shutil.copy2(d.admin_root / name, target)
            target.chmod(0o600)


def create_tenant(d: Deployment) -> None:
    """README step 5: a tenant and its key, made from the operator's machine."""
    common = ["--config", str(d.config_path(d.plans[0].name)), "--data", str(d.admin_root),
              "--json"]
    run_coffre("admin", "tenant", "create", "ministry", *common)
    key = json.loads(run_coffre("admin", "key", "create", "--tenant", "ministry", *common))
    d.access_key, d.secret_key = key["access_key"], key["secret_key"]
    deadline = time.monotonic() + START_S       # gateways learn new keys within seconds
    for host in d.plans:
        while True:
            try:
                d.client(host.name).list_buckets()
                break
            except Exception:
                assert time.monotonic() < deadline, f"key unknown to the gateway on {host}"
                time.sleep(0.5)


def deploy(net: Network, root: Path) -> Deployment:
    d = Deployment(net, root, host_plans())
    for host in d.plans:
        write_host_files(d, host)
    rings = build_rings(d)
    for host in d.plans:
        start_node(d, host)
    for host in d.plans:
        wait_tcp(d.addr(host.name), NODE_PORT, START_S, d.procs[f"node-{host.name}"])
    for ring in rings:                                      # README step 3
        run_coffre("ring", "publish", str(ring))
    share_credentials(d)
    for host in d.plans:
        start_gateway(d, host.name)
    for host in d.plans:
        wait_tcp(d.addr(host.name), S3_PORT, START_S, d.procs[f"gw-{host.name}"])
        wait_ready(d, host.name)
    create_tenant(d)
    return d


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="coffre-netns-"))
    try:
        with network([p.name for p in host_plans()]) as net:
            yield deploy(net, root)
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")
    finally:
        if os.environ.get("COFFRE_NETNS_KEEP"):        # the processes' logs, for a post-mortem
            print(f"deployment kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _connects(net: Network, src: str | None, dst: str, timeout_s: float = 0.5) -> float | None:
    """Seconds a TCP connect from host `src` (None: here, the root side) to host `dst`'s
    port 7000 took, or None when it failed."""
    addr = net.hosts[dst].addr
    if src is None:
        started = time.monotonic()
        try:
            socket.create_connection((addr, 7000), timeout_s).close()
        except OSError:
            return None
        return time.monotonic() - started
    probe = (f"import socket\nsocket.create_connection(({addr!r}, 7000), {timeout_s})\n")
    done = net.run_in(src, [sys.executable, "-c", probe])
    return 0.0 if done.returncode == 0 else None


@pytest.fixture
def two_hosts() -> Iterator[Network]:
    try:
        with network(["a", "b"]) as net:
            yield net
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces unavailable: {exc}")


def test_network_faults_primitives(two_hosts: Network, tmp_path: Path) -> None:
    """The library on two hosts: cut, partition and impair do what they say, restore undoes
    them, and teardown leaves no namespace or device behind."""
    net = two_hosts
    for host in net.hosts:
        proc = net.spawn(host, [sys.executable, "-m", "http.server", "7000"],
                         tmp_path / f"{host}.log")
        wait_tcp(net.hosts[host].addr, 7000, START_S, proc)
    assert _connects(net, "a", "b") is not None
    net.cut("b")
    assert _connects(net, None, "b") is None and _connects(net, None, "a") is not None
    net.restore("b")
    assert _connects(net, None, "b") is not None
    net.partition(["b"])
    assert _connects(net, "a", "b") is None and _connects(net, None, "a") is not None
    net.restore("b")
    net.impair("b", delay_ms=60, loss_percent=0, seed=SEED)
    rtt = _connects(net, None, "b", timeout_s=10)
    assert rtt is not None and rtt >= 0.12        # SYN and SYN-ACK each held 60 ms
    net.impair("b", delay_ms=0, loss_percent=30, seed=SEED)
    # Moving the port flushed our ARP entry for b: resolve it again through the loss
    # (an ARP exchange fails half the time at 30 % each way, and the kernel gives up
    # after 3 tries, so try a few connections).
    assert any(_connects(net, None, "b", timeout_s=10) is not None for _ in range(10))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(200):                      # each crosses the relay (or not)
            udp.sendto(b"x", (net.hosts["b"].addr, 7001))
            time.sleep(0.002)     # not faster than the neighbour (ARP) queue takes them
    time.sleep(0.2)
    net.restore("b")
    relayed, dropped = relay_counts(net.relay_reports["b"])
    print("relay at 30 % loss:", net.relay_reports["b"])
    assert relayed > 50 and dropped > 10
    assert _connects(net, None, "b") is not None
    assert net.teardown() == []         # the fixture's teardown then finds nothing


def test_deployment_across_hosts(deployment: Deployment) -> None:
    """Issue 11: the example layout works across hosts: every node got every ring, each
    host's `coffre status` has no warning, an object written through one host's gateway
    reads through the others', and its 6 fragments sit on 6 devices of 3 hosts."""
    d = deployment
    for host in d.plans:
        rings = {p.name for p in (d.host_root(host.name) / "data" / "rings").iterdir()}
        assert {"meta.ring", "data-6.ring", "data-3.ring"} <= rings, (host.name, rings)
    first = d.plans[0].name
    status = d.net.run_in(first, _python(
        "status", "--config", str(d.config_path(first)), "--data",
        str(d.host_root(first) / "data"), "--json"))
    assert status.returncode == 0, status.stdout + status.stderr
    body = random.Random(SEED).randbytes(3 << 20)
    d.client(first).create_bucket(Bucket="spread")
    d.client(first).put_object(Bucket="spread", Key="k", Body=body)
    for host in d.plans:
        assert d.client(host.name).get_object(Bucket="spread", Key="k")["Body"].read() == body
    holders = [dev for host in d.plans for dev in host.devices
               if _segment_bytes(d.host_root(host.name) / "srv" / dev.dirname) > 500_000]
    assert len(holders) == 6, holders       # one ~768 KiB fragment on every device


def _segment_bytes(device: Path) -> int:
    return sum(p.stat().st_size for p in device.rglob("*.seg"))


# ---------------------------------------------------------------- faults


class HostFaults(Faults):
    """The checker's fault history, in hosts: a host off the network takes its devices
    (its fragments) and its gateway with it."""

    def __init__(self, d: Deployment, rnd: random.Random) -> None:
        # The checker needs only node_names() and s3() of its cluster: the deployment has both.
        super().__init__(cast(Cluster, d), rnd, gateway="")
        self.deployment = d

    def host_off(self, host: str) -> None:
        self._record(set(self.deployment.devices_of(host)), {f"gw-{host}"})

    def all_on(self) -> None:
        self._record(set(), set())


@dataclass(frozen=True)
class Phase:
    label: str
    apply: Callable[[Network, str], None]
    takes_host_off: bool           # for the model: is the host unreachable during it?
    hold_s: float


def phases(scale: float) -> list[Phase]:
    def impair(net: Network, host: str) -> None:
        net.impair(host, delay_ms=50, loss_percent=2, seed=SEED)

    def isolate(net: Network, host: str) -> None:
        net.partition([host])

    return [Phase("delay 50 ms + loss 2 % on one host", impair, False, 5 * scale),
            Phase("one host's link cut, then restored", Network.cut, True, 10 * scale),
            Phase("one host partitioned from the others", isolate, True, 5 * scale)]


def run_phase(d: Deployment, faults: HostFaults, every: list[Worker], phase: Phase,
              workers_count: int) -> None:
    victim = faults.rnd.choice([p.name for p in d.plans])
    gateways = [p.name for p in d.plans if not (phase.takes_host_off and p.name == victim)]
    first = len(every)
    workers = [Worker(first + i, faults, {f"gw-{g}": d.client(g) for g in gateways},
                      random.Random(SEED + 1 + first + i)) for i in range(workers_count)]
    every += workers
    print(f"{phase.label}: seed {SEED}, host {victim}, gateways {gateways}")
    lead_s, tail_s = 1.0, 2.0       # traffic before the fault, and after the repair
    until = time.monotonic() + lead_s + phase.hold_s + tail_s
    threads = [threading.Thread(target=w.run, args=(until,)) for w in workers]
    for t in threads:
        t.start()
    time.sleep(lead_s)
    if phase.takes_host_off:
        faults.host_off(victim)      # counts as off from just before the fault on
    phase.apply(d.net, victim)
    time.sleep(phase.hold_s)
    d.net.restore(victim)
    faults.all_on()                  # on again once the link is back
    for t in threads:
        t.join()
    report_phase(d, every, workers, phase, victim)


def report_phase(d: Deployment, every: list[Worker], workers: list[Worker], phase: Phase,
                 victim: str) -> None:
    crashes = d.crashed()
    lost, checked = verify(cast(Cluster, d), every)   # all phases' keys so far
    counts: dict[str, int] = {}
    for w in workers:
        for k, v in w.counts.items():
            counts[k] = counts.get(k, 0) + v
    tried = sum(v for k, v in counts.items() if " " not in k)
    failed = sum(v for k, v in counts.items() if " " in k)
    relay = d.net.relay_reports.get(victim, "")
    print(f"{phase.label}: {checked} keys checked; requests {dict(sorted(counts.items()))}"
          + (f"; {relay}" if relay and not phase.takes_host_off else ""))
    TABLE.append((phase.label, tried, lost, failed, len(crashes)))
    print_table()
    forbidden = [f for w in workers for f in w.forbidden]
    for line in forbidden[:20]:
        print("FORBIDDEN", line)
    assert not crashes, crashes
    assert lost == 0
    assert not forbidden, f"{len(forbidden)} forbidden errors, first: {forbidden[0]}"
    if not phase.takes_host_off:
        assert relay and relay_counts(relay)[1] > 0, f"the relay dropped nothing: {relay!r}"


def run_faults(d: Deployment, scale: float, workers_count: int, cycles: int) -> None:
    """Each phase in turn, `cycles` times; new workers (own keys) every phase, all of them
    checked after each."""
    d.s3().create_bucket(Bucket="faults")     # the checker's bucket
    faults = HostFaults(d, random.Random(SEED))
    every: list[Worker] = []
    for _ in range(cycles):
        for phase in phases(scale):
            run_phase(d, faults, every, phase, workers_count)


def test_network_faults_short(deployment: Deployment) -> None:
    run_faults(deployment, scale=1.0, workers_count=2, cycles=1)


@pytest.mark.long
def test_network_faults_long(deployment: Deployment) -> None:
    """Three rounds of the three faults, each 4x longer: the cut (40 s) outlasts the
    gateways' node timeout (30 s), so calls to the cut host fail and the gateways must
    notice its return."""
    run_faults(deployment, scale=LONG_SCALE, workers_count=4, cycles=3)
