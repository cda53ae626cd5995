"""The web console: a sub-app of the gateway's admin port, mounted at /console.

    /console/            the page (static HTML + CSS + JS modules, gateway/console/static)
    /console/api/login   POST {"access_key", "secret_key"} -> session cookie (or 401)
    /console/api/logout  POST -> cookie cleared
    /console/api/session GET  -> who is logged in
    /console/api/cluster | rings | rebalance | usage?hours=N | errors?after=SEQ&limit=N

Rules: only the admin tenant's keys open the console (the credentials.toml key and any key
of tenant "admin" in the store: what SigV4 accepts, read from the gateway's key cache, so a
revoked key stops working at the next refresh). A request proves it either with the session
cookie — an HMAC-SHA256 token over (access key, expiry) keyed by a key derived from that
access key's secret, so every gateway worker sharing the port accepts it and rotating the
secret ends the sessions — or with HTTP Basic (scripts); secrets are compared with
hmac.compare_digest. Without valid credentials an API path answers 401 and no data; the
static files carry no data and are open. Data comes from the same code as the CLIs (see
gateway.console.api), fetched on demand: concurrent pages share one fetch per document for
`poll_cache_s` (usage for `usage_cache_s`: it scans metadata), so the cluster sees at most
one round of status calls per second whatever the number of open pages.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway import admin, status
from gateway.console import api
from gateway.console import errors_feed as feed_mod
from gateway.metering import read_usage
from gateway.state import State
from gateway.tenants import ADMIN_TENANT
from storage import rebalance_cli

log = logging.getLogger("coffre.console")

STATIC_DIR = Path(__file__).parent / "static"
COOKIE = "coffre_console"
TOKEN_VERSION = "v1"
session_ttl_s = 8 * 3600         # a login lasts this long
login_failure_delay_s = 0.5      # slows down guessing; the admin port is loopback anyway
login_body_max_bytes = 4096
poll_cache_s = 1.0               # pages polling at once share one fetch per document
usage_cache_s = 10.0             # usage scans every tenant's metering records
usage_hours_default = 24
usage_hours_max = 24 * 14
usage_tenants_max = 50           # tenants charted (by name order): bounds the scans
errors_limit_max = 200

SecretOf = Callable[[str], str | None]
Doc = dict[str, Any]


# -- credentials (pure) --------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, message: str) -> str:
    # The session key is derived, never the secret itself: a leaked cookie gives nothing
    # that signs S3 requests.
    key = hmac.new(secret.encode(), b"coffre console session " + TOKEN_VERSION.encode(),
                   hashlib.sha256).digest()
    return _b64(hmac.new(key, message.encode(), hashlib.sha256).digest())


def make_token(access_key: str, secret: str, expires_ms: int) -> str:
    body = f"{TOKEN_VERSION}.{_b64(access_key.encode())}.{expires_ms}"
    return f"{body}.{_mac(secret, body)}"


def verify_token(token: str, secret_of: SecretOf, now_ms: int) -> str | None:
    """The access key a valid, unexpired token was issued to; None otherwise."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != TOKEN_VERSION or not parts[2].isdigit():
        return None
    try:
        access_key = _unb64(parts[1]).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    expires_ms = int(parts[2])
    if not now_ms < expires_ms <= now_ms + session_ttl_s * 1000:
        return None
    secret = secret_of(access_key)
    if secret is None:
        return None
    want = _mac(secret, ".".join(parts[:3]))
    return access_key if hmac.compare_digest(want.encode(), parts[3].encode()) else None


def check_secret(access_key: str, secret: str, secret_of: SecretOf) -> bool:
    """Constant time in the secret; an unknown key costs the same comparison."""
    known = secret_of(access_key)
    want = (known if known is not None else "\0" * max(1, len(secret))).encode()
    same = hmac.compare_digest(want, secret.encode())
    return known is not None and same


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(access key, secret) of an `Authorization: Basic ...` header, or None."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    access_key, sep, secret = text.partition(":")
    return (access_key, secret) if sep and access_key else None


