"""The AWS SDK for JavaScript v3 (`@aws-sdk/client-s3`, `lib-storage`, `s3-request-presigner`,
the versions pinned in `js/package-lock.json`) against a real cluster, at the SDK's defaults:
CRC32 request checksums (aws-chunked with a trailer for streams), response checksum
validation, path-style addressing. `js/scenario.mjs` runs the steps and checks each; this
module installs the SDK (`npm ci`, once per lock file, into `.venv/js-sdk`), runs the
scenario with the cluster's endpoint and keys, and fails with every failed step, the HTTP
exchanges that led to it and the tail of the gateway's log."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.clients import tools
from tests.cluster.harness import Cluster

pytestmark = pytest.mark.clients

JS_DIR = Path(__file__).with_name("js")
SCENARIO = JS_DIR / "scenario.mjs"
LOCK = JS_DIR / "package-lock.json"
# Under the ignored virtualenv, so that `make clean` drops it with the rest.
INSTALL_DIR = Path(__file__).resolve().parents[2] / ".venv" / "js-sdk"
# npm ci of the three packages (38 in all) took ~11 s here with a cold cache.
NPM_TIMEOUT_S = 300.0
STEPS = [
    "CreateBucket", "PutObject string", "PutObject Buffer",
    "PutObject stream (aws-chunked, CRC32 trailer)", "PutObject stream of unknown length",
    "PutObject with other checksums", "GetObject byte-identical, checksum validated",
    "GetObject ranged", "HeadObject metadata", "ListObjectsV2 paginated and with delimiter",
    "keys that need escaping", "CopyObject", "DeleteObjects",
    "lib-storage Upload, 20 MiB in 5 MiB parts", "lib-storage Upload of a stream of unknown length",
    "presigned GET and PUT with fetch",
    "tagging", "versioning and ListObjectVersions", "errors",
]


def _installed() -> bool:
    copy = INSTALL_DIR / "package-lock.json"
    return (INSTALL_DIR / "node_modules").is_dir() and copy.is_file() and (
        copy.read_bytes() == LOCK.read_bytes())


def _npm_ci(npm: str) -> None:
    """Installs the locked packages into INSTALL_DIR unless they are there already; an
    install that fails (no registry, say) skips the test with npm's own words."""
    if _installed():
        return
    INSTALL_DIR.parent.mkdir(parents=True, exist_ok=True)
    # Installed aside, then moved into place: a run cut short leaves no half install that
    # a later run would take for a whole one.
    staging = Path(tempfile.mkdtemp(prefix="js-sdk-", dir=INSTALL_DIR.parent))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(JS_DIR / name, staging / name)
        try:
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=staging,
                                  capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm ci did not finish in {NPM_TIMEOUT_S:.0f} s")
        if done.returncode != 0:
            pytest.skip(f"npm ci failed (exit {done.returncode}): {done.stderr[-2000:]}")
        shutil.rmtree(INSTALL_DIR, ignore_errors=True)
        staging.rename(INSTALL_DIR)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _failure(step: dict[str, Any]) -> str:
    wire = json.dumps(step.get("wire", []), indent=1)
    return (f"--- {step['name']}: {step['error']} (HTTP {step.get('status')})\n"
            f"{step.get('stack', '')}\nlast exchanges:\n{wire}")


def test_js_sdk_scenario(cluster: Cluster, tmp_path: Path) -> None:
    node = tools.require_program("node", "nodejs")
    _npm_ci(tools.require_program("npm", "npm"))
    env = tools.base_env(tmp_path)
    env.update({
        "COFFRE_JS_MODULES": str(INSTALL_DIR), "S3_ENDPOINT": cluster.endpoint,
        "S3_REGION": cluster.config.region, "S3_ACCESS_KEY": cluster.key.access_key,
        "S3_SECRET_KEY": cluster.key.secret_key, "S3_BUCKET": "js-sdk-bucket",
        "S3_VERSIONED_BUCKET": "js-sdk-versions",
    })
    done = tools.run(cluster, [node, str(SCENARIO)], env)
    report = json.loads(done.stdout)
    pinned = json.loads(LOCK.read_text())["packages"]["node_modules/@aws-sdk/client-s3"]
    assert report["sdk"] == pinned["version"]
    assert [s["name"] for s in report["steps"]] == STEPS
    for step in report["steps"]:
        outcome = "ok" if step["ok"] else "FAILED"
        print(f"{step['name']}: {outcome} in {step['ms']} ms", *step.get("notes", []))
    failed = [step for step in report["steps"] if not step["ok"]]
    if failed:
        pytest.fail("\n".join(_failure(s) for s in failed)
                    + f"\n--- gateway.log (tail) ---\n{tools.gateway_log_tail(cluster)}",
                    pytrace=False)
