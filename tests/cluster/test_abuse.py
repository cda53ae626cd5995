"""Abuse limits on a real gateway (gateway/abuse.py): slowloris cut off, oversized headers
refused, an XML body over the cap refused unread, and a flood from one client address that
does not starve another's requests. Times are measured and printed, asserted only loosely
(this machine is shared and loaded)."""

from __future__ import annotations

import shutil
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.harness import Cluster
from tests.cluster.test_faults import TABLE, print_table, started_cluster
from tests.cluster.test_hostile import http, send

HEADER_TIMEOUT_S = 2.0
BODY_IDLE_S = 3.0
PER_CLIENT = 8
LIMITS = (f"\n[abuse]\nheader_timeout_s = {HEADER_TIMEOUT_S}\nbody_idle_timeout_s = {BODY_IDLE_S}"
          f"\nrequests_in_flight_per_client_max = {PER_CLIENT}\nxml_body_bytes_max = 65536\n")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    def limits(c: Cluster) -> None:
        text = c.config_path.read_text().replace("[gateway]", LIMITS + "[gateway]", 1)
        c.config_path.write_text(text)

    c = started_cluster(limits)
    yield c
    c.stop()
    shutil.rmtree(c.root, ignore_errors=True)


def _closed_after(sock: socket.socket, drip: bytes, every_s: float, give_up_s: float) -> float:
    """Send `drip` one byte at a time; the seconds until the server closes the connection."""
    start = time.monotonic()
    i = 0
    sock.settimeout(every_s)
    while time.monotonic() - start < give_up_s:
        try:
            sock.send(drip[i % len(drip):i % len(drip) + 1])
            i += 1
            if sock.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start
    return float("inf")


def test_slowloris_headers_cut_off(cluster: Cluster) -> None:
    port = cluster.specs["gateway"].port
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for s in socks[1:]:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")      # and never the blank line
        took = _closed_after(socks[0], b"GET / HTTP/1.1\r\nX-Slow: aaaaaaaa\r\n", 0.3, 30)
        # Meanwhile a normal client is served.
        s3: Any = cluster.s3()
        s3.list_buckets()
    finally:
        for s in socks:
            s.close()
    print(f"slowloris (headers): cut off after {took:.1f} s (limit {HEADER_TIMEOUT_S} s)")
    TABLE.append(("slowloris: headers dripped (20 conns)", 20, 0, 0, 0))
    print_table()
    assert took < 20


def test_slow_body_cut_off(cluster: Cluster) -> None:
    port = cluster.specs["gateway"].port
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"PUT /nobucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
        s.settimeout(30)
        start = time.monotonic()
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass
        took = time.monotonic() - start
    print(f"slow body: connection ended after {took:.1f} s (idle limit {BODY_IDLE_S} s)")
    assert took < 25


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 20_000 + b"\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: v\r\n" * 300 + b"\r\n",
    b"GET /" + b"p" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
], ids=["big-field", "many-fields", "long-line"])
def test_oversized_headers_refused(cluster: Cluster, request_bytes: bytes) -> None:
    answer = send(cluster.specs["gateway"].port, request_bytes)
    assert answer.status in (400, 431), answer.status
    assert cluster.procs["gateway"].poll() is None


def test_xml_body_cap(cluster: Cluster) -> None:
    """A DeleteObjects body declared over the cap is refused before it is read."""
    port = cluster.specs["gateway"].port
    request = http("POST", "/somebucket?delete", [("Content-Length", str(10 * 1024 * 1024))])
    answer = send(port, request, timeout_s=10)
    assert answer.status == 400 and b"MalformedXML" in answer.body, answer


def _timed_get(s3: Any) -> float:
    start = time.monotonic()
    s3.head_bucket(Bucket="fair")
    return time.monotonic() - start


def test_flood_does_not_starve_others(cluster: Cluster) -> None:
    """32 threads from 127.0.0.2 send tiny requests as fast as they can; a client on
    127.0.0.1 keeps being served, and only the flooder sees SlowDown."""
    port = cluster.specs["gateway"].port
    s3: Any = cluster.s3()
    s3.create_bucket(Bucket="fair")
    baseline = [_timed_get(s3) for _ in range(20)]
    stop = threading.Event()
    codes: dict[int, int] = {}
    lock = threading.Lock()

    def flood() -> None:
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10,
                                              source_address=("127.0.0.2", 0)) as s:
                    s.sendall(http("GET", "/fair/x", []))
                    head = s.recv(64)
                status = int(head.split(b" ")[1]) if head.count(b" ") >= 1 else 0
            except (OSError, ValueError):
                status = 0
            with lock:
                codes[status] = codes.get(status, 0) + 1

    threads = [threading.Thread(target=flood) for _ in range(32)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    during, failures = [], 0
    for _ in range(20):
        try:
            during.append(_timed_get(s3))
        except Exception:
            failures += 1
    stop.set()
    for t in threads:
        t.join()
    flood_count = sum(codes.values())
    print(f"flood: {flood_count} flooder requests, statuses {codes}; victim median "
          f"{statistics.median(baseline) * 1000:.0f} ms before, "
          f"{statistics.median(during or [0]) * 1000:.0f} ms during, "
          f"p max {max(during or [0]) * 1000:.0f} ms, victim failures {failures}")
    TABLE.append(("flood from one client (victim requests)", 20, 0, failures, 0))
    print_table()
    assert failures == 0
    assert cluster.procs["gateway"].poll() is None