def admin_secret_of(state: State) -> SecretOf:
    """Secrets of the admin tenant's active keys only."""
    def secret_of(access_key: str) -> str | None:
        if state.keys.tenant_of(access_key) != ADMIN_TENANT:
            return None
        return state.keys.secret_of(access_key)
    return secret_of


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def principal(request: web.Request, secret_of: SecretOf, now_ms: int) -> str | None:
    """The admin access key this request proves, by cookie or HTTP Basic; None if none."""
    token = request.cookies.get(COOKIE)
    if token:
        found = verify_token(token, secret_of, now_ms)
        if found is not None:
            return found
    basic = basic_credentials(request.headers.get("Authorization", ""))
    if basic is not None and check_secret(basic[0], basic[1], secret_of):
        return basic[0]
    return None


# -- shared fetches ------------------------------------------------------------------------


class SharedFetch:
    """One in-flight fetch per key, its answer reused for `ttl_s`; failures are not kept."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self._clock = ttl_s, clock
        self._fresh: dict[object, tuple[float, Doc]] = {}
        self._running: dict[object, asyncio.Task[Doc]] = {}

    async def get(self, key: object, load: Callable[[], Awaitable[Doc]]) -> Doc:
        kept = self._fresh.get(key)
        if kept is not None and self._clock() < kept[0]:
            return kept[1]
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(self._load(key, load))
            self._running[key] = task
        # shield: a page that goes away must not cancel the fetch the others wait for
        return await asyncio.shield(task)

    async def _load(self, key: object, load: Callable[[], Awaitable[Doc]]) -> Doc:
        try:
            doc = await load()
            self._fresh[key] = (self._clock() + self.ttl_s, doc)
            return doc
        finally:
            del self._running[key]


class Console:
    """The console's data: each method fetches with the operator commands' code."""

    def __init__(self, state: State, feed: feed_mod.ErrorFeed) -> None:
        self.state, self.feed = state, feed
        self.secret_of = admin_secret_of(state)
        self.polls = SharedFetch(poll_cache_s)
        self.usage_polls = SharedFetch(usage_cache_s)
        self._ring_docs: dict[tuple[str, int], Doc] = {}    # rings are immutable per version

    async def cluster(self) -> Doc:
        rings = admin.loaded_rings(self.state)
        nodes = sorted({d.addr for ring in rings.values() for d in ring.devices})
        infos, _, errors = await status.collect(nodes, [], status.status_timeout_s)
        me = self.state.config.admin_listen or "this gateway"
        report = status.build_report(rings, infos, {me: {"rings": self.state.rings.versions()}},
                                     errors)
        return api.cluster_map(report)

    async def rings(self) -> Doc:
        kept: dict[tuple[str, int], Doc] = {}   # only the versions in use stay cached
        for name, ring in sorted(admin.loaded_rings(self.state).items()):
            key = (name, ring.version)
            doc = self._ring_docs.get(key)
            if doc is None:
                # validate walks every partition: off the loop, once per ring version
                doc = await asyncio.to_thread(api.ring_balance, name, ring)
            kept[key] = doc
        self._ring_docs = kept
        return {"rings": list(kept.values())}

    async def rebalance(self) -> Doc:
        addrs: set[str] = set()
        for ring in admin.loaded_rings(self.state).values():
            addrs.update(rebalance_cli.ring_addrs(ring))
        # `coffre rebalance status`'s own collection (blocking urllib): in a thread.
        doc = await asyncio.to_thread(rebalance_cli.collect_status, sorted(addrs))
        return api.rebalance_view(doc)

    async def _tenants(self) -> list[str]:
        directory = self.state.keys.directory
        if directory is not None:
            names = sorted(t.name for t in await directory.list_tenants())
        else:   # no metadata store behind this gateway: the tenants of the keys it knows
            names = sorted({k.tenant for k in self.state.keys.bootstrap_keys})
        return names[:usage_tenants_max]

    async def usage(self, window: api.Window) -> Doc:
        names = await self._tenants()
        rows = await asyncio.gather(*(read_usage(self.state.catalog, t, window.first_hour_ms,
                                                 window.end_ms) for t in names))
        return api.usage_view(dict(zip(names, rows, strict=True)), window)

    def errors(self, limit: int, after_seq: int) -> Doc:
        return api.errors_view(self.feed.recent(limit, after_seq), self.feed.total)


CONSOLE = web.AppKey("console", Console)


# -- HTTP ----------------------------------------------------------------------------------


_OPEN_API = {"/console/api/login", "/console/api/logout"}
_SECURITY_HEADERS = {
    # Everything the page needs comes from this origin; no inline script can run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def _unauthorized() -> web.Response:
    # No WWW-Authenticate: a browser must not pop its own Basic dialog over the page.
    return web.json_response({"error": "unauthorized"}, status=401)


@web.middleware
async def _guard(request: web.Request,
                 handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    is_api = request.path.startswith("/console/api/")
    if (is_api and request.path not in _OPEN_API
            and principal(request, request.app[CONSOLE].secret_of, _now_ms()) is None):
        response: web.StreamResponse = _unauthorized()
    else:
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except Exception as exc:  # a cluster that does not answer is news, not a crash
            log.warning("console %s failed: %s", request.path, type(exc).__name__)
            response = web.json_response({"error": f"{type(exc).__name__}: {exc}"[:300]},
                                         status=503)
    response.headers.update(_SECURITY_HEADERS)
    if is_api:
        response.headers["Cache-Control"] = "no-store"
    return response


async def _login(request: web.Request) -> web.StreamResponse:
    if (request.content_length or 0) > login_body_max_bytes:
        return web.json_response({"error": "body too large"}, status=413)
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return web.json_response({"error": "expected a JSON object"}, status=400)
    access_key, secret = str(body.get("access_key", "")), str(body.get("secret_key", ""))
    secret_of = request.app[CONSOLE].secret_of
    if not check_secret(access_key, secret, secret_of):
        await asyncio.sleep(login_failure_delay_s)
        return _unauthorized()
    expires_ms = _now_ms() + session_ttl_s * 1000
    response = web.json_response({"access_key": access_key, "expires_ms": expires_ms})
    response.set_cookie(COOKIE, make_token(access_key, secret, expires_ms),
                        max_age=session_ttl_s, path="/console/", httponly=True,
                        samesite="Strict")
    return response


async def _logout(request: web.Request) -> web.StreamResponse:
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/console/")
    return response


async def _session(request: web.Request) -> web.StreamResponse:
    return web.json_response({"access_key": principal(request, request.app[CONSOLE].secret_of,
                                                      _now_ms())})


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name, "")
    value = int(text) if text.isascii() and text.isdigit() else default
    return max(low, min(high, value))


_POLLED = {"cluster": Console.cluster, "rings": Console.rings, "rebalance": Console.rebalance}


async def _polled(request: web.Request) -> web.StreamResponse:
    """cluster, rings, rebalance: each shared by the pages polling within poll_cache_s."""
    console, name = request.app[CONSOLE], request.match_info["doc"]
    return web.json_response(await console.polls.get(name, lambda: _POLLED[name](console)))


async def _usage(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    hours = _int_query(request, "hours", usage_hours_default, 1, usage_hours_max)
    window = api.Window.ending_at(_now_ms(), hours)
    return web.json_response(await console.usage_polls.get(
        window, lambda: console.usage(window)))


async def _errors(request: web.Request) -> web.StreamResponse:
    limit = _int_query(request, "limit", errors_limit_max, 0, errors_limit_max)
    after = _int_query(request, "after", 0, 0, 2**62)
    return web.json_response(request.app[CONSOLE].errors(limit, after))


async def _index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


async def _to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/console/")


def _log_capture(feed: feed_mod.ErrorFeed) -> Callable[[web.Application],
                                                       AsyncIterator[None]]:
    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        handler = feed_mod.install(feed)
        try:
            yield
        finally:
            feed_mod.uninstall(handler)
    return ctx


def make_console_app(state: State, feed: feed_mod.ErrorFeed | None = None) -> web.Application:
    """The console sub-app; mount it with `admin_app.add_subapp("/console", ...)`."""
    feed = feed if feed is not None else feed_mod.FEED
    app = web.Application(middlewares=[_guard], client_max_size=login_body_max_bytes)
    app[CONSOLE] = Console(state, feed)
    app.router.add_get("", _to_index)
    app.router.add_get("/", _index)
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_post("/api/login", _login)
    app.router.add_post("/api/logout", _logout)
    app.router.add_get("/api/session", _session)
    app.router.add_get("/api/{doc:" + "|".join(_POLLED) + "}", _polled)
    app.router.add_get("/api/usage", _usage)
    app.router.add_get("/api/errors", _errors)
    app.cleanup_ctx.append(_log_capture(feed))
    return app

