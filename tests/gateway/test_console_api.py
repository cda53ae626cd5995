"""The web console without a cluster: the JSON shaping (gateway.console.api), the recent
errors buffer, the session tokens and Basic credentials, the shared fetches, and the sub-app's
guard on an aiohttp test client (401 and no data without the admin secret)."""

from __future__ import annotations

import asyncio
import base64
import logging
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway import status
from gateway.console import api
from gateway.console import app as console
from gateway.console.errors_feed import ErrorFeed, FeedHandler, Source
from gateway.credentials import AccessKey
from gateway.logs import ACCESS_LOGGER
from gateway.metering import HOUR_MS, RequestClass, Row, Usage
from gateway.state import State
from gateway.tenants import KeyCache
from ring.builder import build_ring
from ring.model import Device, Ring
from storage import rebalance_plan
from storage.metrics import REQUEST_ID

ADMIN = AccessKey("CFADMINKEY", "admin-secret/+xyz", "admin")
TENANT = AccessKey("CFTENANTKEY", "tenant-secret", "acme")
NOW_MS = 1_800_000_000_000


def _devices(n: int, zones: int = 1) -> list[Device]:
    return [Device(i, f"10.0.0.{i}:9000", 1.0, f"r1/z{i % zones}/n{i}/d0") for i in range(n)]


def _ring(n: int = 6, width: int = 6, zones: int = 1) -> Ring:
    return build_ring(_devices(n, zones), 4, width, seed=0)


def _info(dev_ids: list[int], used: int = 100, free: int = 900) -> dict[str, Any]:
    return {"devices": [{"id": i, "used_bytes": used, "free_bytes": free, "fragments": 3}
                        for i in dev_ids],
            "rings": {"data-6.ring": {"version": 1}}}


# -- cluster map -----------------------------------------------------------------------------


def test_cluster_map_groups_by_domain_and_keeps_status_judgement() -> None:
    ring = _ring(6, 6, zones=2)
    infos: dict[str, dict[str, Any] | None] = {
        d.addr: _info([d.id]) for d in ring.devices if d.id != 3}
    infos[ring.devices[3].addr] = None          # node 3 does not answer
    report = status.build_report({"data-6.ring": ring}, infos,
                                 {"gw:1": {"rings": {"data-6.ring": 1}}},
                                 {ring.devices[3].addr: "ConnectionRefused"})
    doc = api.cluster_map(report)
    [region] = doc["regions"]
    assert region["name"] == "r1" and [z["name"] for z in region["zones"]] == ["z0", "z1"]
    nodes = {n["name"]: n for z in region["zones"] for n in z["nodes"]}
    assert sorted(nodes) == [f"n{i}" for i in range(6)]
    assert nodes["n3"]["health"] == "down" and nodes["n3"]["devices"][0]["health"] == "down"
    assert nodes["n0"]["health"] == "up"
    assert nodes["n0"]["devices"][0]["fill"] == pytest.approx(0.1)
    assert nodes["n0"]["used_bytes"] == 100 and nodes["n0"]["free_bytes"] == 900
    assert doc["summary"] == {"nodes": 6, "nodes_up": 5, "devices": 6, "devices_up": 5,
                              "used_bytes": 500, "free_bytes": 4500}
    assert doc["gateways"][0]["addr"] == "gw:1" and doc["gateways"][0]["health"] == "up"
    assert any("unreachable" in w for w in doc["warnings"])   # status's own warning text


def test_cluster_map_node_with_two_devices_sums_them() -> None:
    devs = [Device(0, "a:1", 1.0, "r/z/n0/d0"), Device(1, "a:1", 1.0, "r/z/n0/d1"),
            Device(2, "b:1", 1.0, "r/z/n1/d0")]
    ring = build_ring(devs, 3, 2, seed=0)
    infos: dict[str, dict[str, Any] | None] = {"a:1": _info([0, 1], 10, 30), "b:1": _info([2])}
    doc = api.cluster_map(status.build_report({"data-2.ring": ring}, infos, {}, {}))
    node = doc["regions"][0]["zones"][0]["nodes"][0]
    assert [d["name"] for d in node["devices"]] == ["d0", "d1"]
    assert (node["used_bytes"], node["free_bytes"], node["fill"]) == (20, 60, 0.25)


# -- ring balance ----------------------------------------------------------------------------


