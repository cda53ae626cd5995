"""The load generator against the in-memory stub server (the one place a stub is right).

Checks that every workload runs clean against a server that verifies the bytes it receives,
that wrong bytes, a dead server and bad listings are counted as errors, and the pure pieces:
seeded bodies, percentiles, the comparison table.
"""

import datetime
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from bench import compare
from bench.bodies import BodySource, Checker
from bench.limits import CHUNK_BYTES
from bench.loadgen import Bench, RunOptions, Target, parse_workloads, run_phase, run_workloads
from bench.signer import SignerKind
from bench.stats import PhaseReport, percentile
from bench.stubserver import make_app
from bench.workloads import JobContext, PutSmall, Sizes, Workload

SEED = 7
TINY = Sizes(
    small_bytes=4096,
    large_bytes=3 * 1024 * 1024 + 7,  # not a multiple of any chunk size
    range_object_bytes=5 * 1024 * 1024 + 3,
    range_bytes=300_001,
    part_bytes=700_000,
    parts=3,
    list_keys=120,
    list_prefixes=12,
    key_pool=40,
)
OPTIONS = RunOptions(concurrency=4, duration_s=30.0, max_ops=24, seed=SEED, sizes=TINY)


async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def stub() -> AsyncIterator[str]:
    async for url in _serve(make_app(SEED, check_puts=True)):
        yield url


@pytest.fixture
async def corrupt_stub() -> AsyncIterator[str]:
    async for url in _serve(make_app(SEED, corrupt_reads=True)):
        yield url


def _target(url: str) -> Target:
    return Target("stub", url, "AKIDEXAMPLE", "secret", bucket="b")


@pytest.mark.parametrize("signer", list(SignerKind))
async def test_every_workload_runs_clean(stub: str, signer: SignerKind) -> None:
    options = replace(OPTIONS, signer=signer, signed_payload=signer is SignerKind.BOTOCORE)
    reports = await run_workloads(_target(stub), list(Workload), options)
    for r in reports:
        assert r.errors == 0, (r.workload, r.error_kinds)
        assert r.ops == OPTIONS.max_ops, r.workload
    by_name = {r.workload: r for r in reports}
    per_op = {w: by_name[w].mb_per_s / by_name[w].ops_per_s * 1e6 for w in by_name}
    assert per_op["get-large"] == pytest.approx(TINY.large_bytes)
    assert per_op["get-range"] == pytest.approx(TINY.range_bytes)
    assert per_op["multipart"] == pytest.approx(TINY.part_bytes * TINY.parts)
    flat = by_name["list-flat"]
    assert flat.items_per_s / flat.ops_per_s == pytest.approx(TINY.list_keys)


async def test_wrong_bytes_are_errors(corrupt_stub: str) -> None:
    for workload in (Workload.GET_SMALL, Workload.GET_LARGE, Workload.GET_RANGE):
        (report,) = await run_workloads(_target(corrupt_stub), [workload], OPTIONS)
        assert report.ops == 0
        assert report.error_kinds == {"bad bytes": OPTIONS.max_ops}


async def test_stub_rejects_bytes_that_are_not_the_seed(stub: str) -> None:
    # The client of another seed sends other bytes: the checking stub must refuse them, which
    # shows the clean run above did send the seeded bytes.
    options = replace(OPTIONS, seed=SEED + 1)
    (report,) = await run_workloads(_target(stub), [Workload.PUT_SMALL], options)
    assert report.error_kinds == {"HTTP 400": OPTIONS.max_ops}


async def test_a_listing_with_a_missing_key_is_an_error(stub: str) -> None:
    async with Bench(_target(stub), OPTIONS) as bench:
        await bench.prepare(Workload.LIST_FLAT)
        delete = await bench.client.delete("b-list-120-12", "p003/k00004")
        assert delete.ok
        report = await bench.run(Workload.LIST_FLAT)
    assert report.error_kinds == {"wrong count": OPTIONS.max_ops}


async def test_mixed_reads_what_it_wrote(stub: str) -> None:
    options = replace(OPTIONS, max_ops=400, concurrency=16)
    async with Bench(_target(stub), options) as bench:
        first = await bench.run(Workload.MIXED)
        second = await bench.run(Workload.MIXED)  # the state of the first round is kept
    assert first.errors == 0 and second.errors == 0
    assert first.ops == second.ops == 400


async def test_dead_server_counts_transport_errors() -> None:
    async for url in _serve(make_app(SEED)):
        dead = url  # the port is free again once the server is gone
    async with Bench(_target(dead), OPTIONS) as bench:
        job = PutSmall(JobContext(bench.client, "b", SEED, TINY))
        report = await run_phase(job, "put-small", "dead", 2, 30.0, 5)
    assert report.ops == 0
    assert report.errors == 5
    assert set(report.error_kinds) == {"ClientConnectorError"}


