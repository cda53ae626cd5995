"""The access key cache of a gateway that starts: its S3 port opens once the first key load
has ended, so a tenant's valid key is never refused (and its request never left unmetered)
for coming a moment after the start; a store that fails or hangs delays the start only so
much."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway import metering, usage_journal
from gateway.config import Config, NodeLayout
from gateway.credentials import AccessKey
from gateway.server import make_app
from gateway.state import STATE
from gateway.tenants import KeyCache
from gateway.up import prepare
from tests.cluster.harness import free_ports

TENANT = "t1"
TENANT_KEY = AccessKey("AKIDTENANTONE0000000", "s" * 40, TENANT)


@dataclass
class SlowDirectory:
    """The key directory of a store whose reads take `pause_s` (a loaded host, a slow
    start), or fail with `fault`."""

    keys: list[AccessKey]
    pause_s: float = 0.0
    fault: Exception | None = None

    async def bootstrap(self, key: AccessKey) -> None:
        pass

    async def active_keys(self) -> dict[str, AccessKey]:
        await asyncio.sleep(self.pause_s)
        if self.fault is not None:
            raise self.fault
        return {k.access_key: k for k in self.keys}


def _signed_get(url: str, key: AccessKey) -> dict[str, str]:
    request = AWSRequest(method="GET", url=url,
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials(key.access_key, key.secret_key), "s3", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _journaled(journal_dir: Path, tenant: str) -> bool:
    """Whether the gateway's usage journal files hold a metering record of `tenant`."""
    prefix = metering.tenant_prefix(tenant)
    return any(put.key.startswith(prefix) for path in journal_dir.glob("*.jnl")
               for put in usage_journal.decode(path.read_bytes()))


async def test_a_gateway_listens_once_its_keys_are_loaded(tmp_path: Path) -> None:
    # Every node down (closed ports): authorization fails with 503, but only after the key
    # is known, and the signer is billed for the answer.
    cfg = Config(data_root=tmp_path, part_power=4, meta_replicas=3,
                 nodes=NodeLayout(count=6, first_port=free_ports(1)[0]), node_timeout_s=2.0)
    admin_key = prepare(cfg)
    app = make_app(cfg)
    keys = app[STATE].keys
    # The first load ends well after the server could have opened its port.
    keys.directory = cast(Any, SlowDirectory([admin_key, TENANT_KEY], pause_s=0.5))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        url = str(client.make_url("/somebucket/k"))     # sent the moment the port is open
        async with client.session.get(url, headers=_signed_get(url, TENANT_KEY)) as resp:
            body = await resp.text()
        assert "InvalidAccessKeyId" not in body
        assert resp.status == 503, body
        assert _journaled(tmp_path / "usage-journal", TENANT)
    finally:
        await client.close()


async def test_first_try_ends_with_a_failed_load() -> None:
    cache = KeyCache(cast(Any, SlowDirectory([], fault=RuntimeError("no quorum"))), [])
    task = asyncio.create_task(cache.run(period_s=60.0))
    try:
        assert await asyncio.wait_for(cache.first_try(timeout_s=30.0), 5.0) is False
        assert cache.secret_of(TENANT_KEY.access_key) is None
    finally:
        task.cancel()


async def test_first_try_gives_up_on_a_store_that_hangs() -> None:
    cache = KeyCache(cast(Any, SlowDirectory([TENANT_KEY], pause_s=3600.0)), [])
    task = asyncio.create_task(cache.run())
    try:
        assert await cache.first_try(timeout_s=0.05) is False
    finally:
        task.cancel()


@pytest.mark.parametrize("loaded", [True, False])
async def test_first_try_after_the_load_returns_at_once(loaded: bool) -> None:
    fault = None if loaded else RuntimeError("no quorum")
    cache = KeyCache(cast(Any, SlowDirectory([TENANT_KEY], fault=fault)), [])
    assert await cache.refresh() is loaded
    assert await asyncio.wait_for(cache.first_try(), 1.0) is loaded
    assert (cache.tenant_of(TENANT_KEY.access_key) == TENANT) is loaded


async def test_a_key_unknown_before_any_load_is_retryable(tmp_path: Path) -> None:
    """While the store's keys have never loaded, a key the cache does not hold may be a
    tenant's valid one: 503 ServiceUnavailable (retried by SDKs), not a final 403. Once they
    loaded, an unknown key is InvalidAccessKeyId again."""
    cfg = Config(data_root=tmp_path, part_power=4, meta_replicas=3,
                 nodes=NodeLayout(count=6, first_port=free_ports(1)[0]), node_timeout_s=2.0)
    admin_key = prepare(cfg)
    app = make_app(cfg)
    keys = app[STATE].keys
    store = SlowDirectory([admin_key, TENANT_KEY], fault=RuntimeError("no quorum"))
    keys.directory = cast(Any, store)
    client = TestClient(TestServer(app))
    await client.start_server()
    stranger = AccessKey("AKIDNOBODY0000000000", "x" * 40, "nobody")
    try:
        url = str(client.make_url("/somebucket/k"))

        async def code_of(key: AccessKey) -> tuple[int, str]:
            async with client.session.get(url, headers=_signed_get(url, key)) as resp:
                body = await resp.text()
            return resp.status, body.split("<Code>")[1].split("</Code>")[0]

        assert not keys.refreshed
        assert await code_of(TENANT_KEY) == (503, "ServiceUnavailable")
        store.fault = None
        assert await keys.refresh()
        assert await code_of(stranger) == (403, "InvalidAccessKeyId")
    finally:
        await client.close()
