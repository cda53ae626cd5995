"""The erasure-coded data path on real processes: random ranges against reference bytes,
a corrupted fragment, any m nodes down, and storage policies beside the default."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cluster.harness import Cluster, gateway_gauges, running_cluster

MIB = 1024 * 1024
RETIRE_S = 6.0
SIZES = [1, 65_537, 1_048_576 + 1, 3 * MIB + 17]
BODIES = {n: random.Random(n).randbytes(n) for n in SIZES}


@pytest.fixture(scope="module")
def s3(cluster: Cluster):  # type: ignore[no-untyped-def]
    client = cluster.s3()
    client.create_bucket(Bucket="data")
    for n, body in BODIES.items():
        client.put_object(Bucket="data", Key=f"obj-{n}", Body=body)
    return client


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_ranges(s3, data: st.DataObject) -> None:  # type: ignore[no-untyped-def]
    size = data.draw(st.sampled_from(SIZES))
    start = data.draw(st.integers(0, size - 1))
    end = data.draw(st.integers(start, size - 1))
    got = s3.get_object(Bucket="data", Key=f"obj-{size}", Range=f"bytes={start}-{end}")
    assert got["Body"].read() == BODIES[size][start:end + 1]
    assert got["ContentRange"] == f"bytes {start}-{end}/{size}"


def _segments(cluster: Cluster, node: int) -> list[Path]:
    return sorted((cluster.root / "nodes" / f"n{node}").rglob("*.seg"),
                  key=lambda p: p.stat().st_mtime)


def test_corrupted_fragment_still_reads(cluster: Cluster, s3) -> None:  # type: ignore[no-untyped-def]
    body = random.Random(99).randbytes(8 * MIB)
    s3.put_object(Bucket="data", Key="to-corrupt", Body=body)
    for node in range(2):                    # m = 2 corrupted fragments: still readable
        seg = _segments(cluster, node)[-1]
        size = seg.stat().st_size
        with open(seg, "r+b") as f:          # flip bytes inside the newest fragment's data
            f.seek(size - MIB)
            chunk = bytearray(f.read(64))
            f.seek(size - MIB)
            f.write(bytes(b ^ 0xFF for b in chunk))
    assert s3.get_object(Bucket="data", Key="to-corrupt")["Body"].read() == body
    rng = s3.get_object(Bucket="data", Key="to-corrupt", Range=f"bytes={MIB}-{6 * MIB}")
    assert rng["Body"].read() == body[MIB:6 * MIB + 1]


def test_any_two_nodes_down(cluster: Cluster, s3) -> None:  # type: ignore[no-untyped-def]
    names = cluster.node_names()
    pairs = list(itertools.combinations(names, 2))
    seed = random.randrange(1 << 30)
    print("seed", seed)
    for pair in random.Random(seed).sample(pairs, 3):
        for n in pair:
            cluster.kill(n)
        try:
            for size, body in BODIES.items():
                assert s3.get_object(Bucket="data", Key=f"obj-{size}")["Body"].read() == body
        finally:
            for n in pair:
                cluster.start(n)


@pytest.fixture(scope="module")
def wide() -> Iterator[Cluster]:
    with running_cluster(devices_per_node=2,
                         extra='extra_policies = ["ec 8+3", "replicate 3"]') as c:
        yield c


def _create_with_policy(s3, bucket: str, policy: str) -> None:  # type: ignore[no-untyped-def]
    def add(request, **_kw):  # type: ignore[no-untyped-def]
        request.headers["x-coffre-storage-policy"] = policy

    s3.meta.events.register_first("before-sign.s3.CreateBucket", add)
    try:
        s3.create_bucket(Bucket=bucket)
    finally:
        s3.meta.events.unregister("before-sign.s3.CreateBucket", add)


def _device_bytes(cluster: Cluster) -> list[int]:
    return [sum(p.stat().st_size for p in d.rglob("*.seg"))
            for d in sorted((cluster.root / "nodes").glob("n*/d*"))]


def test_storage_policies(wide: Cluster) -> None:
    s3 = wide.s3()
    policies = {"ec42": None, "ec83": "ec 8+3", "rep3": "replicate 3"}
    for bucket, policy in policies.items():
        if policy is None:
            s3.create_bucket(Bucket=bucket)
        else:
            _create_with_policy(s3, bucket, policy)
    for bucket in policies:
        for n in (100, 70_000, 5 * MIB + 3):
            body = random.Random(n).randbytes(n)
            s3.put_object(Bucket=bucket, Key=f"k{n}", Body=body)
            assert s3.get_object(Bucket=bucket, Key=f"k{n}")["Body"].read() == body
    # Where the bytes go: 8+3 spreads 11 fragments of size/8; replicate 3 keeps 3 copies.
    for bucket, pieces, piece in (("ec83", 11, 8 * MIB / 8), ("rep3", 3, 8 * MIB)):
        before = _device_bytes(wide)
        s3.put_object(Bucket=bucket, Key="placed", Body=random.Random(5).randbytes(8 * MIB))
        grown = [b - a for a, b in zip(before, _device_bytes(wide), strict=True)]
        holders = [g for g in grown if g > piece * 0.9]
        assert len(holders) == pieces, (bucket, grown)
    with pytest.raises(ClientError) as exc:
        _create_with_policy(s3, "too-wide", "ec 10+4")
    assert exc.value.response["Error"]["Code"] == "InvalidArgument"


def test_stalled_node_is_hedged(cluster: Cluster, s3) -> None:  # type: ignore[no-untyped-def]
    """A node frozen with SIGSTOP neither answers nor fails: reads must go to parity after
    the hedge delay and writes must drop its fragment, well before the 30 s node timeout
    (the client gives up after 15 s)."""
    import os
    import signal

    impatient = cluster.s3(config_read_timeout=15)
    body = random.Random(7).randbytes(3 * MIB + 5)
    impatient.put_object(Bucket="data", Key="hedged", Body=body)
    frozen = cluster.procs[cluster.node_names()[0]]
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        for n, ref in BODIES.items():
            assert impatient.get_object(Bucket="data", Key=f"obj-{n}")["Body"].read() == ref
        assert impatient.get_object(Bucket="data", Key="hedged")["Body"].read() == body
        impatient.put_object(Bucket="data", Key="while-frozen", Body=body)
        assert impatient.get_object(Bucket="data", Key="while-frozen")["Body"].read() == body
    finally:
        os.kill(frozen.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def tuned() -> Iterator[Cluster]:
    """A gateway with an 8 MiB memory budget (one 4+2 stripe of 1 MiB blocks holds 6) and
    replaced data deleted after RETIRE_S."""
    with running_cluster(
            gateway_extra=f"memory_budget_mib = 8\nretire_after_s = {RETIRE_S}") as c:
        yield c


def test_memory_budget_bounds_concurrent_transfers(tuned: Cluster) -> None:
    """An 8 MiB budget shared by 6 concurrent 6 MiB uploads and downloads: every byte right,
    nothing stuck, and the gateway never held more than the budget (its own gauge)."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    c = tuned
    s3 = c.s3()
    s3.create_bucket(Bucket="budget")
    bodies = {f"o{i}": random.randbytes(6 * 1024 * 1024 + i) for i in range(6)}
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda kv: c.s3().put_object(Bucket="budget", Key=kv[0], Body=kv[1]),
                      bodies.items()))
        got = dict(pool.map(
            lambda k: (k, c.s3().get_object(Bucket="budget", Key=k)["Body"].read()),
            bodies))
    for key, body in bodies.items():
        assert hashlib.md5(got[key]).digest() == hashlib.md5(body).digest(), key
    gauges = gateway_gauges(c)
    assert gauges["coffre_gateway_inflight_object_bytes"] == 0
    assert 0 < gauges["coffre_gateway_inflight_object_bytes_peak"] <= 8 * 1024 * 1024


