"""The rebalancer against real processes: grow a 6-node cluster to 7, then lose a node for
good; after each change every object reads back byte-identical and every fragment sits
exactly where the data ring says, with all k+m fragments of every data id present."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster import rebalance_helpers as rh
from tests.cluster.harness import Cluster, new_cluster


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # Two data rings (ec 4+2 and replicate 3) share partition numbers: the rebalancer must
    # tell their fragments apart.
    c = new_cluster(extra='extra_policies = ["replicate 3"]')
    c.start()
    yield c
    c.stop()
    if not os.environ.get("COFFRE_KEEP"):  # keep the logs and data for a post-mortem
        shutil.rmtree(c.root, ignore_errors=True)


def _sizes(rng: random.Random, count: int) -> list[int]:
    # A third small enough to live inline in the manifest (metadata only), the rest erasure
    # coded: one stripe, several stripes, and odd lengths that pad the last stripe.
    out = []
    for i in range(count):
        kind = i % 3
        if kind == 0:
            out.append(rng.randrange(0, 60_000))
        elif kind == 1:
            out.append(rng.randrange(70_000, 400_000))
        else:
            out.append(rng.randrange(1_000_000, 2_600_000))
    return out


def _create_buckets(s3: Any) -> None:
    s3.create_bucket(Bucket="reb")

    def policy(request: Any, **_: Any) -> None:
        request.headers["x-coffre-storage-policy"] = "replicate 3"

    s3.meta.events.register("before-sign.s3.CreateBucket", policy)
    s3.create_bucket(Bucket="rep")
    s3.meta.events.unregister("before-sign.s3.CreateBucket", policy)


def _write(s3: Any, count: int, seed: int) -> dict[str, str]:
    """`count` objects, every fourth in the replicated bucket; "bucket/key" -> MD5."""
    rng = random.Random(seed)
    digests = {}
    _create_buckets(s3)
    for i, size in enumerate(_sizes(rng, count)):
        body = rng.randbytes(size)
        bucket = "rep" if i % 4 == 3 else "reb"
        s3.put_object(Bucket=bucket, Key=f"obj/{i:05d}", Body=body)
        digests[f"{bucket}/obj/{i:05d}"] = hashlib.md5(body).hexdigest()
    return digests


def _check_reads(s3: Any, digests: dict[str, str]) -> None:
    bad = []
    for name, digest in digests.items():
        bucket, key = name.split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if hashlib.md5(body).hexdigest() != digest:
            bad.append(name)
    assert not bad, f"{len(bad)} objects differ: {bad[:5]}"


def _check_placement(cluster: Cluster, live: dict[int, str]) -> rh.Audit:
    audit = rh.audit(cluster, live)
    assert not audit.misplaced, audit.misplaced[:10]
    assert not audit.incomplete, audit.incomplete[:10]
    assert not audit.meta_stale, audit.meta_stale[:10]
    return audit


def _grow_then_fail(cluster: Cluster, count: int, seed: int, drain: bool = False) -> None:
    print(f"seed={seed} objects={count}")
    s3 = cluster.s3()
    digests = _write(s3, count, seed)
    before = _check_placement(cluster, rh.ring_devices(cluster))
    total = sum(before.bytes_by_device.values())

    _name, addr = rh.add_node(cluster, 6)
    rings = str(cluster.config.rings_dir)
    start = rh.status(cluster)
    # Paused, the change moves nothing: the audit must see the data in the wrong place.
    assert rh.rebalance("pause", "--rings-dir", rings)[0] == 0
    rh.change_rings(cluster, ["add", "--id", "6", "--addr", addr,
                              "--domain", "local/z1/n6/d0", "--weight", "1"])
    live = rh.ring_devices(cluster)
    stale = rh.audit(cluster, live)
    assert stale.misplaced and stale.bytes_by_device[6] == 0
    assert not rh.rebalance("status", "--rings-dir", rings)[1]["done"]
    t0 = time.monotonic()
    assert rh.rebalance("resume", "--rings-dir", rings)[0] == 0
    status = rh.wait_done(cluster, 600)
    took = time.monotonic() - t0
    assert 6 in live
    after = _check_placement(cluster, live)
    _check_reads(s3, digests)
    # Whatever sits on the new device had to move there: that is the optimum.
    optimal = after.bytes_by_device[6]
    moved = rh.moved_since(start, status, "bytes_moved")
    assert moved == status["bytes_moved"]  # one movement: the "since change" view agrees
    print(f"add: moved {moved} bytes, optimal {optimal} (ideal 1/7 share "
          f"{total // 7}), ratio {moved / max(1, optimal):.3f}, {took:.1f} s")
    assert optimal > 0
    assert rh.moved_since(start, status, "fragments_rebuilt") == 0  # in transit, not lost
    assert moved <= 1.1 * optimal
    assert sum(after.bytes_by_device.values()) == total  # nothing left behind, no copies

    now = int(time.time())
    if drain:
        _drain(cluster, s3, digests, after, now + 2 * 3600)
        # Width 6 needs 7 devices to lose one: a fresh node joins (a drained id stays
        # reserved while readers may still look there).
        _, addr = rh.add_node(cluster, 7)
        rh.change_rings(cluster, ["add", "--id", "7", "--addr", addr,
                                  "--domain", "local/z1/n7/d0", "--weight", "1"], now + 4 * 3600)
        rh.wait_done(cluster, 600)
        after = _check_placement(cluster, rh.ring_devices(cluster))

    cluster.kill("node2")
    rh.change_rings(cluster, ["fail", "--id", "2"], now=now + 6 * 3600)
    status = rh.wait_done(cluster, 600)
    live = rh.ring_devices(cluster)
    assert 2 not in live
    rebuilt = _check_placement(cluster, live)
    assert rebuilt.data_ids == after.data_ids
    _check_reads(s3, digests)
    print(f"fail: rebuilt {status['fragments_rebuilt']} fragments, "
          f"{status['bytes_rebuilt']} bytes")
    assert status["fragments_rebuilt"] > 0


def _drain(cluster: Cluster, s3: Any, digests: dict[str, str], before: rh.Audit,
           now: int) -> None:
    """Remove device 6 again: everything it holds moves away, nothing stays behind."""
    addr = rh.ring_devices(cluster)[6]
    start = rh.status(cluster)
    rh.change_rings(cluster, ["remove", "--id", "6"], now=now)
    status = rh.wait_done(cluster, 600)
    live = rh.ring_devices(cluster)
    assert 6 not in live
    drained = _check_placement(cluster, {**live, 6: addr})  # device 6 is audited too
    assert drained.bytes_by_device[6] == 0
    _check_reads(s3, digests)
    optimal = before.bytes_by_device[6]
    moved = rh.moved_since(start, status, "bytes_moved")
    print(f"drain: moved {moved} bytes, optimal {optimal}")
    assert optimal <= moved <= 1.1 * optimal


# Long, not default: it runs 75-120 s here. It once hung with 2 of 192 units of one node
# never finished; not reproduced since (5 runs). What could hold a unit forever is fixed:
# data ids now say their width and k (no guess from peers' listings, which a slow peer
# could skew), and every unit re-runs at least every interval_s even while others stay
# unfinished (a done unit may be what another node's unit waits for). A stuck unit now
# says why in `status` ("unfinished", "slow_units"), and wait_done prints it.
@pytest.mark.long
@pytest.mark.timeout(900)
def test_add_node_then_fail_node(cluster: Cluster) -> None:
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    _grow_then_fail(cluster, 150, seed)


@pytest.mark.long
@pytest.mark.timeout(2400)  # 2,000 objects written and read back four times
def test_add_node_then_fail_node_2000(cluster: Cluster) -> None:
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    _grow_then_fail(cluster, 2000, seed, drain=True)


def test_status_pause_throttle_cli(cluster: Cluster) -> None:
    rings = str(cluster.config.rings_dir)
    s3 = cluster.s3()
    s3.create_bucket(Bucket="plan")
    for i in range(8):
        s3.put_object(Bucket="plan", Key=f"k{i}", Body=os.urandom(300_000))
    old = cluster.root / "old.ring"
    new = cluster.root / "new.ring"
    shutil.copy(cluster.config.rings_dir / "data-6.ring", old)
    shutil.copy(old, new)
    assert rh.ring("add", str(new), "--id", "9", "--addr", "127.0.0.1:9", "--domain",
                   "local/z1/n9/d0", "--weight", "1")[0] == 0
    assert rh.ring("rebalance", str(new))[0] == 0
    code, moves = rh.rebalance("plan", str(old), str(new), "--mbps", "1")
    assert code == 0 and moves["slots_moved"] > 0
    # What moves is what the old owners of the moved slots hold: 8 objects x 6 fragments.
    assert 0 < moves["fragments_moved"] < 8 * 6
    assert moves["eta_s"] == max(f["bytes_out"] for f in moves["nodes"]) / 1e6
    into = {f["addr"]: f["bytes_in"] for f in moves["nodes"]}
    assert into["127.0.0.1:9"] == moves["bytes_moved"]
    code, doc = rh.rebalance("throttle", "7.5", "--concurrency", "2",
                           "--rings-dir", rings)
    assert code == 0
    assert all(s["bytes_per_s"] == 7.5e6 and s["concurrency"] == 2
               for s in doc["nodes"].values())
    code, doc = rh.rebalance("pause", "--rings-dir", rings)
    assert code == 0 and doc["paused"]
    code, doc = rh.rebalance("resume", "--rings-dir", rings)
    assert code == 0 and not doc["paused"]
    doc = rh.wait_done(cluster, 60)
    assert doc["bytes_left"] == 0 and doc["errors"] == 0
    cluster.kill("node3")
    code, doc = rh.rebalance("status", "--rings-dir", rings)
    assert code == 0 and not doc["done"] and len(doc["unreachable"]) == 1


def _per_node(doc: dict[str, Any], field: str) -> dict[str, int]:
    return {a: int(s.get(field, 0)) for a, s in doc["nodes"].items() if s.get("reachable", 1)}


@pytest.mark.long
def test_throttle_pause_and_sigkill_resume(cluster: Cluster) -> None:
    """Throttle honoured within 20% over a 30 s window, pause stops movement within 2 s,
    and a node SIGKILLed mid-move resumes from its progress and finishes."""
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    rng = random.Random(seed)
    s3 = cluster.s3()
    s3.create_bucket(Bucket="reb")
    digests = {}
    for i in range(40):
        body = rng.randbytes(rng.randrange(2_000_000, 2_500_000))
        s3.put_object(Bucket="reb", Key=f"big/{i}", Body=body)
        digests[f"reb/big/{i}"] = hashlib.md5(body).hexdigest()
    rings = str(cluster.config.rings_dir)
    limit = 60_000  # bytes/s per node: each sender has ~3 MB to move, ~50 s of work
    assert rh.rebalance("throttle", str(limit / 1e6), "--rings-dir", rings)[0] == 0
    _, addr = rh.add_node(cluster, 6)
    rh.change_rings(cluster, ["add", "--id", "6", "--addr", addr,
                              "--domain", "local/z1/n6/d0", "--weight", "1"])
    time.sleep(3)
    _, first = rh.rebalance("status", "--rings-dir", rings)
    window_s = 30
    time.sleep(window_s)
    _, last = rh.rebalance("status", "--rings-dir", rings)
    a, b = _per_node(first, "bytes_transferred"), _per_node(last, "bytes_transferred")
    rates = {n: (b[n] - a.get(n, 0)) / window_s for n in b}
    # A node still sending at the end of the window had enough to move for all of it:
    # its rate must be the throttle's, within 20 % both ways.
    busy = [n for n, left in _per_node(last, "bytes_left").items() if left > limit]
    print("rates", rates, "busy", busy)
    assert all(r <= 1.2 * limit for r in rates.values())
    assert busy and all(rates[n] >= 0.8 * limit for n in busy), (rates, busy)

    assert rh.rebalance("pause", "--rings-dir", rings)[0] == 0
    time.sleep(2)
    _, p1 = rh.rebalance("status", "--rings-dir", rings)
    time.sleep(3)
    _, p2 = rh.rebalance("status", "--rings-dir", rings)
    assert _per_node(p1, "bytes_transferred") == _per_node(p2, "bytes_transferred")

    left = _per_node(p2, "bytes_left")
    vaddr = max(left, key=lambda a: left[a])
    assert left[vaddr] > 0, "nothing left to interrupt: lower the throttle"
    victim = next(n for n, spec in cluster.specs.items() if vaddr.endswith(f":{spec.port}"))
    cluster.kill(victim)  # SIGKILL while paused in the middle of its moves
    cluster.start(victim)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = rh.rebalance("status", "--nodes", vaddr)[1]["nodes"][vaddr]
        if st.get("units_total"):
            break
        time.sleep(0.2)
    assert st["paused"]  # the pause survived the crash
    assert 0 < st["units_done"] < st["units_total"]  # it resumes, it does not start over
    assert rh.rebalance("throttle", "0", "--rings-dir", rings)[0] == 0
    assert rh.rebalance("resume", "--rings-dir", rings)[0] == 0
    rh.wait_done(cluster, 300)
    _check_placement(cluster, rh.ring_devices(cluster))
    _check_reads(s3, digests)


class _Load(threading.Thread):
    """Mixed GET/PUT traffic on its own S3 client; counts every failed request."""

    def __init__(self, cluster: Cluster, digests: dict[str, str], seed: int) -> None:
        super().__init__(daemon=True)
        self.s3: Any = cluster.s3()
        self.digests = dict(digests)
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.ops = 0

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            try:
                if self.rng.random() < 0.4:
                    body = self.rng.randbytes(self.rng.choice([1000, 150_000, 900_000]))
                    name = f"reb/load/{i}"
                    i += 1
                    self.s3.put_object(Bucket="reb", Key=name[4:], Body=body)
                    self.digests[name] = hashlib.md5(body).hexdigest()
                else:
                    name = self.rng.choice(sorted(self.digests))
                    bucket, key = name.split("/", 1)
                    body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    if hashlib.md5(body).hexdigest() != self.digests[name]:
                        self.failures.append(f"{name}: wrong bytes")
            except Exception as e:  # every failure counts, whatever its kind
                self.failures.append(f"{type(e).__name__}: {e}")
            self.ops += 1


@pytest.mark.long
def test_add_node_under_load(cluster: Cluster) -> None:
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    print(f"seed={seed}")
    s3 = cluster.s3()
    digests = _write(s3, 150, seed)
    load = _Load(cluster, digests, seed + 1)
    load.start()
    time.sleep(2)
    _, addr = rh.add_node(cluster, 6)
    rh.change_rings(cluster, ["add", "--id", "6", "--addr", addr,
                              "--domain", "local/z1/n6/d0", "--weight", "1"])
    time.sleep(2)
    rh.wait_done(cluster, 300)
    load.stop.set()
    load.join()
    print(f"load: {load.ops} requests, {len(load.failures)} failed")
    assert load.ops > 0 and not load.failures, load.failures[:5]
    rh.wait_done(cluster, 120)  # what the load wrote to old owners has moved too
    _check_placement(cluster, rh.ring_devices(cluster))
    _check_reads(s3, load.digests)


def test_unreachable_node_failed_automatically() -> None:
    """No operator action: `coffre up` runs `coffre rebalance auto-fail` when the config
    says `auto_fail_after_s`; it sees a node gone for good, fails it in the rings, and the
    rebalancers bring every data id back to k+m fragments on the devices the new rings name."""
    seed = int(os.environ.get("COFFRE_SEED", random.randrange(1 << 30)))
    # Width 6 needs a 7th device to lose one; both data rings, as in the fixture.
    c = new_cluster(nodes=7, extra='extra_policies = ["replicate 3"]\nauto_fail_after_s = 3')
    c.start()
    try:
        assert "autofail" in c.procs
        s3 = c.s3()
        print(f"seed={seed}")
        digests = _write(s3, 24, seed)
        log = c.root / "autofail.log"   # the harness's log of the "autofail" process
        c.kill("node2")
        t0 = time.monotonic()
        while not (actions := [ln for ln in log.read_text().splitlines() if '"node"' in ln]):
            assert time.monotonic() - t0 < 60, "auto-fail did nothing"
            time.sleep(0.2)
        failed_after = time.monotonic() - t0
        action = json.loads(actions[0])
        assert action["ok"] and action["node"] == c.specs["node2"].argv[
            c.specs["node2"].argv.index("--listen") + 1]
        status = rh.wait_done(c, 300)
        live = rh.ring_devices(c)
        assert 2 not in live and len(live) == 6
        _check_placement(c, live)
        _check_reads(s3, digests)
        print(f"auto-fail: node failed {failed_after:.1f} s after it died (after_s=3), "
              f"full redundancy {time.monotonic() - t0:.1f} s after; "
              f"{status['fragments_rebuilt']} fragments rebuilt")
        assert status["fragments_rebuilt"] > 0
    finally:
        c.stop()
        if not os.environ.get("COFFRE_KEEP"):
            shutil.rmtree(c.root, ignore_errors=True)