def test_ring_balance_rows_match_share() -> None:
    ring = _ring(8, 6)
    doc = api.ring_balance("data-6.ring", ring)
    assert doc["version"] == ring.version and doc["partitions"] == 16 and doc["built"]
    assert sum(r["slots"] for r in doc["devices"]) == 16 * 6
    for r in doc["devices"]:
        want = 100 * (r["slots"] - r["share_slots"]) / r["share_slots"]
        assert r["over_percent"] == pytest.approx(want)
    assert doc["max_over_percent"] == max(r["over_percent"] for r in doc["devices"])
    assert doc["max_under_percent"] == min(r["over_percent"] for r in doc["devices"])


def test_ring_balance_of_unbuilt_ring_is_empty_and_flagged() -> None:
    empty = Ring(0, 4, 6, ())
    doc = api.ring_balance("data-6.ring", empty)
    assert doc["devices"] == [] and not doc["built"]
    assert any(f["severity"] == "error" for f in doc["findings"])


# -- rebalance -------------------------------------------------------------------------------


def _node(done: bool, moved: int, left: int, units: tuple[int, int] = (5, 10),
          paused: bool = False, eta: float | None = 3.0) -> dict[str, Any]:
    return {"reachable": True, "done": done, "paused": paused, "bytes_moved": moved,
            "bytes_left": left, "units_done": units[0], "units_total": units[1],
            "rate_bytes_per_s": 100.0, "eta_s": eta, "errors": 0,
            "ring_versions": {"data-6.ring": 2}}


def test_rebalance_view_per_node_and_total() -> None:
    doc = rebalance_plan.aggregate({
        "a:1": _node(True, 300, 0), "b:1": _node(False, 100, 300, eta=3.0),
        "c:1": None}, ["a:1", "b:1", "c:1"])
    view = api.rebalance_view(doc)
    rows = {r["addr"]: r for r in view["nodes"]}
    assert rows["a:1"]["phase"] == "done" and rows["a:1"]["percent"] == 100.0
    assert rows["b:1"]["phase"] == "running" and rows["b:1"]["percent"] == 25.0
    assert rows["c:1"]["phase"] == "unreachable"
    t = view["total"]
    assert t["phase"] == "running" and t["unreachable"] == ["c:1"]
    assert (t["bytes_moved"], t["bytes_left"]) == (400, 300)
    assert t["percent"] == pytest.approx(100 * 400 / 700)
    assert t["errors"] == 1        # aggregate counts the silent node as an error


def test_rebalance_view_done_paused_and_units_fallback() -> None:
    done = api.rebalance_view(rebalance_plan.aggregate({"a:1": _node(True, 0, 0)}))
    assert done["total"]["phase"] == "done" and done["total"]["percent"] == 100.0
    paused = api.rebalance_view(rebalance_plan.aggregate(
        {"a:1": _node(False, 0, 0, (3, 12), paused=True, eta=None)}))
    assert paused["total"]["phase"] == "paused"
    assert paused["total"]["percent"] == 25.0          # no byte known yet: units
    assert paused["total"]["eta_s"] is None
    nothing = api.rebalance_view(rebalance_plan.aggregate({}))
    assert nothing["total"]["phase"] == "unreachable" and nothing["nodes"] == []


# -- usage -----------------------------------------------------------------------------------


def test_usage_view_sums_buckets_per_hour_and_fills_gaps() -> None:
    window = api.Window.ending_at(NOW_MS, 3)
    h0, h2 = window.first_hour_ms, window.first_hour_ms + 2 * HOUR_MS
    rows = [Row("b1", h0, Usage((1, 2, 0, 0), 10, 20, 3600)),
            Row("b2", h0, Usage((1, 0, 1, 0), 5, 0, 7200)),
            Row("b1", h2, Usage((0, 4, 0, 0), 0, 40, 0)),
            Row("b1", h0 - HOUR_MS, Usage((9, 9, 9, 9), 9, 9, 9))]   # before the window
    doc = api.usage_view({"acme": rows, "zed": []}, window)
    assert len(doc["hours"]) == 3 and doc["hours"][0].endswith(":00:00Z")
    acme, zed = doc["tenants"]
    assert acme["tenant"] == "acme" and zed["tenant"] == "zed"
    assert acme["requests"][RequestClass.WRITE.value] == [2, 0, 0]
    assert acme["requests"][RequestClass.READ.value] == [2, 0, 4]
    assert acme["requests"][RequestClass.DELETE.value] == [1, 0, 0]
    assert acme["bytes_in"] == [15, 0, 0] and acme["bytes_out"] == [20, 0, 40]
    assert acme["byte_hours"] == [3.0, 0.0, 0.0]
    assert acme["buckets"] == ["b1", "b2"]
    assert zed["bytes_in"] == [0, 0, 0] and zed["total"]["bytes_in"] == 0


