"""The S3 front's aiohttp application: one catch-all route, errors rendered in one place.

Each request is routed to a typed Endpoint (gateway.router), authenticated (gateway.sigv4),
and handed to its operation's handler. Every S3Error becomes AWS's XML error document here,
with x-amz-request-id on every response, errors included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from gateway import (
    abuse,
    access,
    admin,
    audit,
    body,
    condition_keys,
    errors,
    expiry,
    listing,
    log_delivery,
    metrics,
    presigned,
    request_ids,
    router,
    sigv2,
    sigv4,
    sse,
    website_serve,
)
from gateway.access_log import AccessLogs
from gateway.budget import Budget
from gateway.catalog import Catalog
from gateway.condition_keys import RequestFacts
from gateway.config import Config
from gateway.console.errors_feed import FEED
from gateway.counters import Counters
from gateway.credentials import load as load_keys
from gateway.datapath import DataPath
from gateway.handlers import access_ops
from gateway.handlers.table import HANDLERS
from gateway.hlc import Clock
from gateway.kms import KeyBox, Keyring, KeyringCache
from gateway.logs import set_request_id
from gateway.metastore import MetaStore
from gateway.metering import Meter
from gateway.names import check_key
from gateway.quotas import Quotas
from gateway.state import STATE, Ctx, State, has_deferred, settle
from gateway.tenants import Directory, KeyCache, SecretBox, load_master_key
from gateway.usage_journal import UsageJournal
from ring.ringset import RingSet
from storage.client import NodeClient

log = logging.getLogger("coffre.gateway")
RING_CHECK_S = 2.0
# The request's id, for the response's headers whoever prepares it (a handler that streams).
REQUEST_ID = web.RequestKey("coffre.request_id", str)


def _split_raw(request: web.Request) -> tuple[str, str]:
    path, _, query = request.raw_path.partition("?")
    return path, query


def _resolve(request: web.Request, state: State, headers: Mapping[str, str]
             ) -> router.Endpoint:
    path, _ = _split_raw(request)
    host_bucket = router.split_host(request.host, state.config.virtual_host_domain)
    try:
        if request.method == "OPTIONS":     # a CORS preflight: what it names, not what it does
            target = router.route("GET", path, {}, {}, host_bucket)
            return router.Endpoint(access_ops.PREFLIGHT, target.bucket, target.key)
        return router.route(request.method, path, request.query, headers, host_bucket)
    except UnicodeDecodeError:
        raise errors.InvalidURI() from None


def _authenticate(request: web.Request, state: State) -> sigv4.AuthResult | None:
    path, query = _split_raw(request)
    headers = sigv4.text_headers(request.raw_headers)
    now = datetime.now(UTC)
    if sigv2.is_v2(headers, query):
        return _authenticate_v2(request, state, path, query, headers, now)
    return sigv4.authenticate(request.method, path, query, headers, state.secret_of, now,
                              state.config.region, state.config.max_skew_s)


def _authenticated(request: web.Request, state: State) -> sigv4.AuthResult | None:
    """_authenticate, except that a key unknown while the store's keys have never loaded (the
    store was unreachable when this gateway started) is 503, not 403: the key may well be
    valid, and an SDK retries a 503 where a 403 is final."""
    try:
        return _authenticate(request, state)
    except errors.InvalidAccessKeyId:
        if state.keys.directory is not None and not state.keys.refreshed:
            raise errors.ServiceUnavailable(
                "The access keys could not be loaded yet. Please retry.") from None
        raise


def _authenticate_v2(request: web.Request, state: State, path: str, query: str,
                     headers: list[tuple[str, str]], now: datetime) -> sigv4.AuthResult:
    """SigV2 (boto3's default presigned URLs in us-east-1, legacy tools): the bucket is in
    the signed resource even for virtual-hosted requests; the body is never signed."""
    host_bucket = router.split_host(request.host, state.config.virtual_host_domain)
    resource = f"/{host_bucket}{path}" if host_bucket else path
    access = sigv2.authenticate(request.method, resource, query, headers, state.secret_of,
                                now, state.config.max_skew_s)
    return sigv4.AuthResult(access, state.config.region, "", "", b"", "",
                            sigv4.PayloadMode.UNSIGNED, None, "Signature" in query)


def _facts(request: web.Request, headers: Mapping[str, str], auth: sigv4.AuthResult | None
           ) -> RequestFacts:
    """The request as the policy's condition keys see it (gateway/condition_keys.py)."""
    if auth is None:
        return RequestFacts(headers, request.query, request.secure)
    version = condition_keys.SIGV4 if auth.scope else condition_keys.SIGV2   # v2: no scope
    kind = condition_keys.AUTH_QUERY if auth.presigned else condition_keys.AUTH_HEADER
    signed_at = None
    if auth.presigned and auth.amz_date:
        signed_at = datetime.strptime(auth.amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC).timestamp()
    return RequestFacts(headers, request.query, request.secure, version, kind, signed_at)


async def dispatch(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    site = website_serve.bucket_of(request, state.config)
    if site is not None:
        return await _dispatch_website(request, site)
    request_id = request[REQUEST_ID] = request_ids.new_request_id()
    resource = request.path
    started, op, code = time.monotonic(), metrics.UNKNOWN_OP, None  # for metrics and logs
    set_request_id(request_id)
    # For the audit line, whatever happens below.
    endpoint: router.Endpoint | None = None
    auth: sigv4.AuthResult | None = None
    principal: str | None = None
    decision: access.Decision | None = None
    try:
        # A presigned URL's x-amz-* parameters act as headers, from routing on (a SigV2
        # presigned CopyObject names its source there); the signature checks them below.
        headers = presigned.request_headers(request.headers, request.query)
        endpoint = _resolve(request, state, headers)
        op = endpoint.op
        if endpoint.bucket and "Origin" in request.headers:
            # Chosen before authentication, so that a refusal carries them too: a browser
            # shown no Access-Control-* headers reports a CORS failure, not the 403.
            request[access_ops.CORS_HEADERS] = access_ops.actual_headers(
                request, await state.catalog.find_bucket(endpoint.bucket))
        # A preflight is never authenticated (browsers do not sign it): the query of a
        # presigned URL it is sent to signs the method that URL is for, not OPTIONS.
        auth = None if op == access_ops.PREFLIGHT else _authenticated(request, state)
        principal = state.keys.tenant_of(auth.access_key) if auth is not None else None
        if auth is not None and principal is None:
            # revoked between two lookups
            raise errors.InvalidAccessKeyId(AWSAccessKeyId=auth.access_key)
        if endpoint.key:    # before any lookup: a key the store cannot hold is the client's error
            check_key(endpoint.key)
        asked = access.request_for(endpoint, principal, request.remote or "", request.query,
                                   headers, _facts(request, headers, auth))
        decision = await access.authorize(state.catalog, asked)
        if state.meter is not None:     # who pays, for a response the handler streams
            state.meter.bind(request, op, endpoint, decision, principal)
        ctx = Ctx(request, state, endpoint, auth, decision.acting_tenant, request_id, principal,
                  missing_only=decision.basis is access.Basis.ABSENT,
                  pending=asked if decision.basis is access.Basis.PENDING else None,
                  request_headers=headers)
        handler = HANDLERS.get(endpoint.op)
        if handler is None:
            raise errors.NotImplementedError_(f"{endpoint.op} is not implemented")
        acl_grants = await access_ops.check_acl_headers(ctx)
        await access_ops.check_quota(ctx, decision.bucket)
        response = await handler(ctx)
        await access_ops.apply_acl_headers(ctx, acl_grants, response)
    except errors.S3Error as err:
        code = err.code
        response = _error_response(request, err, request_id)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("internal error on %s %s", request.method, resource)
        code = errors.InternalError.code
        response = _error_response(request, errors.InternalError(), request_id)
    await _finish(request, response, _Answered(op, endpoint, auth, principal, decision, code,
                                               started, request_id))
    return response


@dataclass(frozen=True)
class _Answered:
    """What the steps after a handler need to know of the request it answered."""

    op: str
    endpoint: router.Endpoint | None
    auth: sigv4.AuthResult | None
    principal: str | None
    decision: access.Decision | None
    code: str | None                    # the S3 error code answered, if any
    started: float
    request_id: str


async def _finish(request: web.Request, response: web.StreamResponse, a: _Answered) -> None:
    """Request ids, metering (durable before the answer), metrics, the console, audit."""
    state = request.app[STATE]
    if state.meter is None:
        await settle(request)
    elif has_deferred(request):         # answered once its usage counts are durable too
        await asyncio.gather(
            state.meter.answer(request, response, a.op, a.endpoint, a.decision, a.principal),
            settle(request))
    else:                               # a read: no task pair for a gather of one
        await state.meter.answer(request, response, a.op, a.endpoint, a.decision, a.principal)
    metrics.record(request, response, a.op, a.started, a.code)
    FEED.note_response(a.request_id, a.op, a.code, response.status)  # the console's errors
    if state.audit is not None:
        state.audit.record(audit.entry_for(request, response, a.request_id, a.endpoint,
                                           a.auth, a.principal, a.decision, a.code))
    if state.access_log is not None:    # a line only when the bucket has logging on
        state.access_log.note(request, response, a.endpoint, a.decision, a.auth, a.principal,
                              a.code, a.started, a.request_id)


async def _dispatch_website(request: web.Request, bucket: str) -> web.StreamResponse:
    """A request for a bucket's website (gateway.website_serve): anonymous, HTML errors."""
    state, started = request.app[STATE], time.monotonic()
    request_id = request[REQUEST_ID] = request_ids.new_request_id()
    set_request_id(request_id)
    try:
        s = await website_serve.serve(request, state, bucket, request_id)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("internal error on website %s %s", request.method, request.path)
        err = errors.InternalError()
        endpoint = router.Endpoint("GetObject", bucket, None)
        s = website_serve.Served(website_serve.html_error(request, err, request_id),
                                 endpoint, None, err.code)
    await _finish(request, s.response, _Answered(s.endpoint.op, s.endpoint, None, None,
                                                 s.decision, s.code, started, request_id))
    return s.response


def _error_response(request: web.Request, err: errors.S3Error,
                    request_id: str) -> web.StreamResponse:
    if request.method == "HEAD":
        return web.Response(status=err.status, headers=err.headers)
    return web.Response(status=err.status, body=err.to_xml(request_id),
                        content_type="application/xml", headers=err.headers)


async def _add_ids(request: web.Request, response: web.StreamResponse) -> None:
    """Both ids on every answer, errors and streamed bodies included."""
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        request_ids.stamp(response.headers, request_id)


def make_state(config: Config) -> State:
    rings = RingSet(config.rings_dir)
    client = NodeClient(request_timeout_s=config.node_timeout_s)
    clock = Clock()
    meta = MetaStore(rings, client, clock)
    catalog = Catalog(meta, config.bucket_cache_s)
    # Counters and metering make their rounds durable here (gateway.usage_journal).
    journal = UsageJournal(config.data_root / "usage-journal", clock.writer_id, meta)
    state = State(config, rings, client, clock, meta, catalog,
                  DataPath(rings, client, config.write_quorum_extra,
                           Budget(config.memory_budget_mib * 1024 * 1024),
                           config.retire_after_s),
                  Counters(catalog, clock.writer_id, journal))
    state.usage_journal = journal
    bootstrap = load_keys(config.credentials_path) if config.credentials_path.exists() else []
    master = load_master_key(config.data_root)
    directory = Directory(meta, SecretBox(master))
    state.sse = sse.Keys(master)
    state.kms = KeyringCache(Keyring(directory, KeyBox(master)))
    state.keys = KeyCache(directory, bootstrap)
    state.quotas = Quotas(meta, catalog, state.counters)
    state.audit = audit.AuditLog(config.data_root / "audit")
    state.meter = Meter(catalog, state.counters, journal=journal)
    state.access_log = AccessLogs(catalog, config.website_domain)
    return state


async def _key_refresher(app: web.Application) -> AsyncIterator[None]:
    """Keeps the access key cache within seconds of the metadata store (revocations);
    flushes the audit log at exit."""
    keys = app[STATE].keys
    task = asyncio.create_task(keys.run())
    # The S3 port opens only after every cleanup context has started. A request let in
    # before the first load is checked against the bootstrap keys alone: a tenant's valid
    # key gets InvalidAccessKeyId, and that answer, its signer unknown, is billed to no one
    # (a restarted gateway's first requests went unmetered that way).
    if not await keys.first_try():
        log.warning("serving before the access keys could be loaded: only the bootstrap "
                    "keys authenticate until a refresh succeeds")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    audit_log = app[STATE].audit
    if audit_log is not None:
        audit_log.close()


async def _ring_watcher(app: web.Application) -> AsyncIterator[None]:
    state = app[STATE]

    async def watch() -> None:
        while True:
            await asyncio.sleep(RING_CHECK_S)
            try:
                if state.rings.reload_if_changed():
                    log.info("loaded new rings")
            except Exception:
                log.exception("could not reload rings; keeping the current ones")

    task = asyncio.create_task(watch())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    state.data.retirement.close()   # what waits is left to the nodes' orphan collector
    listing.close_read_ahead()
    await state.client.close()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    async for _ in expiry.cleanup_ctx(app[STATE]):
        yield


def make_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[STATE] = make_state(config)
    app[metrics.METRICS] = metrics.GatewayMetrics(app[STATE].rings.versions)
    budget = app[STATE].data.budget
    app[metrics.METRICS].watch_budget(lambda: budget.held_bytes, lambda: budget.peak_bytes)
    retired = app[STATE].data.retirement
    app[metrics.METRICS].watch_retirement(lambda: len(retired), lambda: retired.early)
    listing.configure_read_ahead(config.list_read_ahead_pages)
    app[metrics.METRICS].watch_read_ahead(listing.read_ahead_counts)
    # The 100 Continue is owed until a handler reads the body: a request refused before that
    # (no quorum, no access) gets its error instead, and its body is never sent.
    # Every path is ours (router.route reads the raw one); `.` would stop at a line feed,
    # and a key may hold one (aiohttp matches the decoded path).
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatch, expect_handler=body.expect_later)
    abuse.install(app, config.abuse)    # concurrency caps, XML body cap, slow-client hooks
    app.cleanup_ctx.append(_ring_watcher)
    app.cleanup_ctx.append(_key_refresher)
    app.cleanup_ctx.append(app[STATE].kms.cleanup_ctx)
    app.on_response_prepare.append(_add_ids)
    app.on_response_prepare.append(access_ops.add_cors_headers)
    app.on_response_prepare.append(body.finish_body)    # drain or close an unread body
    journal = app[STATE].usage_journal
    if journal is not None:     # cleaned up after the meter: its last counts get flushed
        app.cleanup_ctx.append(lambda _app: journal.serve(config.usage_flush_s))
    meter = app[STATE].meter
    if meter is not None:
        app.on_response_prepare.append(meter.on_prepare)
        app.cleanup_ctx.append(meter.cleanup_ctx)
    app.cleanup_ctx.append(admin.admin_listener)
    app.cleanup_ctx.append(_lifecycle)
    # Appended last, cleaned up first: its last flush still has the node client.
    app.cleanup_ctx.append(log_delivery.cleanup_ctx)
    return app
