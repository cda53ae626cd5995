"""Gateway operations: metrics counters, the admin app's health answers, quorum arithmetic,
structured logs and the status report's judgement. No storage node runs here: the gateway
is built on rings whose nodes are all down, which is also how readiness fails."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from prometheus_client.parser import text_string_to_metric_families

from gateway import admin, logs, status
from gateway.config import Config, NodeLayout, load
from gateway.credentials import AccessKey
from gateway.metrics import GatewayMetrics
from gateway.server import make_app
from gateway.state import STATE
from gateway.up import prepare
from ring.builder import build_ring
from ring.model import Device, Ring
from storage.metrics import REQUEST_ID
from tests.cluster.harness import free_ports


def samples(text: str | bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by (name, sorted labels)."""
    if isinstance(text, bytes):
        text = text.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(page: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return page.get((name, tuple(sorted(labels.items()))), 0.0)


# -- GatewayMetrics ----------------------------------------------------------------------
def test_observe_counts_requests_bytes_errors_and_quorum_failures() -> None:
    m = GatewayMetrics(lambda: {"meta.ring": 7, "data-6.ring": 3})
    m.observe("PutObject", 200, 0.02, 1000, 0)
    m.observe("PutObject", 200, 0.5, 24, 0)
    m.observe("GetObject", 206, 0.001, 0, 4096)
    m.observe("PutObject", 503, 0.1, 10, 300, "SlowDown")
    m.observe("GetObject", 404, 0.001, 0, 200, "NoSuchKey")
    page = samples(m.render())
    assert value(page, "coffre_s3_requests_total", op="PutObject", status="200") == 2
    assert value(page, "coffre_s3_requests_total", op="PutObject", status="503") == 1
    assert value(page, "coffre_s3_received_bytes_total", op="PutObject") == 1034
    assert value(page, "coffre_s3_sent_bytes_total", op="GetObject") == 4296
    assert value(page, "coffre_s3_request_seconds_count", op="PutObject") == 3
    assert value(page, "coffre_s3_request_seconds_bucket", op="PutObject", le="0.025") == 1
    assert value(page, "coffre_s3_errors_total", op="GetObject", code="NoSuchKey") == 1
    assert value(page, "coffre_quorum_failures_total", op="PutObject") == 1
    assert value(page, "coffre_quorum_failures_total", op="GetObject") == 0
    assert value(page, "coffre_ring_version", ring="meta.ring") == 7
    assert not any(name.endswith("_created") for name, _ in page)


def test_two_instances_do_not_share_counters() -> None:
    a, b = GatewayMetrics(), GatewayMetrics()
    a.observe("ListBuckets", 200, 0.0, 0, 0)
    assert value(samples(b.render()), "coffre_s3_requests_total", op="ListBuckets",
                 status="200") == 0


# -- quorum arithmetic -------------------------------------------------------------------
def _ring(nodes: int, width: int) -> tuple[list[Device], Ring]:
    devs = [Device(i, f"10.0.0.{i}:9000", 1.0, f"r/z/n{i}/d0") for i in range(nodes)]
    return devs, build_ring(devs, 4, width, seed=0)


def test_quorum_problems_counts_short_partitions() -> None:
    devs, ring = _ring(6, 6)
    addrs = {d.addr for d in devs}
    rings = {"data-6.ring": ring}
    assert admin.quorum_problems(rings, {"data-6.ring": 5}, addrs) == []
    one_down = addrs - {devs[0].addr}
    assert admin.quorum_problems(rings, {"data-6.ring": 5}, one_down) == []
    two_down = one_down - {devs[1].addr}
    problems = admin.quorum_problems(rings, {"data-6.ring": 5}, two_down)
    assert problems == ["data-6.ring: 16/16 partitions have fewer than 5 reachable devices"]


def test_quorum_problems_partial_outage_on_a_wide_cluster() -> None:
    devs, ring = _ring(9, 3)
    reachable = {d.addr for d in devs[2:]}  # two of nine down: only partitions on both fail
    problems = admin.quorum_problems({"meta.ring": ring}, {"meta.ring": 2},
                                     reachable)
    both = len([p for p in range(16) if {devs[0].id, devs[1].id} <= set(ring.slot_ids(p))])
    assert problems == ([f"meta.ring: {both}/16 partitions have fewer than 2 reachable devices"]
                        if both else [])


def test_quorum_needs_follow_policies() -> None:
    cfg = Config(data_root=Path("/nonexistent"), write_quorum_extra=1)
    assert admin.quorum_needs(cfg, 5) == {"meta.ring": 3, "data-6.ring": 5}
    assert admin.quorum_needs(cfg, None) == {"data-6.ring": 5}


def test_admin_listen_defaults_to_loopback_port_plus_1000(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('[gateway]\nlisten = "0.0.0.0:9000"\n')
    assert load(conf, str(tmp_path)).admin_listen == "127.0.0.1:10000"
    conf.write_text('[gateway]\nlisten = "127.0.0.1:9000"\n[admin]\nlisten = "off"\n')
    assert load(conf, str(tmp_path)).admin_listen == ""
    conf.write_text('[admin]\nlisten = "127.0.0.1:7000"\n')
    assert load(conf, str(tmp_path)).admin_listen == "127.0.0.1:7000"


# -- a gateway with every node down --------------------------------------------------------
@pytest.fixture
def offline(tmp_path: Path) -> tuple[Config, AccessKey]:
    first = free_ports(1)[0]  # closed ports: every node call is refused at once
    cfg = Config(data_root=tmp_path, part_power=4, meta_replicas=3,
                 nodes=NodeLayout(count=6, first_port=first), node_timeout_s=2.0)
    return cfg, prepare(cfg)


@pytest.fixture
async def gw(offline: tuple[Config, AccessKey]) -> AsyncIterator[TestClient[web.Request,
                                                                             web.Application]]:
    client = TestClient(TestServer(make_app(offline[0])))
    await client.start_server()
    yield client
    await client.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """logs.setup replaces the root handlers (pytest's own included): put them back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


@pytest.fixture
def captured(restore_logging: None) -> io.StringIO:
    stream = io.StringIO()
    logs.setup(logs.LogFormat.JSON, "DEBUG", stream)
    return stream


def _signed(client: TestClient[web.Request, web.Application], key: AccessKey, method: str,
            path: str, body: bytes = b"") -> tuple[str, dict[str, str]]:
    url = str(client.make_url(path))
    request = AWSRequest(method=method, url=url, data=body,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials(key.access_key, key.secret_key), "s3", "us-east-1").add_auth(request)
    return url, dict(request.headers.items())


def _admin_client(client: TestClient[web.Request, web.Application]
                  ) -> TestClient[web.Request, web.Application]:
    assert isinstance(client.server, TestServer)
    app = client.server.app
    return TestClient(TestServer(admin.make_admin_app(app[STATE], app)))


async def test_dispatch_feeds_metrics_and_the_access_log(
        gw: TestClient[web.Request, web.Application], offline: tuple[Config, AccessKey],
        captured: io.StringIO) -> None:
    anonymous = await gw.get("/")
    assert anonymous.status == 403
    url, headers = _signed(gw, offline[1], "PUT", "/somebucket")
    created = await gw.session.put(url, headers=headers)
    assert created.status == 503  # no metadata quorum: every node is down
    request_id = created.headers["x-amz-request-id"]
    admin_client = _admin_client(gw)
    await admin_client.start_server()
    try:
        page = samples(await (await admin_client.get("/metrics")).read())
    finally:
        await admin_client.close()
    assert value(page, "coffre_s3_requests_total", op="ListBuckets", status="403") == 1
    assert value(page, "coffre_s3_errors_total", op="ListBuckets", code="AccessDenied") == 1
    assert value(page, "coffre_s3_requests_total", op="CreateBucket", status="503") == 1
    assert value(page, "coffre_quorum_failures_total", op="CreateBucket") == 1
    assert value(page, "coffre_ring_version", ring="meta.ring") == 1
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    failed = [x for x in lines if x.get("op") == "CreateBucket"]
    assert failed and failed[-1]["request_id"] == request_id
    assert failed[-1]["level"] == "WARNING" and failed[-1]["status"] == 503
    assert any(x.get("op") == "ListBuckets" and x["level"] == "DEBUG" for x in lines)


async def test_admin_health_when_every_node_is_down(
        gw: TestClient[web.Request, web.Application]) -> None:
    admin_client = _admin_client(gw)
    await admin_client.start_server()
    try:
        live = await admin_client.get("/health/live")
        ready = await admin_client.get("/health/ready")
        body = await ready.json()
        info = await (await admin_client.get("/admin/info")).json()
    finally:
        await admin_client.close()
    assert live.status == 200
    assert ready.status == 503 and body["ready"] is False
    assert len(body["unreachable"]) == 6 and body["reachable"] == []
    assert any(p.startswith("meta.ring: 16/16") for p in body["problems"])
    assert info["rings"] == {"data-6.ring": 1, "meta.ring": 1}


async def test_ready_reports_missing_rings(offline: tuple[Config, AccessKey]) -> None:
    cfg = offline[0]
    (cfg.rings_dir / "data-6.ring").unlink()  # (no meta ring: the gateway cannot start)
    state = make_app(cfg)[STATE]
    try:
        r = await admin.readiness(state)
    finally:
        await state.client.close()
    assert not r.ready
    assert "ring data-6.ring not loaded" in r.problems


# -- logs --------------------------------------------------------------------------------
def test_json_and_text_lines_carry_the_request_id(restore_logging: None) -> None:
    stream = io.StringIO()
    logs.setup("json", "INFO", stream)
    token = REQUEST_ID.set("ABC123")
    logging.getLogger("coffre.test").info("stored %d", 3, extra={"fields": {"k": "v"}})
    REQUEST_ID.reset(token)
    logging.getLogger("coffre.test").info("no id")
    line, bare = (json.loads(x) for x in stream.getvalue().splitlines())
    assert line["msg"] == "stored 3" and line["request_id"] == "ABC123"
    assert line["k"] == "v" and line["level"] == "INFO" and line["logger"] == "coffre.test"
    assert "request_id" not in bare
    text = io.StringIO()
    logs.setup("text", "INFO", text)
    token = REQUEST_ID.set("XYZ")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("coffre.test").exception("failed")
    finally:
        REQUEST_ID.reset(token)
    out = text.getvalue()
    assert " ERROR coffre.test [XYZ] failed" in out and "ValueError: boom" in out


# -- status judgement --------------------------------------------------------------------
def _info(dev_id: int, used: int = 100, free: int = 900, failed: bool = False,
          version: int = 1) -> dict[str, object]:
    return {"devices": [{"id": dev_id, "used_bytes": used, "free_bytes": free, "fragments": 4,
                         "meta_records": 2, "repair_jobs": 0, "failed": failed}],
            "rings": {"data-6.ring": {"version": version}}}


def test_status_report_names_every_problem() -> None:
    devs, ring = _ring(6, 6)
    nodes: dict[str, dict[str, object] | None] = {
        d.addr: _info(d.id) for d in devs}
    nodes[devs[0].addr] = None
    nodes[devs[1].addr] = _info(devs[1].id, failed=True)
    nodes[devs[2].addr] = _info(devs[2].id, used=950, free=50)
    nodes[devs[3].addr] = _info(devs[3].id, version=0)
    nodes[devs[4].addr] = _info(99)
    report = status.build_report({"data-6.ring": ring}, nodes,
                                 {"127.0.0.1:10000": {"rings": {"data-6.ring": 1}}},
                                 {devs[0].addr: "ConnectionRefusedError"})
    health = {d.id: d.health for d in report.devices}
    assert health == {0: status.Health.DOWN, 1: status.Health.FAILED, 2: status.Health.UP,
                      3: status.Health.UP, 4: status.Health.MISSING, 5: status.Health.UP}
    assert report.warnings == (
        f"node {devs[0].addr} unreachable: ConnectionRefusedError",
        f"device 1 on {devs[1].addr} failed",
        f"device 2 on {devs[2].addr} is near full (50 bytes free)",
        f"device 4 is in the ring but {devs[4].addr} does not serve it",
        f"node {devs[3].addr} runs data-6.ring version 0, published 1",
    )
    as_json = json.loads(status.to_json(report))
    assert as_json["devices"][0]["health"] == "down"
    assert as_json["processes"][-1]["kind"] == "gateway"
    assert "warnings: 5" in status.render_text(report)


def test_status_report_of_a_healthy_cluster_has_no_warning() -> None:
    devs, ring = _ring(6, 6)
    report = status.build_report({"data-6.ring": ring},
                                 {d.addr: _info(d.id) for d in devs}, {}, {})
    assert report.warnings == ()
    assert all(d.health is status.Health.UP for d in report.devices)
