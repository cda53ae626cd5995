"""Operating a real cluster: /metrics during a workload, health endpoints as nodes die and
come back, and `coffre status --json` seeing a killed node. Processes are started exactly as
`coffre up` starts them (tests/cluster/harness.py)."""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster.harness import Cluster, started_cluster

Page = dict[tuple[str, tuple[tuple[str, str], ...]], float]
T = TypeVar("T")
FRAG_PUT = "rpc/fputs"          # a fragment above 1 MiB streams on the RPC channel
BIG_BYTES = 8 * 1024 * 1024  # ec 4+2: 2 MiB fragments, above the RPC body limit (streamed)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """This module's cluster; stops whatever started even if a test fails halfway."""
    c = started_cluster()      # the harness picks a free admin port
    try:
        yield c
    finally:
        c.stop()
        shutil.rmtree(c.root, ignore_errors=True)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(addr: str) -> Page:
    status, body = get(f"http://{addr}/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(page: Page, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in page.items() if n == name and want <= set(ls))


def eventually(probe: Callable[[], T], done: Callable[[T], bool], attempts: int = 100,
               pause_s: float = 0.1) -> T:
    """Probe until `done` holds (background work such as the 6th fragment may lag)."""
    got = probe()
    for _ in range(attempts):
        if done(got):
            return got
        time.sleep(pause_s)
        got = probe()
    return got


def node_addrs(cluster: Cluster) -> dict[str, str]:
    return {n: f"127.0.0.1:{cluster.specs[n].port}" for n in cluster.node_names()}


def status_json(cluster: Cluster) -> tuple[int, dict[str, Any]]:
    run = subprocess.run([sys.executable, "-m", "gateway.status", "status", "--json",
                          "--config", str(cluster.config_path), "--data", str(cluster.root)],
                         capture_output=True, text=True, timeout=60)
    return run.returncode, json.loads(run.stdout)


def test_gateway_counters_match_the_requests_sent(cluster: Cluster) -> None:
    s3: Any = cluster.s3()
    admin = cluster.config.admin_listen
    before = scrape(admin)
    s3.create_bucket(Bucket="ops-metrics")
    small = [b"x" * (100 + i) for i in range(5)]
    for i, body in enumerate(small):
        s3.put_object(Bucket="ops-metrics", Key=f"small/{i}", Body=body)
    s3.put_object(Bucket="ops-metrics", Key="big", Body=b"y" * BIG_BYTES)
    got = [s3.get_object(Bucket="ops-metrics", Key=f"small/{i}")["Body"].read()
           for i in range(5)]
    assert got == small
    assert len(s3.get_object(Bucket="ops-metrics", Key="big")["Body"].read()) == BIG_BYTES
    for i in range(3):
        try:
            s3.head_object(Bucket="ops-metrics", Key=f"missing/{i}")
        except Exception as e:  # botocore ClientError: the 404 is the point
            assert "404" in str(e)
    after = scrape(admin)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("coffre_s3_requests_total", op="CreateBucket", status="200") == 1
    assert delta("coffre_s3_requests_total", op="PutObject", status="200") == 6
    assert delta("coffre_s3_requests_total", op="GetObject", status="200") == 6
    assert delta("coffre_s3_requests_total", op="HeadObject", status="404") == 3
    assert delta("coffre_s3_errors_total", op="HeadObject", code="NoSuchKey") == 3
    assert delta("coffre_s3_request_seconds_count", op="PutObject") == 6
    assert delta("coffre_s3_sent_bytes_total", op="GetObject") == sum(map(len, small)) + BIG_BYTES
    # Bodies may arrive aws-chunked (signatures, trailers): at least the payload came in.
    assert delta("coffre_s3_received_bytes_total", op="PutObject") >= (
        sum(map(len, small)) + BIG_BYTES)
    assert delta("coffre_quorum_failures_total") == 0
    assert total(after, "coffre_ring_version", ring="meta.ring") >= 1


def test_nodes_count_fragment_puts_and_report_devices(cluster: Cluster) -> None:
    s3: Any = cluster.s3()
    addrs = node_addrs(cluster)
    s3.create_bucket(Bucket="ops-nodes")

    def frag_puts() -> float:
        return sum(total(scrape(a), "coffre_node_requests_total", endpoint=FRAG_PUT,
                         status="204") for a in addrs.values())

    before = frag_puts()
    s3.put_object(Bucket="ops-nodes", Key="big", Body=b"z" * BIG_BYTES)
    # Every one of the 6 fragments streams to its own node; the write returns after
    # k+1 = 5 are durable, the 6th may land a moment later.
    assert eventually(frag_puts, lambda n: n - before == 6) - before == 6
    pages = [scrape(a) for a in addrs.values()]
    assert sum(total(p, "coffre_device_up") for p in pages) == len(addrs)
    assert sum(total(p, "coffre_device_fragments") for p in pages) >= 6
    assert all(total(p, "coffre_device_free_bytes") > 0 for p in pages)
    assert all(total(p, "coffre_ring_version", ring="data-6.ring") >= 1 for p in pages)
    assert all(("coffre_rebalance_units_total", ()) in p for p in pages)
    assert sum(total(p, "coffre_node_received_bytes_total", endpoint=FRAG_PUT)
               for p in pages) >= BIG_BYTES * 6 // 4
    for addr in addrs.values():
        status, body = get(f"http://{addr}/health/ready")
        assert status == 200 and json.loads(body)["ready"] is True


def test_small_gets_spread_over_every_metadata_replica(cluster: Cluster) -> None:
    """A read needs any majority of the metadata replicas: the gateway asks the least busy
    in turn, not always the ring's first three (which loaded one node 3.6 times another
    under small GETs)."""
    s3: Any = cluster.s3()
    s3.create_bucket(Bucket="ops-spread")
    s3.put_object(Bucket="ops-spread", Key="k", Body=b"v" * 100)
    addrs = node_addrs(cluster)

    def reads() -> dict[str, float]:
        return {n: total(scrape(a), "coffre_node_requests_total", endpoint="rpc/mget")
                for n, a in addrs.items()}

    before = reads()
    gets = 30
    for _ in range(gets):
        assert s3.get_object(Bucket="ops-spread", Key="k")["Body"].read() == b"v" * 100
    after = reads()
    served = sorted((after[n] - before[n] for n in addrs), reverse=True)
    # 30 GETs x 3 replica reads over the 5 replicas: 18 each in turn. The first three only
    # would leave two replicas with no more than the odd bucket lookup (cached for 2 s).
    assert sum(served) >= gets * 3
    assert all(n >= gets // 3 for n in served[:5]), served


def test_gateway_ready_follows_the_write_quorum(cluster: Cluster) -> None:
    admin = cluster.config.admin_listen
    assert get(f"http://{admin}/health/live")[0] == 200
    status, body = get(f"http://{admin}/health/ready")
    assert status == 200, body
    try:
        cluster.kill("node5")  # 5 of 6 still answer: k+1 = 5 holds everywhere
        status, body = get(f"http://{admin}/health/ready")
        answer = json.loads(body)
        assert status == 200 and answer["unreachable"] == [node_addrs(cluster)["node5"]]
        cluster.kill("node4")  # 4 of 6: no partition can take a write
        status, body = get(f"http://{admin}/health/ready")
        answer = json.loads(body)
        assert status == 503 and answer["ready"] is False
        assert any(p.startswith("data-6.ring: ") for p in answer["problems"])
    finally:
        for name in ("node4", "node5"):
            if name not in cluster.procs:
                cluster.start(name)
    status, body = eventually(lambda: get(f"http://{admin}/health/ready"),
                              lambda r: r[0] == 200)
    assert status == 200, body


def test_status_json_reflects_a_killed_node(cluster: Cluster) -> None:
    code, report = status_json(cluster)
    assert code == 0, report["warnings"]
    assert {p["health"] for p in report["processes"]} == {"up"}
    assert len(report["devices"]) == 6
    gateway = [p for p in report["processes"] if p["kind"] == "gateway"]
    assert gateway and gateway[0]["rings"] == report["rings"]
    killed = node_addrs(cluster)["node2"]
    cluster.kill("node2")
    try:
        code, report = status_json(cluster)
    finally:
        cluster.start("node2")
    assert code == 1
    down = [p for p in report["processes"] if p["health"] == "down"]
    assert [p["addr"] for p in down] == [killed]
    assert [d["addr"] for d in report["devices"] if d["health"] == "down"] == [killed]
    assert any(w.startswith(f"node {killed} unreachable") for w in report["warnings"])
    code, report = status_json(cluster)
    assert code == 0, report["warnings"]


def _workload(cluster: Cluster, name: str, stop: threading.Event,
              failures: list[str], done: list[int]) -> None:
    """PUT, GET (checked) and HEAD in a loop until `stop`; every failure is kept."""
    s3: Any = cluster.s3()
    rng = random.Random(name)
    i = 0
    while not stop.is_set():
        key = f"{name}/{i}"
        body = rng.randbytes(rng.choice([1000, 200_000, 1_500_000]))
        try:
            s3.put_object(Bucket="ops-rolling", Key=key, Body=body)
            if s3.get_object(Bucket="ops-rolling", Key=key)["Body"].read() != body:
                failures.append(f"{key}: body differs")
            s3.head_object(Bucket="ops-rolling", Key=key)
            done.append(1)
        except Exception as e:  # any failed request fails the test; keep them all
            failures.append(f"{key}: {type(e).__name__}: {e}")
        i += 1


def test_rolling_restart_under_load_fails_no_request(cluster: Cluster) -> None:
    """SIGTERM each node in turn (it drains), start it again, wait until the gateway sees
    a write quorum again, move on; clients keep working the whole time."""
    s3: Any = cluster.s3()
    s3.create_bucket(Bucket="ops-rolling")
    stop, failures, done = threading.Event(), [], []  # type: ignore[var-annotated]
    workers = [threading.Thread(target=_workload, args=(cluster, f"w{n}", stop, failures, done))
               for n in range(2)]
    for w in workers:
        w.start()
    admin = cluster.config.admin_listen
    try:
        for name in cluster.node_names():
            proc = cluster.procs.pop(name)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=60) == 0  # drained and stopped cleanly
            cluster.start(name)
            ready = eventually(lambda: get(f"http://{admin}/health/ready"),
                               lambda r: r[0] == 200 and not json.loads(r[1])["unreachable"])
            assert ready[0] == 200, ready[1]
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=120)
    print(f"rolling restart: {len(done)} PUT+GET+HEAD rounds, {len(failures)} failures")
    assert failures == []
    assert len(done) > 0


