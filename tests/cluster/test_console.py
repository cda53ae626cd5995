"""The web console in a real headless Chromium against a real cluster.

A 6-node cluster takes some objects; a 7th node joins through `coffre ring add/rebalance/
publish` while the nodes' rebalancers are throttled, so data is still moving when the page
looks. The browser opens the admin port's /console/, is refused with a wrong secret, logs in
with the admin key, and must show every node (7, all up), the new ring version, and the
rebalance with its progress (running, or done if it was quicker than the page). A full-page
screenshot lands in tests/artifacts/console.png. Needs Debian's chromium + chromium-driver
and selenium (`make test` installs them: tests/debian_packages.sh and the [test] extra);
skips with that hint when missing.
"""

from __future__ import annotations

import base64
import importlib.util
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ring.ringfile import load
from tests.cluster import rebalance_helpers as rh
from tests.cluster.harness import Cluster, running_cluster

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACT = Path(__file__).resolve().parents[1] / "artifacts" / "console.png"
CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1440,1000")
PAGE_WAIT_S = 30.0
PROGRESS_GRACE_S = 6.0   # how long the screenshot waits for some progress to show
THROTTLE_MBPS = "0.1"    # per node: the moves of a few MB last seconds, not milliseconds

_missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
if importlib.util.find_spec("selenium") is None:
    _missing.append("the selenium package")
pytestmark = pytest.mark.skipif(
    bool(_missing),
    reason=f"{', '.join(_missing)} missing: run `make test` (tests/debian_packages.sh)")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as c:
        yield c


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="coffre-chromium-")
    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (*CHROME_FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    # The driver path is given: selenium must not look for (download) one of its own.
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(PAGE_WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(what: str, check: Callable[[], Any], timeout_s: float = PAGE_WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _api_status(admin: str, path: str, access_key: str, secret: str) -> int:
    token = base64.b64encode(f"{access_key}:{secret}".encode()).decode()
    req = urllib.request.Request(f"http://{admin}/console/api/{path}",
                                 headers={"Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return e.code


def _grow_cluster(cluster: Cluster) -> str:
    """Objects, then a 7th node joining while the rebalancers are throttled; its addr."""
    s3 = cluster.s3()
    s3.create_bucket(Bucket="console-data")
    for i in range(12):
        s3.put_object(Bucket="console-data", Key=f"obj-{i}", Body=bytes([i]) * 1_000_000)
    try:                       # one error response for the recent-errors table
        s3.get_object(Bucket="console-data", Key="no-such-key")
    except s3.exceptions.NoSuchKey:
        pass
    rings = str(cluster.config.rings_dir)
    assert rh.rebalance("throttle", THROTTLE_MBPS, "--rings-dir", rings)[0] == 0
    _, addr = rh.add_node(cluster, 6)
    rh.change_rings(cluster, ["add", "--id", "6", "--addr", addr,
                              "--domain", "local/z1/n6/d0", "--weight", "1"])
    return addr


def _login(driver: Any, access_key: str, secret: str) -> None:
    from selenium.webdriver.common.by import By

    _wait("the login form", lambda: driver.execute_script(
        "return document.body.dataset.view") == "login")
    for field, value in (("access-key", access_key), ("secret-key", secret)):
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    driver.find_element(By.ID, "login-button").click()


PAGE_STATE_JS = """
const nodes = [...document.querySelectorAll('#map .node')];
const total = document.getElementById('rebalance-total');
return {
  view: document.body.dataset.view,
  nodes: nodes.map(n => [n.dataset.addr, n.dataset.health]),
  phase: total ? total.dataset.phase : null,
  percent: total ? Number(total.dataset.percent) : null,
  unitsTotal: total ? Number(total.dataset.unitsTotal) : 0,
  rebalanceRows: document.querySelectorAll('#rebalance tbody tr').length,
  rings: [...document.querySelectorAll('#rings .ring-head strong')].map(e => e.textContent),
  errors: document.querySelectorAll('#errors tbody tr').length,
  tenants: [...document.querySelectorAll('#usage .tab')].map(e => e.dataset.tenant),
  charts: document.querySelectorAll('#usage canvas').length,
};
"""


def test_console_shows_cluster_and_rebalance(cluster: Cluster, browser: Any) -> None:
    t0 = time.monotonic()
    admin = cluster.config.admin_listen
    key = cluster.key
    new_addr = _grow_cluster(cluster)
    print(f"cluster grown after {time.monotonic() - t0:.1f} s")
    want_version = load(cluster.config.rings_dir / "data-6.ring").version

    # The API itself: no data without the admin secret.
    assert _api_status(admin, "cluster", key.access_key, key.secret_key + "x") == 401
    assert _api_status(admin, "cluster", key.access_key, key.secret_key) == 200

    browser.get(f"http://{admin}/console/")
    _login(browser, key.access_key, key.secret_key[:-1] + "?")
    refused = _wait("the refusal", lambda: browser.execute_script(
        "return document.getElementById('login-error').textContent"))
    assert "wrong" in refused
    assert browser.execute_script("return document.body.dataset.view") == "login"
    assert not [c for c in browser.get_cookies() if c["name"] == "coffre_console"]

    _login(browser, key.access_key, key.secret_key)
    cookie = _wait("the session cookie", lambda: [
        c for c in browser.get_cookies() if c["name"] == "coffre_console"])[0]
    assert cookie["httpOnly"] and cookie.get("sameSite") == "Strict"

    def ready() -> dict[str, Any] | None:
        s: dict[str, Any] = browser.execute_script(PAGE_STATE_JS)
        seen = {addr for addr, health in s["nodes"] if health == "up"}
        ok = (s["view"] == "dashboard" and len(seen) == 7 and new_addr in seen
              and s["phase"] in ("running", "done") and s["unitsTotal"] > 0
              and s["rebalanceRows"] == 7
              and any(f"data-6.ring v{want_version}" == r for r in s["rings"])
              and s["errors"] >= 1 and s["charts"] == 3)
        return s if ok else None

    try:
        state = _wait("every node, the new ring and the rebalance on the page", ready)
        # For the screenshot, not the verdict: a little moved data reads better than 0 %.
        deadline = time.monotonic() + PROGRESS_GRACE_S
        while state["percent"] == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            state = ready() or state
    finally:
        _screenshot(browser)
    print(f"page complete after {time.monotonic() - t0:.1f} s: {state}")
    assert 0 <= state["percent"] <= 100
    script_errors = [e for e in browser.get_log("browser") if e.get("source") == "javascript"]
    assert not script_errors, script_errors
    assert "admin" in state["tenants"]


def _screenshot(driver: Any) -> None:
    """The whole page, not only the window (Chromium's DevTools capture beyond the viewport)."""
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_bytes(base64.b64decode(shot["data"]))