def test_gets_racing_overwrites_and_deletes_get_whole_objects(cluster: Cluster, s3) -> None:  # type: ignore[no-untyped-def]
    """A GET that read the manifest just before an overwrite or a DELETE streams the old
    object whole (before gateway.retire, its fragments were deleted under it: cut bodies)."""
    import threading

    s3.put_object(Bucket="data", Key="raced", Body=b"\0" * 300_000)
    stop, writer_errors = threading.Event(), []

    def writer() -> None:
        w, i = cluster.s3(), 0
        while not stop.is_set():
            i += 1
            try:
                if i % 3:
                    size = random.choice([300_000, 2 * MIB + 1])
                    w.put_object(Bucket="data", Key="raced", Body=bytes([i % 256]) * size)
                else:
                    w.delete_object(Bucket="data", Key="raced")
            except ClientError as exc:
                writer_errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    outcomes: dict[str, int] = {}
    try:
        for _ in range(150):
            try:
                got = s3.get_object(Bucket="data", Key="raced")
                body = got["Body"].read()   # a cut body raises here
                whole = len(body) == got["ContentLength"] and len(set(body)) == 1
                outcome = "whole" if whole else "wrong bytes"
            except ClientError as exc:
                outcome = exc.response["Error"]["Code"]
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    finally:
        stop.set()
        thread.join()
    print("racing GETs", outcomes)
    assert set(outcomes) <= {"whole", "NoSuchKey"}, outcomes
    assert outcomes.get("whole", 0) > 0 and not writer_errors


