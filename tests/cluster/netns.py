"""Test hosts in Linux network namespaces, and the network faults tests inflict on them.

Topology. One bridge in the root namespace (`cf<R>br`, address 10.77.<R>.1/24) is the switch;
each host is a namespace (`coffre<R>-<host>`) joined to it by a veth pair whose host end is
`eth0` (10.77.<R>.<11+i>/24) and whose root end is the host's *port* (`cf<R>-<host>`).
Processes in the root namespace (the test, boto3 clients, the operator CLI) reach every host
through the bridge; each host keeps its own loopback, so ports never collide across hosts.
R is claimed by creating the bridge (creation of an existing name fails), so concurrent runs
never share a subnet or a name.

Faults act on a host's port, one state at a time (`Link`):
  - CUT: the port is set down: the host loses carrier, nothing goes in or out.
  - ISLAND: the port moves to a second bridge with no address (`partition`): the hosts put
    there reach each other and nobody else; packets to the others vanish silently.
  - IMPAIRED: the port moves to a private bridge whose other port is a TAP device; a relay
    process copies frames between that TAP and a TAP on the main bridge, holding each frame
    `delay_ms` and dropping it with probability `loss_percent`, in both directions. This is
    what `tc qdisc ... netem delay X loss Y%` does; it is done in user space because the test
    kernel has no sch_netem (nor any tc classifier, nor nftables/iptables): `tc` offers only
    htb/pfifo/bfifo here. The relay's loss draws are seeded; frame timing is not replayable.

Rules: every name made is recorded and `teardown` deletes it all, processes first (stopped by
PID), then namespaces, taps and bridges; it runs from a fixture finalizer, so also after a
failure. `NetnsUnavailable` says why hosts cannot be made (not root, no `ip`, no netns).
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

IP = "/usr/sbin/ip"
SUBNET_PREFIX = "10.77"          # 10.77.<run>.0/24: private, claimed per run
HOST_FIRST_OCTET = 11            # host i is .11 + i; the bridge (root side) is .1
HOST_NAME_CHARS_MAX = 4          # interface names are at most 15 bytes: "cf254-abcd"
STOP_GRACE_S = 10.0              # SIGTERM -> SIGKILL
RELAY_FRAME_BYTES_MAX = 65536
RELAY_READ_BATCH_FRAMES = 64     # frames read from one TAP before serving the other
RELAY_START_S = 30.0             # a relay holds its TAPs within this


class NetnsUnavailable(RuntimeError):
    """Network namespaces (or the tools to build them) are not available here."""


class Link(Enum):
    UP = "up"
    CUT = "cut"
    ISLAND = "island"
    IMPAIRED = "impaired"


@dataclass(frozen=True)
class Host:
    name: str        # the test's name for it ("a")
    netns: str       # namespace name
    addr: str        # its address on the test network
    port: str        # root end of its veth pair, on a bridge


def _ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    argv = [IP, *(["-n", netns] if netns else []), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def stop_process(proc: subprocess.Popen[bytes], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM, then SIGKILL after `grace_s`; always reaps."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait()


def stop_processes(procs: Sequence[subprocess.Popen[bytes]],
                   grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to all first, so that they drain at the same time; then as stop_process."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        stop_process(proc, max(0.1, deadline - time.monotonic()))


def _wait_ready_line(proc: subprocess.Popen[bytes]) -> None:
    """Until the relay says it holds both TAPs: frames sent before that would be lost."""
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], RELAY_START_S)
    line = proc.stderr.readline() if ready else b""
    if line.strip() != b"ready":
        stop_process(proc)
        raise RuntimeError(f"the relay did not start: {line!r}")


def _stop_relay(proc: subprocess.Popen[bytes]) -> str:
    stop_process(proc)
    assert proc.stderr is not None
    text = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    return text.strip()


def wait_tcp(addr: str, port: int, timeout_s: float,
             proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts on addr:port (from the root namespace)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            with socket.create_connection((addr, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {addr}:{port} after {timeout_s} s")


class Network:
    """A bridge and hosts in namespaces; use `create` (or `network`), end with `teardown`."""

    def __init__(self, run: int) -> None:
        self.run = run
        self.bridge = f"cf{run}br"
        self.island = f"cf{run}is"
        self.router_addr = f"{SUBNET_PREFIX}.{run}.1"
        self.hosts: dict[str, Host] = {}
        self.links: dict[str, Link] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.relays: dict[str, subprocess.Popen[bytes]] = {}
        self.relay_reports: dict[str, str] = {}   # host -> the last relay's closing line
        self._made_links: list[str] = []       # root-namespace devices, in creation order
        self._made_netns: list[str] = []

    # ---- building ----------------------------------------------------------------------

    @classmethod
    def create(cls, names: Sequence[str]) -> Network:
        _check_tools()
        net = cls(_claim_run())
        try:
            net._made_links.append(net.bridge)
            _ip("link", "set", net.bridge, "up")
            _ip("addr", "add", f"{net.router_addr}/24", "dev", net.bridge)
            _ip("link", "add", net.island, "type", "bridge")
            net._made_links.append(net.island)
            _ip("link", "set", net.island, "up")
            for i, name in enumerate(names):
                net._add_host(name, HOST_FIRST_OCTET + i)
        except BaseException:
            net.teardown()
            raise
        return net

    def _add_host(self, name: str, octet: int) -> None:
        if not (name.isalnum() and len(name) <= HOST_NAME_CHARS_MAX):
            raise ValueError(f"host name {name!r}: 1-{HOST_NAME_CHARS_MAX} letters or digits")
        host = Host(name, f"coffre{self.run}-{name}", f"{SUBNET_PREFIX}.{self.run}.{octet}",
                    f"cf{self.run}-{name}")
        _ip("netns", "add", host.netns)
        self._made_netns.append(host.netns)
        _ip("link", "add", host.port, "type", "veth", "peer", "name", "eth0",
            "netns", host.netns)
        self._made_links.append(host.port)
        _ip("link", "set", host.port, "master", self.bridge, "up")
        _ip("addr", "add", f"{host.addr}/24", "dev", "eth0", netns=host.netns)
        _ip("link", "set", "eth0", "up", netns=host.netns)
        _ip("link", "set", "lo", "up", netns=host.netns)
        self.hosts[name] = host
        self.links[name] = Link.UP

    # ---- processes ---------------------------------------------------------------------

    def spawn(self, host: str, argv: Sequence[str], log: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start argv inside the host (`ip netns exec` execs it: the PID is the process's)."""
        with open(log, "ab") as out:
            proc = subprocess.Popen([IP, "netns", "exec", self.hosts[host].netns, *argv],
                                    stdout=out, stderr=out, start_new_session=True,
                                    env=env)
        self.procs.append(proc)
        return proc

    def run_in(self, host: str, argv: Sequence[str], timeout_s: float = 30.0,
               ) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the host and return its output."""
        return subprocess.run([IP, "netns", "exec", self.hosts[host].netns, *argv],
                              capture_output=True, text=True, timeout=timeout_s)

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc)
        if proc in self.procs:
            self.procs.remove(proc)

    # ---- faults ------------------------------------------------------------------------

    def cut(self, host: str) -> None:
        """The host's link goes down: no carrier, nothing in or out."""
        self._set(host, Link.CUT)

    def partition(self, side: Iterable[str]) -> None:
        """The hosts in `side` reach each other only; the rest (and the root side) reach
        them no more, and packets between the two sides are dropped silently."""
        for host in side:
            self._set(host, Link.ISLAND)

    def impair(self, host: str, delay_ms: float, loss_percent: float, seed: int) -> None:
        """Every frame to and from the host waits `delay_ms` and is lost with probability
        `loss_percent` (each direction: the round trip gains 2 x delay_ms)."""
        self._detach(host)
        self._attach_relay(host, delay_ms, loss_percent, seed)
        self.links[host] = Link.IMPAIRED

    def restore(self, host: str) -> None:
        """Back to a plain link on the main bridge, whatever the fault was."""
        self._set(host, Link.UP)

    def heal(self) -> None:
        for host in self.hosts:
            self.restore(host)

    def _set(self, host: str, link: Link) -> None:
        self._detach(host)
        port = self.hosts[host].port
        bridge = self.island if link is Link.ISLAND else self.bridge
        _ip("link", "set", port, "master", bridge)
        _ip("link", "set", port, "down" if link is Link.CUT else "up")
        self.links[host] = link

    def _detach(self, host: str) -> None:
        """Undo the host's fault, leaving its port on no bridge."""
        port = self.hosts[host].port
        relay = self.relays.pop(host, None)
        if relay is not None:
            self.relay_reports[host] = _stop_relay(relay)
            for dev in self._relay_devices(host):
                _ip("link", "del", dev, check=False)
                if dev in self._made_links:
                    self._made_links.remove(dev)
        _ip("link", "set", port, "nomaster")
        self.links[host] = Link.UP

    def _relay_devices(self, host: str) -> tuple[str, str, str]:
        """(private bridge, TAP on it, TAP on the main bridge)."""
        name = self.hosts[host].name
        return f"cf{self.run}r{name}", f"cf{self.run}u{name}", f"cf{self.run}v{name}"

    def _attach_relay(self, host: str, delay_ms: float, loss_percent: float,
                      seed: int) -> None:
        private, tap_in, tap_out = self._relay_devices(host)
        _ip("link", "add", private, "type", "bridge")
        self._made_links.append(private)
        for tap in (tap_in, tap_out):
            _ip("tuntap", "add", "dev", tap, "mode", "tap")
            self._made_links.append(tap)
        _ip("link", "set", tap_in, "master", private)
        _ip("link", "set", tap_out, "master", self.bridge)
        _ip("link", "set", self.hosts[host].port, "master", private)
        for dev in (private, tap_in, tap_out, self.hosts[host].port):
            _ip("link", "set", dev, "up")
        self.relays[host] = subprocess.Popen(
            [sys.executable, "-m", "tests.cluster.netns", "relay", tap_in, tap_out,
             str(delay_ms), str(loss_percent), str(seed)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        _wait_ready_line(self.relays[host])

    # ---- teardown ----------------------------------------------------------------------

    def teardown(self) -> list[str]:
        """Stop every process, delete every namespace and device made; return what could
        not be deleted (empty when all went)."""
        for relay in self.relays.values():
            _stop_relay(relay)
        self.relays.clear()
        stop_processes(self.procs)
        self.procs.clear()
        for ns in reversed(self._made_netns):
            _ip("netns", "del", ns, check=False)
        for dev in reversed(self._made_links):
            _ip("link", "del", dev, check=False)
        return self.leftovers()

    def leftovers(self) -> list[str]:
        """Namespaces and root-namespace devices of this run that still exist."""
        names = set(_ip("netns", "list", check=False).split())
        links = {line.split(":")[1].strip().split("@")[0]
                 for line in _ip("-o", "link", check=False).splitlines() if ":" in line}
        return sorted((names & set(self._made_netns)) | (links & set(self._made_links)))


def _check_tools() -> None:
    if os.geteuid() != 0:
        raise NetnsUnavailable("not root")
    if not Path(IP).exists():
        raise NetnsUnavailable(f"{IP} is missing")
    if not Path("/dev/net/tun").exists():
        raise NetnsUnavailable("/dev/net/tun is missing")


def _claim_run() -> int:
    """A run number whose subnet nobody uses, claimed by creating its bridge."""
    used = _ip("-4", "-o", "addr", check=False) + _ip("-4", "route", check=False)
    errors: list[str] = []
    for run in random.Random().sample(range(1, 255), 254):
        if f"{SUBNET_PREFIX}.{run}." in used:
            continue
        done = subprocess.run([IP, "link", "add", f"cf{run}br", "type", "bridge"],
                              capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return run
        errors.append(done.stderr.strip())
        if "exists" not in done.stderr:
            raise NetnsUnavailable(f"cannot create a bridge: {errors[-1]}")
    raise NetnsUnavailable(f"no free 10.77.x.0/24 test subnet ({errors[-1:]})")


@contextlib.contextmanager
def network(names: Sequence[str]) -> Iterator[Network]:
    """Hosts for the duration of a with-block; everything made is deleted after it."""
    try:
        net = Network.create(names)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if isinstance(exc, NetnsUnavailable):
            raise
        raise NetnsUnavailable(str(exc)) from exc
    try:
        yield net
    finally:
        left = net.teardown()
        if left:
            print(f"netns teardown left {left}", file=sys.stderr)


# ---- the relay: netem's delay and loss in user space ------------------------------------

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000


def _open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def relay(tap_a: str, tap_b: str, delay_ms: float, loss_percent: float, seed: int) -> None:
    """Copy frames both ways between two TAPs, each held `delay_ms`, some dropped; print
    the counts on SIGTERM."""
    fds = (_open_tap(tap_a), _open_tap(tap_b))
    other = {fds[0]: fds[1], fds[1]: fds[0]}
    rnd = random.Random(seed)
    delay_s = delay_ms / 1000.0
    due: list[tuple[float, int, int, bytes]] = []      # (when, sequence, out fd, frame)
    counts = {"relayed": 0, "dropped": 0}
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _f: stopping.append(signum))
    print("ready", file=sys.stderr, flush=True)
    seq = 0
    while not stopping:
        wait = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        try:
            ready, _, _ = select.select(list(fds), [], [], wait)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            for _ in range(RELAY_READ_BATCH_FRAMES):
                try:
                    frame = os.read(fd, RELAY_FRAME_BYTES_MAX)
                except BlockingIOError:
                    break
                if rnd.random() * 100.0 < loss_percent:
                    counts["dropped"] += 1
                    continue
                seq += 1
                heapq.heappush(due, (now + delay_s, seq, other[fd], frame))
        while due and due[0][0] <= time.monotonic():
            _, _, out, frame = heapq.heappop(due)
            with contextlib.suppress(OSError):   # a TAP whose bridge went away: frame lost
                os.write(out, frame)
                counts["relayed"] += 1
    print(f"relay {tap_a}<->{tap_b}: relayed {counts['relayed']} dropped "
          f"{counts['dropped']}", file=sys.stderr, flush=True)


def relay_counts(text: str) -> tuple[int, int]:
    """(relayed, dropped) from the relay's closing line."""
    words = text.split()
    return int(words[words.index("relayed") + 1]), int(words[words.index("dropped") + 1])


if __name__ == "__main__":
    if len(sys.argv) != 7 or sys.argv[1] != "relay":
        sys.exit("usage: python -m tests.cluster.netns relay TAP_A TAP_B DELAY_MS LOSS% SEED")
    relay(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
