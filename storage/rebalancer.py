"""The rebalancer daemon: per-node background work that puts every fragment and record where
the ring says and rebuilds what is missing (the work of one unit is rebalance_units.py).

Rules:
- A pass walks work units, one per (device, ring, partition), at most `concurrency` at a
  time. It starts when a ring file changes (polled), when woken, after `retry_s` if the last
  pass left work undone, and every `interval_s` as anti-entropy.
- Pacing: every byte read or sent passes the pause gate and a token bucket (bytes/s per
  node); pause, rate and concurrency change at run time and persist.
- Progress (finished units, counters, settings) is a small JSON file beside each device's
  index, replaced atomically; a restart with the same ring versions skips finished units, and
  a ring change mid-pass restarts the pass on the new rings.
- `done` is true when the last finished pass ran on the current ring versions and left
  nothing undone (no error, nothing pending).
- The node's admin routes live in server.py; lifecycle() runs the daemon with the app.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from ring.model import Ring
from ring.ringset import META_NAME, RingSet, data_name
from storage import rebalance_plan as plan
from storage.client import NodeClient
from storage.device import Device
from storage.errors import StorageError
from storage.node import Node
from storage.orphans import OrphanCollector, OrphanConfig
from storage.rebalance_units import UnitResult, Units, scan

log = logging.getLogger("coffre.storage.rebalancer")

PROGRESS_FILE = "rebalance.json"
# A full anti-entropy pass at least this often. Each pass lists every partition on every
# holder (on an idle 6-node local cluster: ~10,000 list calls per node and a third of a core
# for the first minute): ring changes, restarts and unfinished work start passes at once, so
# the timer only catches what nothing signalled (a fragment a straggler never got).
interval_s = 600.0
poll_s = 0.5  # ring files are checked this often (one stat per file)
retry_s = 2.0  # a pass that left work undone is followed by another after this pause
save_every_s = 1.0  # progress files are written at most this often during a pass
default_bytes_per_s = 100 * plan.MB
default_concurrency = 4
concurrency_max = 64
rate_window_s = 10.0
last_errors_max = 8
unfinished_max = 16  # unfinished units whose reasons the status keeps
slow_unit_s = 60.0  # a unit running longer than this is listed in the status


class Limiter:
    """A semaphore whose size can change while it is held."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.used < self.limit)
            self.used += 1

    async def release(self) -> None:
        async with self._cond:
            self.used -= 1
            self._cond.notify_all()

    async def resize(self, limit: int) -> None:
        async with self._cond:
            self.limit = limit
            self._cond.notify_all()


