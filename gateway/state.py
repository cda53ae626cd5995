"""The gateway's composition root: everything a handler needs, built once per process."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from gateway import errors
from gateway.access import AccessRequest
from gateway.access_log import AccessLogs
from gateway.audit import AuditLog
from gateway.catalog import Catalog
from gateway.config import Config
from gateway.counters import Counters
from gateway.datapath import DataPath
from gateway.hlc import Clock
from gateway.kms import KeyringCache
from gateway.metastore import MetaStore
from gateway.metering import Meter
from gateway.quotas import Quotas
from gateway.router import Endpoint
from gateway.sigv4 import AuthResult
from gateway.sse import Keys as DataKeys
from gateway.tenants import KeyCache
from gateway.usage_journal import UsageJournal
from ring.ringset import RingSet
from storage.client import NodeClient

log = logging.getLogger("coffre.gateway")
_DEFERRED = "coffre.deferred"   # request key: bookkeeping writes started by the handler


def defer(request: web.Request, work: Awaitable[None]) -> None:
    """Start a bookkeeping write (bucket counters) now; `settle` waits for it before the
    answer goes out, alongside the request's metering write instead of after it."""
    request.setdefault(_DEFERRED, []).append(asyncio.ensure_future(work))


def has_deferred(request: web.Request) -> bool:
    """The handler started bookkeeping writes that settle() waits for."""
    return bool(request.get(_DEFERRED))


async def settle(request: web.Request) -> None:
    """Wait for the deferred writes. A failed one is logged, not answered: the object is
    committed, and the writer keeps the change to write again (as metering does)."""
    pending = request.get(_DEFERRED)
    if not pending:
        return
    for result in await asyncio.gather(*pending, return_exceptions=True):
        if isinstance(result, Exception):
            log.warning("bucket counter flush failed, will retry: %s", result)


@dataclass
class State:
    config: Config
    rings: RingSet
    client: NodeClient
    clock: Clock
    meta: MetaStore
    catalog: Catalog
    data: DataPath
    counters: Counters
    # Access keys from the metadata store, refreshed in the background (gateway.tenants).
    keys: KeyCache = field(default_factory=lambda: KeyCache(None, []))
    quotas: Quotas | None = None        # None: no quota is ever checked
    audit: AuditLog | None = None       # None: no audit lines
    meter: Meter | None = None          # None: no usage metering (gateway.metering)
    # Where counters and metering make their rounds durable; None: straight to the store.
    usage_journal: UsageJournal | None = None
    sse: DataKeys | None = None         # None: server-side encryption is refused (501)
    access_log: AccessLogs | None = None    # None: no server access logs (gateway.access_log)
    # The tenants' KMS keys (gateway.kms), refreshed in the background like `keys`.
    kms: KeyringCache = field(default_factory=lambda: KeyringCache(None))

    def data_keys(self) -> DataKeys:
        if self.sse is None:
            raise errors.NotImplementedError_("Server-side encryption is not configured")
        return self.sse

    def secret_of(self, access_key: str) -> str | None:
        return self.keys.secret_of(access_key)


@dataclass
class Ctx:
    """One request as the handlers see it."""

    request: web.Request
    state: State
    endpoint: Endpoint
    auth: AuthResult | None
    tenant: str | None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8).upper())
    # Who signed the request (None: anonymous). `tenant` is whom the handler acts for: the
    # principal, or the bucket owner when a policy or ACL granted a non-owner (gateway.access).
    principal: str | None = None
    # The object was missing when the request was authorized, and only that may be told
    # (access.Basis.ABSENT): should it have appeared since, it is still not the reader's.
    missing_only: bool = False
    # The authorization the handler still has to make once it has read the body, whose
    # tags the bucket's policy reads (access.Basis.PENDING; PutObjectTagging).
    pending: AccessRequest | None = None
    # The headers the request acts on, when they are not just its own: a presigned URL's
    # x-amz-* query parameters among them (gateway.presigned).
    request_headers: Mapping[str, str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        return self.request.headers if self.request_headers is None else self.request_headers

    @property
    def bucket_name(self) -> str:
        assert self.endpoint.bucket is not None
        return self.endpoint.bucket

    @property
    def key(self) -> str:
        assert self.endpoint.key is not None
        return self.endpoint.key


STATE = web.AppKey("state", State)