async def _data_ids(cluster: Cluster) -> set[bytes]:
    from tests.cluster.test_orphans import _fragments
    return set(await _fragments(cluster))


def test_replaced_data_is_deleted_after_the_delay(tuned: Cluster) -> None:
    """The replaced object's fragments stay RETIRE_S (GETs may still stream them), then go;
    the deleted object's too."""
    import asyncio
    import time

    s3 = tuned.s3()
    s3.create_bucket(Bucket="retired")
    s3.put_object(Bucket="retired", Key="k", Body=random.randbytes(300_000))
    before = asyncio.run(_data_ids(tuned))
    replaced_at = time.monotonic()
    s3.put_object(Bucket="retired", Key="k", Body=random.randbytes(300_000))
    s3.put_object(Bucket="retired", Key="gone", Body=random.randbytes(300_000))
    s3.delete_object(Bucket="retired", Key="gone")
    after = asyncio.run(_data_ids(tuned))
    if time.monotonic() - replaced_at < RETIRE_S:   # (a very slow machine cannot tell)
        assert before <= after and len(after) == len(before) + 2
        assert gateway_gauges(tuned)["coffre_gateway_retired_objects_pending"] == 2
    deadline = time.monotonic() + RETIRE_S + 60
    while True:
        now = asyncio.run(_data_ids(tuned))
        if len(now) == len(before):
            break
        assert time.monotonic() < deadline, (len(before), len(now))
        time.sleep(1)
    assert now != before                # the new data of "k" replaced the old
    assert gateway_gauges(tuned)["coffre_gateway_retired_objects_pending"] == 0


def test_one_gib_up_and_down_in_bounded_gateway_memory(cluster: Cluster, s3,  # type: ignore[no-untyped-def]
                                                       tmp_path: Path) -> None:
    """1 GiB through boto3 (a signed payload: SHA-256 and MD5 both hashed on the way in),
    back byte-identical, and the gateway's resident set stays under 250 MB throughout. A
    hash that lagged the sends used to keep every stripe behind it: 280-326 MiB."""
    import hashlib
    import threading
    import time

    from bench.memory_bench import rss_mib, write_source

    size = 1024 * MIB
    src = tmp_path / "source.bin"
    want = write_source(str(src), size, 7)
    pid = cluster.procs["gateway"].pid
    peak = [rss_mib(pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        with open(src, "rb") as f:
            s3.put_object(Bucket="data", Key="one-gib", Body=f, ContentLength=size)
        src.unlink()
        body = s3.get_object(Bucket="data", Key="one-gib")["Body"]
        sha, got = hashlib.sha256(), 0
        while chunk := body.read(MIB):
            sha.update(chunk)
            got += len(chunk)
    finally:
        stop.set()
        sampler.join()
    assert got == size and sha.digest() == want
    assert peak[0] < 250 * 1e6 / MIB, f"gateway RSS peaked at {peak[0]:.0f} MiB"
    s3.delete_object(Bucket="data", Key="one-gib")
