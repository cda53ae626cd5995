"""The gateway's composition root: everything a handler needs, built once per process."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from aiohttp import web

from gateway.catalog import Catalog
from gateway.config import Config
from gateway.counters import Counters
from gateway.credentials import AccessKey
from gateway.datapath import DataPath
from gateway.hlc import Clock
from gateway.metastore import MetaStore
from gateway.router import Endpoint
from gateway.sigv4 import AuthResult
from ring.ringset import RingSet
from storage.client import NodeClient


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
    keys: dict[str, AccessKey] = field(default_factory=dict)

    def secret_of(self, access_key: str) -> str | None:
        key = self.keys.get(access_key)
        return key.secret_key if key is not None else None


@dataclass
class Ctx:
    """One request as the handlers see it."""

    request: web.Request
    state: State
    endpoint: Endpoint
    auth: AuthResult | None
    tenant: str | None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8).upper())

    @property
    def bucket_name(self) -> str:
        assert self.endpoint.bucket is not None
        return self.endpoint.bucket

    @property
    def key(self) -> str:
        assert self.endpoint.key is not None
        return self.endpoint.key


STATE = web.AppKey("state", State)