def test_sigterm_lets_the_gateway_finish_a_download(cluster: Cluster) -> None:
    """A GET streaming when the gateway gets SIGTERM still delivers every byte; the
    gateway then exits cleanly, and comes back."""
    s3: Any = cluster.s3()
    s3.create_bucket(Bucket="ops-drain")
    body = random.Random(11).randbytes(24 * 1024 * 1024)
    s3.put_object(Bucket="ops-drain", Key="big", Body=body)
    stream = s3.get_object(Bucket="ops-drain", Key="big")["Body"]
    head = stream.read(1024 * 1024)  # the rest waits in the gateway, held by backpressure
    gateway = cluster.procs.pop("gateway")
    try:
        gateway.send_signal(signal.SIGTERM)
        rest = stream.read()
        assert gateway.wait(timeout=60) == 0
    finally:
        cluster.start("gateway")
    assert head + rest == body
    assert s3.head_object(Bucket="ops-drain", Key="big")["ContentLength"] == len(body)


def test_two_gateway_workers_share_the_port() -> None:
    """`[gateway] workers = 2`: two processes answer on one port; either can die alone."""
    c = started_cluster(gateway_extra="workers = 2")
    try:
        assert {"gateway", "gateway2"} <= set(c.procs)
        s3 = c.s3()
        s3.create_bucket(Bucket="workers")
        for i in range(20):     # fresh connections land on either worker
            s3.put_object(Bucket="workers", Key=f"k{i}", Body=b"x" * i)
        for victim, other in (("gateway", "gateway2"), ("gateway2", None)):
            c.kill(victim)
            if other is None:
                break
            fresh = c.s3()      # new connections reach only the survivor
            got = [fresh.get_object(Bucket="workers", Key=f"k{i}")["Body"].read()
                   for i in range(20)]
            assert got == [b"x" * i for i in range(20)]
            fresh.put_object(Bucket="workers", Key="after", Body=b"survivor")
        c.start("gateway")
        assert c.s3().get_object(Bucket="workers", Key="after")["Body"].read() == b"survivor"
    finally:
        c.stop()
        shutil.rmtree(c.root, ignore_errors=True)


def test_recreating_ones_bucket_outside_us_east_1_is_refused() -> None:
    """AWS answers 200 only in North Virginia (legacy); elsewhere BucketAlreadyOwnedByYou,
    and the bucket (its ACL too) is left as it was."""
    c = started_cluster(extra='region = "eu-west-3"')
    try:
        s3 = c.s3()
        where = {"LocationConstraint": "eu-west-3"}
        s3.create_bucket(Bucket="paris", CreateBucketConfiguration=where, ACL="public-read")
        with pytest.raises(ClientError) as exc:
            s3.create_bucket(Bucket="paris", CreateBucketConfiguration=where)
        assert exc.value.response["Error"]["Code"] == "BucketAlreadyOwnedByYou"
        assert len(s3.get_bucket_acl(Bucket="paris")["Grants"]) == 2
    finally:
        c.stop()
        shutil.rmtree(c.root, ignore_errors=True)