def test_bodies_are_seeded_and_checkable() -> None:
    seed = random.randrange(1 << 30)
    print(f"seed {seed}")
    rng = random.Random(seed)
    source = BodySource(seed)
    assert source.body("k", 10_000) == BodySource(seed).body("k", 10_000)
    assert source.body("k", 10_000) != source.body("j", 10_000)
    size = 3 * CHUNK_BYTES + 17
    body = source.body("obj", size)
    assert len(body) == size
    start = rng.randrange(size)
    checker = Checker(source, "obj", start)
    pos = start
    while pos < size:  # fed in pieces of random sizes, as a socket delivers them
        n = rng.randint(1, 3 * CHUNK_BYTES)
        checker.feed(body[pos : pos + n])
        pos += n
    assert checker.ok and checker.received_bytes == size - start
    flipped = bytearray(body)
    flipped[rng.randrange(size)] ^= 1
    assert not source.matches("obj", 0, bytes(flipped))


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([], 0.5) == 0
    assert percentile([7], 0.99) == 7


def test_parse_workloads_aliases() -> None:
    assert parse_workloads("list") == [Workload.LIST_FLAT, Workload.LIST_DELIM, Workload.LIST_ROOT]
    assert parse_workloads("all") == list(Workload)
    with pytest.raises(ValueError):
        parse_workloads("put-everything")


def _report(workload: str, ops_per_s: float, mb_per_s: float, errors: int = 0) -> PhaseReport:
    return PhaseReport(
        workload=workload, target="t", concurrency=1, ops=10, errors=errors, error_kinds={},
        elapsed_s=1.0, ops_per_s=ops_per_s, mb_per_s=mb_per_s, items_per_s=0.0, p50_ms=2.0,
        p99_ms=3.0, max_ms=4.0, client_cpu_fraction=0.1, client_cpu_us_per_op=5.0,
        client_bound=False,
    )


def test_compare_medians_ratio_and_table(tmp_path: Path) -> None:
    a = {Workload.PUT_SMALL: [_report("put-small", v, 0.1) for v in (900, 1000, 1500)],
         Workload.GET_LARGE: [_report("get-large", 1, v) for v in (300, 200, 100)]}
    b = {Workload.PUT_SMALL: [_report("put-small", v, 0.1) for v in (40, 50, 60)],
         Workload.GET_LARGE: [_report("get-large", 1, v, errors=1) for v in (100, 100, 100)]}
    rows = compare.build_rows([Workload.PUT_SMALL, Workload.GET_LARGE], a, b)
    assert rows[0].a.median == 1000 and rows[0].b is not None and rows[0].b.median == 50
    assert rows[0].ratio == pytest.approx(20.0)
    assert rows[1].ratio == pytest.approx(2.0)
    table = compare.markdown_table(rows, "coffre", "swift")
    assert "| put-small | ops/s | 1,000 | 900..1,500 |" in table
    assert "20.00x | 25x not met |" in table
    assert "| 3 | 10% |" in table  # swift's get-large errors summed over rounds, client cpu
    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    first = compare.results_path("x", when, tmp_path)
    assert first.name == "2026-01-02-x.md"
    first.write_text("")
    assert compare.results_path("x", when, tmp_path).name == "2026-01-02-x-2.md"


SIGN_CASES = [
    ("GET", "http://127.0.0.1:8080/b/k/x%20y", {}),
    ("GET", "http://127.0.0.1:9000/b?prefix=p%2F&list-type=2&delimiter=%2F", {"Range": "b=1-2"}),
    ("PUT", "http://127.0.0.1:9000/b/k?partNumber=3&uploadId=a%2Bb", {"Content-Length": "5"}),
    ("POST", "http://127.0.0.1:80/b/k?uploads=", {}),
]


@pytest.mark.parametrize(("method", "url", "headers"), SIGN_CASES)
def test_fast_signer_agrees_with_gateway_and_botocore(
    method: str, url: str, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.auth

    from bench.signer import BotocoreSigner, FastSigner
    from gateway.sigv4_client import sign_request

    now = datetime.datetime(2026, 11, 28, 23, 59, 59, tzinfo=datetime.UTC)
    payload = "UNSIGNED-PAYLOAD"
    fast = FastSigner("AKID", "secret/key", "us-east-1").sign_at(
        method, url, headers, payload, now.timestamp()
    )
    gateway = sign_request(method, url, headers, "AKID", "secret/key", "us-east-1", now, payload)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now.replace(tzinfo=None))
    boto = BotocoreSigner("AKID", "secret/key", "us-east-1").sign(method, url, headers, payload)
    assert fast["Authorization"] == gateway["authorization"] == boto["Authorization"]
    assert fast["x-amz-date"] == "20261128T235959Z"


async def test_compare_alternates_and_skips_what_a_side_cannot_prepare(stub: str) -> None:
    async for url in _serve(make_app(SEED)):
        other = url
        options = replace(OPTIONS, max_ops=6)
        workloads = [Workload.PUT_SMALL, Workload.GET_SMALL]
        result = await compare.compare(_target(stub), _target(other), workloads, options, 2)
        assert result.skipped == {}
        assert result.b is not None
        for side in (result.a, result.b):
            assert [len(side[w]) for w in workloads] == [2, 2]
            assert all(r.ops == 6 and r.errors == 0 for w in workloads for r in side[w])
    dead = other  # that server is gone now
    result = await compare.compare(_target(stub), _target(dead), workloads, options, 1)
    assert set(result.skipped) == set(workloads)
    assert "ClientConnectorError" in result.skipped[Workload.PUT_SMALL]