def test_window_ends_with_the_current_hour() -> None:
    w = api.Window.ending_at(NOW_MS, 24)
    assert w.first_hour_ms % HOUR_MS == 0
    assert w.end_ms - HOUR_MS <= NOW_MS < w.end_ms
    assert w.end_ms - w.first_hour_ms == 24 * HOUR_MS


# -- recent errors ---------------------------------------------------------------------------


def test_feed_keeps_only_errors_newest_first_and_bounded() -> None:
    clock = iter(range(1000, 2000))
    feed = ErrorFeed(capacity=3, wall_ms=lambda: next(clock))
    feed.note_response("R0", "GetObject", None, 200)             # not an error
    for i in range(5):
        feed.note_response(f"R{i + 1}", "GetObject", "NoSuchKey", 404)
    feed.note_response("R6", "PutObject", None, 503)
    assert feed.total == 6
    events = feed.recent()
    assert [e.request_id for e in events] == ["R6", "R5", "R4"]
    assert events[0].code == "HTTP503" and events[0].source is Source.RESPONSE
    assert [e.seq for e in feed.recent(after_seq=5)] == [6]
    assert len(feed.recent(limit=1)) == 1
    doc = api.errors_view(events, feed.total)
    assert doc["total"] == 6 and doc["events"][0]["status"] == 503


def test_feed_handler_takes_warnings_with_request_id_not_access_lines() -> None:
    feed = ErrorFeed()
    logger = logging.getLogger("coffre.test_console")
    handler = FeedHandler(feed)
    logger.addHandler(handler)
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(handler)
    token = REQUEST_ID.set("REQ42")
    try:
        logger.info("routine")
        logger.warning("disk %s is slow: %s", "d0", "x" * 1000)
        access.warning("GET /b/k 500")
    finally:
        REQUEST_ID.reset(token)
        logger.removeHandler(handler)
        access.removeHandler(handler)
    [event] = feed.recent()
    assert event.source is Source.LOG and event.code == "WARNING"
    assert event.request_id == "REQ42" and event.operation == "coffre.test_console"
    assert event.message.startswith("disk d0 is slow") and len(event.message) == 300


# -- credentials -----------------------------------------------------------------------------


def _secret_of(keys: list[AccessKey]) -> console.SecretOf:
    admins = {k.access_key: k.secret_key for k in keys if k.tenant == "admin"}
    return admins.get


def test_token_round_trip_and_every_way_to_break_it() -> None:
    secret_of = _secret_of([ADMIN, TENANT])
    expires = NOW_MS + 60_000
    token = console.make_token(ADMIN.access_key, ADMIN.secret_key, expires)
    assert console.verify_token(token, secret_of, NOW_MS) == ADMIN.access_key
    assert console.verify_token(token, secret_of, expires) is None          # expired
    head, _, mac = token.rpartition(".")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    assert console.verify_token(f"{head}.{flipped}", secret_of, NOW_MS) is None
    later = token.replace(str(expires), str(expires + 1))                   # extended
    assert console.verify_token(later, secret_of, NOW_MS) is None
    rotated = _secret_of([AccessKey(ADMIN.access_key, "new-secret", "admin")])
    assert console.verify_token(token, rotated, NOW_MS) is None
    tenant_token = console.make_token(TENANT.access_key, TENANT.secret_key, expires)
    assert console.verify_token(tenant_token, secret_of, NOW_MS) is None    # not an admin
    far = console.make_token(ADMIN.access_key, ADMIN.secret_key,
                             NOW_MS + 10 * console.session_ttl_s * 1000)
    assert console.verify_token(far, secret_of, NOW_MS) is None             # beyond the TTL
    for junk in ("", "v1", "v1.!!.1.x", "v2" + token[2:], "v1.QQ.notanumber.x", "a.b.c.d.e"):
        assert console.verify_token(junk, secret_of, NOW_MS) is None