class Rebalancer:
    def __init__(self, node: Node, client: NodeClient | None = None,
                 k_by_width: Mapping[int, int] | None = None) -> None:
        self.node = node
        self._client = client
        self.orphans = OrphanCollector(OrphanConfig.from_env(base=_orphan_base(node)),
                                       self.client, self._gate, self._meta_ring)
        self.units = Units(self.client, self._gate, self._error, self._moved,
                           self._data_rings, dict(k_by_width or {}),
                           is_orphan=self.orphans.is_orphan)
        self.rings: RingSet | None = None
        self.progress: dict[int, plan.Progress] = {}
        self._running = asyncio.Event()
        self._running.set()
        self._wake = asyncio.Event()
        self._pace = plan.Pace(default_bytes_per_s)
        self._limiter = Limiter(default_concurrency)
        self._task: asyncio.Task[None] | None = None
        self._orphan_task: asyncio.Task[None] | None = None
        self._finished: tuple[dict[str, int], bool] | None = None  # last pass: versions, clean
        self._in_pass = False
        self._pass_bytes = 0  # bytes moved/rebuilt during the running pass
        self._survey_bytes = 0
        self._rebuild_left = 0
        self._units = (0, 0)  # total, done in the running (or last) pass
        self.passes = 0
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self.last_errors: collections.deque[str] = collections.deque(maxlen=last_errors_max)
        self._saved_at = 0.0
        self._transferred = 0  # bytes through the gate since the process started
        # Why units are not done (unit name -> reasons) and since when units run: a pass
        # that never ends or a unit that never finishes must say which one and why.
        self._unfinished: dict[str, list[str]] = {}
        self._in_flight: dict[str, float] = {}
        self._full_at = time.monotonic()  # when the last pass over every unit started

    # -- life cycle --------------------------------------------------------------------------
    def load(self) -> None:
        for dev in self._devices():
            try:
                raw = json.loads((dev.path / PROGRESS_FILE).read_text())
            except (OSError, ValueError):
                raw = {}
            self.progress[dev.id] = plan.Progress.from_json(raw)
        if self.progress:
            first = next(iter(self.progress.values()))
            self._pace.bytes_per_s = first.bytes_per_s or default_bytes_per_s
            self._limiter.limit = max(1, min(first.concurrency, concurrency_max))
            if first.paused:
                self._running.clear()

    def start(self) -> None:
        self.load()
        self._task = asyncio.create_task(self._loop(), name="rebalancer")
        self._orphan_task = asyncio.create_task(self._orphan_loop(), name="orphans")

    async def stop(self) -> None:
        for task in (self._task, self._orphan_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = self._orphan_task = None
        await self._save(force=True)
        if self._client is not None:
            await self._client.close()
            self._client = None

    def client(self) -> NodeClient:
        if self._client is None:
            self._client = NodeClient()
        return self._client

    def _devices(self) -> list[Device]:
        return [d for d in self.node.devices.values() if not d.failed]

    # -- operator controls -------------------------------------------------------------------
    async def pause(self) -> None:
        self._running.clear()
        await self._settings(paused=True)

    async def resume(self) -> None:
        self._running.set()
        await self._settings(paused=False)

    async def throttle(self, bytes_per_s: float | None, concurrency: int | None) -> None:
        if bytes_per_s is not None:
            self._pace.bytes_per_s = bytes_per_s
        if concurrency is not None:
            await self._limiter.resize(concurrency)
        await self._settings(bytes_per_s=self._pace.bytes_per_s,
                             concurrency=self._limiter.limit)

    def wake(self) -> None:
        self._wake.set()

    async def _settings(self, **changes: Any) -> None:
        for dev_id, p in self.progress.items():
            self.progress[dev_id] = dataclasses.replace(p, **changes)
        await self._save(force=True)

    # -- the loop ----------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            outcome = "error"
            try:
                outcome = await self._pass()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._error(f"pass failed: {type(e).__name__}: {e}")
                log.exception("rebalance pass failed")
            if outcome == "changed":
                continue
            await self._idle(interval_s if outcome == "clean" else retry_s)

    async def _orphan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.orphans.config.interval_s)
            if self.rings is None:
                continue  # the main loop opens the rings
            try:
                await self.orphans.run_pass(self._devices())
            except asyncio.CancelledError:
                raise
            except Exception as e:
                self._error(f"orphan pass failed: {type(e).__name__}: {e}")
                log.exception("orphan pass failed")

    def _meta_ring(self) -> Ring | None:
        if self.rings is None:
            return None
        try:
            return self.rings.meta
        except LookupError:
            return None

    async def _idle(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            if self._wake.is_set() or self._rings_changed():
                self._wake.clear()
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), min(poll_s, left))

    def _rings_changed(self) -> bool:
        """True when the rings differ from those of the last finished pass. Versions are
        compared, not swaps: status() may have swapped the new ring in already."""
        if self.rings is None:
            return self._open_rings()
        self.rings.reload_if_changed()
        return self._finished is None or self._finished[0] != self.rings.versions()

    def _open_rings(self) -> bool:
        rings_dir = self.node.config.rings_dir
        if rings_dir is None:
            return False
        try:
            self.rings = RingSet(rings_dir)
        except Exception as e:  # a bad ring at start: keep trying, the operator will fix it
            self._error(f"rings: {e}")
            return False
        return True

    def _data_rings(self) -> list[tuple[str, Ring]]:
        return [(n, r) for n, r in self._ring_list() if n != META_NAME]

    def _moved(self, n: int) -> None:
        self._pass_bytes += n

    def _ring_list(self) -> list[tuple[str, Ring]]:
        assert self.rings is not None
        out = [(data_name(w), self.rings.data(w)) for w in self.rings.widths]
        with contextlib.suppress(LookupError):
            out.append((META_NAME, self.rings.meta))
        return [(n, r) for n, r in out if r.built]

    async def _pass(self) -> str:
        """One walk over every unit; "clean", "unclean" or "changed" (rings moved on)."""
        if self.rings is None and not self._open_rings():
            return "unclean"
        assert self.rings is not None
        self.rings.reload_if_changed()
        versions = self.rings.versions()
        # Every unit runs again after a clean pass, and at least every interval_s even while
        # some stay unfinished: a unit done here may be what another node's unfinished unit
        # waits for (a fragment it must push), and retrying only the unfinished ones would
        # then wait forever on both sides.
        stale = time.monotonic() - self._full_at >= interval_s
        full = (self._finished == (versions, True) or self._settled_at_start(versions)
                or (stale and self._finished is not None))
        if full:
            self._full_at = time.monotonic()
        for dev in self._devices():
            p = self.progress.get(dev.id, plan.Progress()).with_versions(versions)
            self.progress[dev.id] = dataclasses.replace(p, done=frozenset()) if full else p
        units = [(dev, name, ring, part) for dev in self._devices()
                 for name, ring in self._ring_list() for part in range(ring.partitions)]
        todo = [u for u in units if plan.unit_name(u[1], u[3])
                not in self.progress[u[0].id].done]
        labels = {f"device {d.id} {plan.unit_name(n, p)}" for d, n, _, p in todo}
        self._unfinished = {k: v for k, v in self._unfinished.items() if k in labels}
        self._in_pass, self._pass_bytes, self._rebuild_left = True, 0, 0
        self._units = (len(units), len(units) - len(todo))
        self._survey_bytes = await self._survey()
        results: list[bool] = []
        tasks: set[asyncio.Task[None]] = set()
        try:
            for dev, name, ring, part in todo:
                await self._running.wait()
                await self._limiter.acquire()
                self.rings.reload_if_changed()
                if self.rings.versions() != versions:
                    await self._limiter.release()
                    return "changed"
                task = asyncio.create_task(self._run_unit(dev, name, ring, part, results))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            self._in_pass = False
        clean = all(results) and len(results) == len(todo)
        self.passes += 1
        self._finished = (versions, clean)
        for dev_id, prog in self.progress.items():
            self.progress[dev_id] = dataclasses.replace(prog, settled=clean)
        await self._save(force=True)
        return "clean" if clean else "unclean"

    def _settled_at_start(self, versions: dict[str, int]) -> bool:
        """The first pass after a start redoes every unit if the saved work was settled on
        these rings: writes may have missed this node while it was down (anti-entropy now,
        not after interval_s). Unsettled work resumes where it stopped instead."""
        return self._finished is None and bool(self.progress) and all(
            p.settled and dict(p.versions) == versions for p in self.progress.values())

    async def _run_unit(self, dev: Device, name: str, ring: Ring, part: int,
                        results: list[bool]) -> None:
        label = f"device {dev.id} {plan.unit_name(name, part)}"
        self._in_flight[label] = time.monotonic()
        try:
            if name == META_NAME:
                unit = await self.units.meta_unit(dev, ring, part)
            else:
                unit = await self.units.data_unit(dev, ring, part)
        except Exception as e:
            self._error(f"device {dev.id} {name} partition {part}: {type(e).__name__}: {e}")
            unit = UnitResult(plan.Counters(errors=1), why=[f"{type(e).__name__}: {e}"])
        finally:
            self._in_flight.pop(label, None)
            await self._limiter.release()
        ok = unit.finished
        self._note_unfinished(label, unit)
        prog = self.progress[dev.id]
        self.progress[dev.id] = (prog.unit_done(plan.unit_name(name, part), unit.counters)
                                 if ok else prog.count(unit.counters))
        self._rebuild_left += unit.rebuild_bytes
        self._units = (self._units[0], self._units[1] + (1 if ok else 0))
        results.append(ok)
        await self._save()

    def _note_unfinished(self, label: str, unit: UnitResult) -> None:
        if unit.finished:
            self._unfinished.pop(label, None)
            return
        why = unit.why or [f"{unit.counters.errors} errors"]
        if self._unfinished.get(label) != why:  # log a change, not every retry
            log.info("unit %s not done: %s", label, "; ".join(why))
        self._unfinished[label] = why
        while len(self._unfinished) > unfinished_max:
            self._unfinished.pop(next(iter(self._unfinished)))

    def _slow_units(self) -> list[str]:
        now = time.monotonic()
        return [f"{label} running {now - t0:.0f} s" for label, t0 in self._in_flight.items()
                if now - t0 > slow_unit_s]

    # -- survey and status -------------------------------------------------------------------
    async def _survey(self) -> int:
        """Bytes this node holds but does not own under the current data rings."""
        rings = [r for _, r in self._data_rings()]
        total = 0
        for dev in self._devices():
            async for e in scan(dev):
                ring = self.units.ring_of(rings, dev.id, e.partition, e.key)
                if ring and plan.verdict(ring, dev.id, e.partition, e.key) is plan.Verdict.MOVE:
                    total += e.loc.body_len
        return total

    def status(self) -> dict[str, Any]:
        if self.rings is not None:
            self.rings.reload_if_changed()
        versions = self.rings.versions() if self.rings is not None else {}
        since = plan.Counters()
        total = plan.Counters()
        for p in self.progress.values():
            since, total = since.plus(p.since_change), total.plus(p.total)
        left = max(0, self._survey_bytes - self._pass_bytes) + self._rebuild_left
        clean_now = self._finished is not None and self._finished == (versions, True)
        # An anti-entropy pass after a clean one keeps `done` unless it finds work.
        done = clean_now and not (self._in_pass and left > 0)
        left = 0 if done or (not self._in_pass and clean_now) else left
        rate = self._rate()
        return {"reachable": True, "done": done, "running": self._task is not None,
                "paused": not self._running.is_set(), "in_pass": self._in_pass,
                "bytes_per_s": self._pace.bytes_per_s, "concurrency": self._limiter.limit,
                "ring_versions": versions, "passes": self.passes,
                "units_total": self._units[0], "units_done": self._units[1],
                **dataclasses.asdict(since), "bytes_left": left,
                "rate_bytes_per_s": rate, "bytes_transferred": self._transferred,
                "eta_s": plan.eta_seconds(left, rate), "last_errors": list(self.last_errors),
                "unfinished": {k: v for k, v in self._unfinished.items()},
                **self.orphans.status(),
                "slow_units": self._slow_units(),
                "total": dataclasses.asdict(total)}

    def _count_bytes(self, n: int) -> None:
        self._transferred += n
        now = time.monotonic()
        self._samples.append((now, n))
        while self._samples and self._samples[0][0] < now - rate_window_s:
            self._samples.popleft()

    def _rate(self) -> float:
        now = time.monotonic()
        while self._samples and self._samples[0][0] < now - rate_window_s:
            self._samples.popleft()
        return sum(n for _, n in self._samples) / rate_window_s

    def _error(self, text: str) -> None:
        log.warning("%s", text)
        self.last_errors.append(text)

    async def _gate(self, n: int) -> None:
        """Every byte the rebalancer reads or sends passes here: pause, then the budget."""
        await self._running.wait()
        wait = self._pace.take(n, time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        await self._running.wait()  # paused while waiting for budget: hold these bytes too
        self._count_bytes(n)

    async def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved_at < save_every_s:
            return
        self._saved_at = now
        for dev in self._devices():
            prog = self.progress.get(dev.id)
            if prog is not None:
                with contextlib.suppress(StorageError, OSError):
                    await dev.run_io(_write_json, dev.path / PROGRESS_FILE, prog.to_json())

    # -- sizes for the plan ------------------------------------------------------------------
    async def sizes(self) -> dict[str, list[list[int]]]:
        """Per device: [partition, fragments, bytes] rows of what it holds."""
        out: dict[str, list[list[int]]] = {}
        for dev in self._devices():
            folded = plan.partition_sizes([(e.partition, e.loc.body_len)
                                           async for e in scan(dev)])
            out[str(dev.id)] = [[p, s.fragments, s.bytes] for p, s in sorted(folded.items())]
        return out


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True))
    os.replace(tmp, path)  # no fsync: a lost update only makes a restart redo some units


def lifecycle(reb: Rebalancer, *, background: bool
              ) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx entry: with `background` the daemon runs with the app, otherwise only
    the admin routes answer. Append it after the node's own lifecycle (devices open first)."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        if background:
            reb.start()
        else:
            reb.load()
        yield
        await reb.stop()

    return run


def _orphan_base(node: Node) -> OrphanConfig:
    grace = node.config.orphan_grace_s
    return OrphanConfig() if grace is None else OrphanConfig(grace_s=grace)
