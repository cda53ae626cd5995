"""The gateway's admin port: /metrics, /health/live, /health/ready, /admin/info, /console/.

Rules: a separate aiohttp app on its own listener (loopback by default, config
`[admin] listen`), so that scrapes and probes never queue behind S3 traffic and the S3 port
never exposes them. Live means the process answers. Ready means: the metadata ring and the
default policy's data ring are loaded, and in every loaded ring every partition has enough
devices on reachable nodes for its write quorum (metadata: a majority; data: k + the
configured extra). Reachability is one ping per node, all at once, each bounded by
admin_ping_timeout_s; the quorum arithmetic (`quorum_problems`) is pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.config import Config
from gateway.metrics import CONTENT_TYPE, METRICS
from gateway.state import STATE, State
from ring.model import Ring
from ring.ringset import META_NAME, data_name

log = logging.getLogger("coffre.admin")
admin_ping_timeout_s = 1.0  # a node that does not answer a ping this fast counts as down


@dataclass(frozen=True)
class Readiness:
    ready: bool
    problems: tuple[str, ...]     # why not ready
    warnings: tuple[str, ...]     # wrong but not blocking
    reachable: tuple[str, ...]    # node addresses that answered
    unreachable: tuple[str, ...]


def quorum_needs(config: Config, meta_width: int | None) -> dict[str, int]:
    """Ring file name -> devices a write needs in each partition."""
    needs: dict[str, int] = {}
    if meta_width is not None:
        needs[META_NAME] = meta_width // 2 + 1
    for policy in config.all_policies:
        need = min(policy.width, policy.k + config.write_quorum_extra)
        name = data_name(policy.width)
        needs[name] = max(needs.get(name, 0), need)
    return needs


def quorum_problems(rings: Mapping[str, Ring], needs: Mapping[str, int],
                    reachable: set[str]) -> list[str]:
    """For each ring: how many partitions have fewer reachable devices than they need."""
    problems = []
    for name, need in sorted(needs.items()):
        ring = rings.get(name)
        if ring is None or not ring.built:
            continue
        short = sum(1 for p in range(ring.partitions)
                    if sum(d.addr in reachable for d in ring.slots(p)) < need)
        if short:
            problems.append(f"{name}: {short}/{ring.partitions} partitions have fewer than "
                            f"{need} reachable devices")
    return problems


def loaded_rings(state: State) -> dict[str, Ring]:
    out: dict[str, Ring] = {}
    with contextlib.suppress(LookupError):  # no meta ring: reported as missing below
        out[META_NAME] = state.rings.meta
    for width in state.rings.widths:
        out[data_name(width)] = state.rings.data(width)
    return out


async def _reachable(state: State, addrs: set[str]) -> set[str]:
    async def ping(addr: str) -> str | None:
        try:
            await asyncio.wait_for(state.client.ping(addr), admin_ping_timeout_s)
        except Exception:  # any failure means "not usable now"; the reason is not needed
            return None
        return addr

    answers = await asyncio.gather(*(ping(a) for a in sorted(addrs)))
    return {a for a in answers if a is not None}


async def readiness(state: State) -> Readiness:
    rings = loaded_rings(state)
    fatal = [f"ring {name} not loaded" for name in
             (META_NAME, data_name(state.config.default_policy.width)) if name not in rings]
    addrs = {d.addr for ring in rings.values() for d in ring.devices}
    reachable = await _reachable(state, addrs)
    meta = rings.get(META_NAME)
    needs = quorum_needs(state.config, meta.width if meta is not None else None)
    fatal += quorum_problems(rings, needs, reachable)
    # A ring file that failed to reload leaves the previous ring serving: worth a look,
    # not a reason to take the gateway out of the load balancer.
    warnings = [f"ring {name}: {why}" for name, why in sorted(state.rings.errors.items())]
    return Readiness(not fatal, tuple(fatal), tuple(warnings), tuple(sorted(reachable)),
                     tuple(sorted(addrs - reachable)))


async def _live(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def _ready(request: web.Request) -> web.StreamResponse:
    r = await readiness(request.app[STATE])
    body = {"ready": r.ready, "problems": list(r.problems), "warnings": list(r.warnings),
            "reachable": list(r.reachable),
            "unreachable": list(r.unreachable)}
    return web.json_response(body, status=200 if r.ready else 503)


async def _metrics(request: web.Request) -> web.StreamResponse:
    return web.Response(body=request.app[METRICS].render(),
                        headers={"Content-Type": CONTENT_TYPE})


async def _info(request: web.Request) -> web.StreamResponse:
    """What `coffre status` asks a gateway: the rings it runs and their load errors."""
    state = request.app[STATE]
    return web.json_response({"rings": state.rings.versions(),
                              "ring_errors": dict(state.rings.errors)})


def make_admin_app(state: State, metrics_app: web.Application) -> web.Application:
    """The admin app, sharing the S3 app's state and metrics registry."""
    app = web.Application()
    app[STATE] = state
    app[METRICS] = metrics_app[METRICS]
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/health/live", _live)
    app.router.add_get("/health/ready", _ready)
    app.router.add_get("/admin/info", _info)
    # Imported here: the console reuses this module's ring helpers (a cycle at import).
    from gateway.console.app import make_console_app
    app.add_subapp("/console", make_console_app(state))
    return app


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host or "127.0.0.1", int(port)


async def admin_listener(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx of the S3 app: serve the admin app while the S3 app runs."""
    state = app[STATE]
    listen = state.config.admin_listen
    if not listen:
        yield
        return
    host, port = split_listen(listen)
    runner = web.AppRunner(make_admin_app(state, app), access_log=None)
    await runner.setup()
    # reuse_port: several gateway workers of one host share the admin port as they share
    # the S3 port; a scrape then sees one worker's counters.
    site = web.TCPSite(runner, host, port, reuse_port=True)
    try:
        await site.start()
    except OSError as exc:  # a busy admin port must not keep the S3 port down
        log.error("admin port unavailable", extra={"fields": {"listen": listen,
                                                              "error": str(exc)}})
    else:
        log.info("admin port listening", extra={"fields": {"listen": listen}})
    try:
        yield
    finally:
        await runner.cleanup()
