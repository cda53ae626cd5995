"""Metering against a real cluster: a scripted workload through two gateways, one of them
SIGKILLed mid-way and restarted; `coffre admin usage` must equal, exactly, what the script
counted from the answers it received (requests by class, bytes in, bytes out)."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from gateway.metering import RequestClass
from tests.cluster.harness import Cluster, new_cluster

TENANT = "metered"
EXPORT_WAIT_S = 20.0          # for the journals' flushes (usage_flush_s) to reach the store
BUCKET = "billing-data"
SAMPLE_S = "2"              # stored-bytes sampling period of the test cluster's gateways
KEY_WAIT_S = 20.0           # bound for a new key to reach every gateway (refresh: 2 s)
OPS_PER_PHASE = 40


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    os.environ["COFFRE_METER_SAMPLE_S"] = SAMPLE_S      # inherited by the gateway processes
    c = new_cluster()
    c.add_gateway("gw2")
    try:
        c.start()
        yield c
    finally:
        c.stop()
        os.environ.pop("COFFRE_METER_SAMPLE_S", None)
        shutil.rmtree(c.root, ignore_errors=True)


def admin(cluster: Cluster, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "gateway.admin_cli", *args, "--config",
         str(cluster.config_path), "--data", str(cluster.root)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def s3(endpoint: str, key: dict[str, str]) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=key["access_key"], aws_secret_access_key=key["secret_key"],
        config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@dataclass
class Tally:
    """What the script saw answered: the expected bill."""

    requests: dict[RequestClass, int] = field(
        default_factory=lambda: dict.fromkeys(RequestClass, 0))
    bytes_in: int = 0
    bytes_out: int = 0

    def answered(self, cls: RequestClass, meta: dict[str, Any], bytes_in: int = 0,
                 head: bool = False) -> None:
        self.requests[cls] += 1
        self.bytes_in += bytes_in
        if not head:        # a HEAD's Content-Length describes the object, not a body
            self.bytes_out += int(meta["HTTPHeaders"].get("content-length", "0"))


def call(tally: Tally, cls: RequestClass, fn: Any, bytes_in: int = 0, head: bool = False,
         **kw: Any) -> Any:
    """Run one S3 call; count it if it was answered (an S3 error is an answer too)."""
    try:
        out = fn(**kw)
    except ClientError as exc:
        tally.answered(cls, exc.response["ResponseMetadata"], bytes_in, head)
        return None
    body = out["Body"].read() if "Body" in out else None
    tally.answered(cls, out["ResponseMetadata"], bytes_in, head)
    return body


def one_op(rng: random.Random, client: Any, tally: Tally) -> None:
    key = f"k{rng.randrange(12)}"
    kind = rng.choice(["put", "put", "get", "head", "list", "delete", "get"])
    if kind == "put":
        # Both sides of the inline threshold (64 KiB): manifest-only and erasure-coded.
        size = rng.choice([0, 10, 1000, 70_000, 300_000])
        call(tally, RequestClass.WRITE, client.put_object, size, Bucket=BUCKET, Key=key,
             Body=rng.randbytes(size))
    elif kind == "get":
        call(tally, RequestClass.READ, client.get_object, Bucket=BUCKET, Key=key)
    elif kind == "head":
        call(tally, RequestClass.READ, client.head_object, head=True, Bucket=BUCKET, Key=key)
    elif kind == "list":
        call(tally, RequestClass.WRITE, client.list_objects_v2, Bucket=BUCKET)
    else:
        call(tally, RequestClass.DELETE, client.delete_object, Bucket=BUCKET, Key=key)


def run_ops(seed: int, client: Any, n: int) -> Tally:
    rng, tally = random.Random(seed), Tally()
    for _ in range(n):
        one_op(rng, client, tally)
    return tally


def wait_for_key(client: Any, tally: Tally) -> None:
    deadline = time.monotonic() + KEY_WAIT_S
    while True:
        try:
            out = client.list_buckets()
        except ClientError:
            assert time.monotonic() < deadline, "the new key never reached the gateway"
            time.sleep(0.5)
            continue
        tally.answered(RequestClass.WRITE, out["ResponseMetadata"])
        return


def export(cluster: Cluster, start_s: float, fmt: str) -> str:
    frm = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(start_s))
    to = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() + 3600))
    return str(admin(cluster, "usage", "--tenant", TENANT, "--from", frm, "--to", to, fmt))


def merged(tallies: list[Tally]) -> Tally:
    out = Tally()
    for t in tallies:
        for cls, n in t.requests.items():
            out.requests[cls] += n
        out.bytes_in += t.bytes_in
        out.bytes_out += t.bytes_out
    return out


def test_usage_export_equals_the_script_across_a_sigkill(cluster: Cluster) -> None:
    seed = random.randrange(2**32)
    print(f"metering workload seed={seed}")
    start_s = time.time()
    admin(cluster, "tenant", "create", TENANT, "--json")
    key = json.loads(admin(cluster, "key", "create", "--tenant", TENANT, "--json"))
    gw1 = cluster.endpoint
    gw2 = f"http://127.0.0.1:{cluster.specs['gw2'].port}"
    setup = Tally()
    wait_for_key(s3(gw1, key), setup)
    wait_for_key(s3(gw2, key), setup)
    call(setup, RequestClass.WRITE, s3(gw1, key).create_bucket, Bucket=BUCKET)

    # Phase 1: both gateways at once; gw2 is killed the moment its last answer arrived,
    # before any timer could have flushed its counts.
    with ThreadPoolExecutor(2) as pool:
        on1 = pool.submit(run_ops, seed, s3(gw1, key), OPS_PER_PHASE)
        on2 = pool.submit(run_ops, seed + 1, s3(gw2, key), OPS_PER_PHASE)
        phase1 = [on2.result()]
        cluster.kill("gw2")
        phase1.append(on1.result())
    cluster.start("gw2")
    # Phase 2: the restarted gateway (a new writer) and the survivor.
    with ThreadPoolExecutor(2) as pool:
        phase2 = list(pool.map(lambda a: run_ops(seed + a[0], s3(a[1], key), OPS_PER_PHASE),
                               [(2, gw1), (3, gw2)]))
    want = merged([setup, *phase1, *phase2])
    want_requests = {c.value: want.requests[c] for c in RequestClass}
    want_total: dict[str, Any] = {"requests": want_requests, "bytes_in": want.bytes_in,
                                  "bytes_out": want.bytes_out}

    # The gateways' journals reach the store every usage_flush_s (1 s): the export gets
    # there, and never counts more on its way.
    deadline = time.monotonic() + EXPORT_WAIT_S
    while True:
        doc = json.loads(export(cluster, start_s, "--json"))
        got = {k: doc["total"][k] for k in want_total}
        assert all(got["requests"][c] <= n for c, n in want_requests.items()), seed
        if got == want_total or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert got == want_total, seed
    assert {r["bucket"] for r in doc["rows"]} <= {"", BUCKET}
    rows = list(csv.DictReader(io.StringIO(export(cluster, start_s, "--csv"))))
    assert rows[-1]["hour"] == "total"
    assert int(rows[-1]["bytes_in"]) == want.bytes_in
    assert sum(int(r["bytes_out"]) for r in rows[:-1]) == want.bytes_out


def test_stored_bytes_are_sampled_into_byte_seconds(cluster: Cluster) -> None:
    key = json.loads(admin(cluster, "key", "create", "--tenant", TENANT, "--json"))
    client = s3(cluster.endpoint, key)
    deadline = time.monotonic() + KEY_WAIT_S
    while True:
        try:
            client.create_bucket(Bucket="sampled")
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.5)
    client.put_object(Bucket="sampled", Key="a", Body=b"x" * 5000)
    start_s = time.time() - 3600
    deadline = time.monotonic() + 20 * int(SAMPLE_S)
    while True:     # until a sample taken after the PUT has been written
        doc = json.loads(admin(cluster, "usage", "--tenant", TENANT, "--bucket", "sampled",
                               "--from", time.strftime("%Y-%m-%dT%H:00:00Z",
                                                       time.gmtime(start_s)),
                               "--to", "2100-01-01", "--json"))
        seconds = doc["total"]["byte_seconds"]
        if seconds > 0:
            break
        assert time.monotonic() < deadline, "no stored-bytes sample was ever written"
        time.sleep(0.5)
    # Every sample stands for one period of the 5000 bytes stored (never a partial value).
    assert seconds % (5000 * int(SAMPLE_S)) == 0
