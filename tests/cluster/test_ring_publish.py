"""The operator's ring workflow on a running cluster: add a 7th node with the CLI on a copy
of the ring, rebalance, publish; every node and the gateway swap in the new ring without a
restart, and every object stays readable while the data has not moved yet."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from gateway.up import ProcessSpec
from tests.cluster.harness import Cluster, free_ports


def _coffre(*args: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--json"],
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout) if out.stdout.strip() else {}


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def test_add_node_publish_everyone_switches(cluster: Cluster, tmp_path: Path) -> None:
    s3 = cluster.s3()
    s3.create_bucket(Bucket="ringed")
    bodies = {f"k{i}": random.Random(i).randbytes(s) for i, s in enumerate([10, 100_000,
                                                                           2_000_000])}
    for k, b in bodies.items():
        s3.put_object(Bucket="ringed", Key=k, Body=b)
    # A 7th node process with one new device.
    port = free_ports(1, cluster.promised_ports())[0]
    dev_dir = cluster.root / "nodes" / "n6" / "d0"
    dev_dir.mkdir(parents=True)
    base = cluster.specs["node0"].argv
    argv = [*base[:base.index("--listen")], "--listen", f"127.0.0.1:{port}", "--rings-dir",
            str(cluster.config.rings_dir), "--device", f"60={dev_dir}"]
    cluster.specs["node6"] = ProcessSpec("node6", argv, port)
    cluster.start("node6")
    # The operator edits a copy, then publishes it.
    work = tmp_path / "data-6.ring"
    shutil.copy(cluster.config.rings_dir / "data-6.ring", work)
    before = _coffre("ring", "show", str(work))
    _coffre("ring", "add", str(work), "--id", "60", "--addr", f"127.0.0.1:{port}",
            "--domain", "local/z1/n6/d0", "--weight", "1")
    plan = _coffre("ring", "rebalance", str(work))
    assert plan, "rebalance printed no plan"
    after = _coffre("ring", "show", str(work))
    assert any(d["id"] == 60 for d in after["devices"])
    assert any(60 in slots for slots in after["assignment"])
    assert after["assignment"] != before["assignment"]
    _coffre("ring", "publish", str(work))
    want = json.loads(subprocess.run(
        [sys.executable, "-c", "import sys; from ring.ringfile import load; "
         f"print(load({str(work)!r}).version)"], capture_output=True, text=True,
        check=True).stdout)
    # Every node reports the new version; the gateway reloads within its check period.
    for name, spec in cluster.specs.items():
        if name.startswith("node"):
            info = _get_json(f"http://127.0.0.1:{spec.port}/admin/info")
            assert info["rings"]["data-6.ring"]["version"] == want, (name, info["rings"])
    admin = cluster.config.admin_listen
    deadline = time.monotonic() + 30
    while True:
        seen = _get_json(f"http://{admin}/admin/info")["rings"]["data-6.ring"]
        if seen == want or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert seen == want
    # Objects written before the change still read (new owners or previous slots).
    for k, b in bodies.items():
        assert s3.get_object(Bucket="ringed", Key=k)["Body"].read() == b
    s3.put_object(Bucket="ringed", Key="after", Body=b"new ring")
    assert s3.get_object(Bucket="ringed", Key="after")["Body"].read() == b"new ring"
    cluster.kill("node6")
    del cluster.specs["node6"]
