"""A real cluster on loopback for tests: node and gateway processes started as `coffre up`
starts them, on free ports, each one killable and restartable on its own."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

import boto3
from botocore.config import Config as BotoConfig

from gateway import config as config_mod
from gateway.up import ProcessSpec, prepare, process_specs, stop_all, wait_port

# Test servers listen below the kernel's ephemeral range (32768-60999 here): a port picked
# from that range can be taken by some client's outgoing connection before the server binds.
_PORT_LOW, _PORT_HIGH = 20000, 32000


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def consecutive_free_ports(n: int) -> int:
    """A first port such that first..first+n-1 are all free now."""
    rnd = random.Random()
    for _ in range(500):
        first = rnd.randrange(_PORT_LOW, _PORT_HIGH - n)
        if all(_bindable(p) for p in range(first, first + n)):
            return first
    raise RuntimeError("no run of free ports")


def free_ports(n: int, taken: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """n distinct free ports, none of them in `taken` (ports promised to processes that have
    not bound them yet: a free port is only free until someone binds it)."""
    out: list[int] = []
    while len(out) < n:
        port = consecutive_free_ports(1)
        if port not in out and port not in taken:
            out.append(port)
    return out


@dataclass
class Cluster:
    root: Path
    config_path: Path
    nodes: int = 6
    devices_per_node: int = 1
    extra: str = ""             # more [cluster] settings
    gateway_extra: str = ""     # more [gateway] settings
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    specs: dict[str, ProcessSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        first = consecutive_free_ports(self.nodes + 1)
        gw_port = first + self.nodes
        self.config_path.write_text(
            f'[cluster]\ndata_root = "{self.root}"\npart_power = 6\nmeta_replicas = 5\n'
            f"{self.extra}\n"
            f'[gateway]\nlisten = "127.0.0.1:{gw_port}"\n{self.gateway_extra}\n'
            # A free admin port: the default (S3 port + 1000) may belong to another cluster;
            # not one of the node ports either, which are free now but not for long.
            f'[admin]\nlisten = "127.0.0.1:{free_ports(1, set(range(first, gw_port + 1)))[0]}"\n'
            f"[nodes]\ncount = {self.nodes}\nfirst_port = {first}\n"
            f"devices_per_node = {self.devices_per_node}\n"
        )
        self.config = config_mod.load(self.config_path, str(self.root))
        self.key = prepare(self.config)
        self.specs = {s.name: s for s in process_specs(self.config, str(self.config_path))}
        self.endpoint = f"http://{self.config.listen}"

    def start(self, name: str | None = None) -> None:
        names = [name] if name else list(self.specs)
        for n in names:
            spec = self.specs[n]
            log = open(self.root / f"{n}.log", "ab")  # noqa: SIM115 - lives with the process
            self.procs[n] = subprocess.Popen(spec.argv, stdout=log, stderr=log,
                                             start_new_session=True)
        try:
            for n in names:
                port = self.specs[n].port
                if port:
                    wait_port(port, 30.0, self.procs[n])
        except BaseException:
            self.stop()         # leave no process behind when a start fails
            raise

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        stop_all(list(self.procs.values()))
        self.procs.clear()

    def s3(self, secret: str | None = None, config_read_timeout: float = 60,
           send_checksums: bool = True) -> Any:
        """A boto3 client; `send_checksums=False`: one that declares a checksum only when a
        call asks for one (boto3 sends its default CRC32 on every upload otherwise)."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.config.region,
            aws_access_key_id=self.key.access_key,
            aws_secret_access_key=secret or self.key.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                              read_timeout=config_read_timeout,
                              request_checksum_calculation="when_supported" if send_checksums
                              else "when_required"),
        )

    def add_gateway(self, name: str) -> str:
        """Declare one more gateway process on the same cluster; return its endpoint."""
        port = free_ports(1, self.promised_ports())[0]
        base = self.specs["gateway"]
        argv = [*base.argv[:-1], f"127.0.0.1:{port}"]    # the last argument is --listen's
        self.specs[name] = ProcessSpec(name, argv, port)
        return f"http://127.0.0.1:{port}"

    def client_for(self, endpoint: str) -> Any:
        return boto3.client(
            "s3", endpoint_url=endpoint, region_name=self.config.region,
            aws_access_key_id=self.key.access_key, aws_secret_access_key=self.key.secret_key,
            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

    def promised_ports(self) -> set[int]:
        """Every port this cluster's processes listen on or will, started or not."""
        ports = {s.port for s in self.specs.values() if s.port}
        admin = self.config.admin_listen
        return ports | ({int(admin.rsplit(":", 1)[1])} if admin else set())

    def node_names(self) -> list[str]:
        return [n for n in self.specs if n.startswith("node")]


class ClusterOptions(TypedDict, total=False):
    """The Cluster fields a test may set when it asks for a cluster."""

    nodes: int
    devices_per_node: int
    extra: str
    gateway_extra: str


def new_cluster(**kw: Unpack[ClusterOptions]) -> Cluster:
    root = Path(tempfile.mkdtemp(prefix="coffre-test-"))
    os.environ.pop("COFFRE_DATA", None)
    return Cluster(root, root / "cluster.toml", **kw)


@contextmanager
def running_cluster(**kw: Unpack[ClusterOptions]) -> Iterator[Cluster]:
    """A started cluster (started_cluster's arguments), stopped and removed afterwards."""
    c = started_cluster(**kw)
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(c.root, ignore_errors=True)


def started_cluster(attempts: int = 3, **kw: Unpack[ClusterOptions]) -> Cluster:
    """A new running cluster; a start that loses a port race is retried on new ports."""
    for attempt in range(attempts):
        c = new_cluster(**kw)
        try:
            c.start()
            return c
        except RuntimeError:
            shutil.rmtree(c.root, ignore_errors=True)
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def gateway_gauges(c: Cluster) -> dict[str, float]:
    """The gateway's own metrics (coffre_gateway_*, unlabelled ones) from its admin port."""
    page = urllib.request.urlopen(f"http://{c.config.admin_listen}/metrics",
                                  timeout=10).read().decode()
    return {ln.split()[0]: float(ln.split()[1]) for ln in page.splitlines()
            if ln.startswith("coffre_gateway_")}