def test_basic_credentials_and_secret_check() -> None:
    good = base64.b64encode(b"CFADMINKEY:admin-secret/+xyz").decode()
    assert console.basic_credentials(f"Basic {good}") == (ADMIN.access_key, ADMIN.secret_key)
    assert console.basic_credentials("Bearer x") is None
    assert console.basic_credentials("Basic %%%") is None
    assert console.basic_credentials("Basic " + base64.b64encode(b"nocolon").decode()) is None
    secret_of = _secret_of([ADMIN, TENANT])
    assert console.check_secret(ADMIN.access_key, ADMIN.secret_key, secret_of)
    assert not console.check_secret(ADMIN.access_key, ADMIN.secret_key + "x", secret_of)
    assert not console.check_secret(TENANT.access_key, TENANT.secret_key, secret_of)
    assert not console.check_secret("CFNOBODY", "", secret_of)


# -- shared fetches --------------------------------------------------------------------------


async def test_shared_fetch_runs_one_load_for_concurrent_callers_and_reuses_it() -> None:
    now = [0.0]
    shared = console.SharedFetch(1.0, clock=lambda: now[0])
    calls = 0
    gate = asyncio.Event()

    async def load() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"n": calls}

    waiting = [asyncio.create_task(shared.get("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert [await t for t in waiting] == [{"n": 1}] * 5
    assert await shared.get("k", load) == {"n": 1}           # still fresh
    now[0] = 1.5
    assert await shared.get("k", load) == {"n": 2}           # expired: loaded again

    async def broken() -> dict[str, Any]:
        raise OSError("node down")

    with pytest.raises(OSError):
        await shared.get("other", broken)
    assert await shared.get("other", load) == {"n": 3}       # a failure is not kept


# -- the sub-app's guard ---------------------------------------------------------------------


def _state() -> State:
    keys = KeyCache(None, [ADMIN, TENANT])
    return cast(State, SimpleNamespace(keys=keys))


async def _client() -> TestClient[Any, Any]:
    from aiohttp import web

    root = web.Application()
    root.add_subapp("/console", console.make_console_app(_state(), ErrorFeed()))
    client: TestClient[Any, Any] = TestClient(TestServer(root))
    await client.start_server()
    return client


@pytest.fixture(autouse=True)
def _no_login_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "login_failure_delay_s", 0.0)


async def test_api_refuses_without_admin_credentials() -> None:
    client = await _client()
    try:
        for path in ("cluster", "rings", "rebalance", "usage", "errors", "session"):
            resp = await client.get(f"/console/api/{path}")
            assert resp.status == 401, path
            assert await resp.json() == {"error": "unauthorized"}
            assert "WWW-Authenticate" not in resp.headers
        tenant = base64.b64encode(f"{TENANT.access_key}:{TENANT.secret_key}".encode()).decode()
        resp = await client.get("/console/api/errors",
                                headers={"Authorization": f"Basic {tenant}"})
        assert resp.status == 401
        resp = await client.get("/console/api/errors",
                                cookies={console.COOKIE: "v1.forged.1.x"})
        assert resp.status == 401
        index = await client.get("/console/")
        assert index.status == 200 and "Content-Security-Policy" in index.headers
        assert "Sign in" in await index.text()
    finally:
        await client.close()


async def test_login_sets_a_strict_httponly_cookie_that_opens_the_api() -> None:
    client = await _client()
    try:
        wrong = await client.post("/console/api/login", json={
            "access_key": ADMIN.access_key, "secret_key": "guess"})
        assert wrong.status == 401 and console.COOKIE not in wrong.cookies
        bad = await client.post("/console/api/login", data=b"[1, 2]")
        assert bad.status == 400
        ok = await client.post("/console/api/login", json={
            "access_key": ADMIN.access_key, "secret_key": ADMIN.secret_key})
        assert ok.status == 200
        cookie = ok.cookies[console.COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/console/"
        assert ADMIN.secret_key not in cookie.value
        session = await client.get("/console/api/session")
        assert (await session.json())["access_key"] == ADMIN.access_key
        errors = await client.get("/console/api/errors")
        assert errors.status == 200 and errors.headers["Cache-Control"] == "no-store"
        assert await errors.json() == {"total": 0, "events": []}
        await client.post("/console/api/logout")
        assert (await client.get("/console/api/session")).status == 401
    finally:
        await client.close()
