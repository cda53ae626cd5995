"""Tenants and access keys: records in the metadata store, secrets sealed under a master key.

Records live in one fixed metadata partition (there are few of them, and a gateway reads
them all in one ordered scan): `tenant:<name>` and `key:<access key id>`, msgpack with a
format version. A key's secret is sealed with AES-GCM under the cluster master key, with the
access key id as associated data, so a sealed secret copied onto another key's record does
not open. Revoking a key rewrites its record with status REVOKED (kept for `key list`);
deleting a tenant tombstones its record, and keys of a missing tenant never authenticate.

Each gateway holds a `KeyCache` (a dict the SigV4 check reads without awaiting) that a
background task rebuilds every `key_refresh_s`, so a revoked key stops working on every
gateway within a few seconds. If the store cannot be read, the last good cache stays.

The master key comes from COFFRE_MASTER_KEY (base64 of 32 bytes) or from the 0600 file
<data root>/master.key that `coffre up` creates. Secrets are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import re
import secrets
import string
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.credentials import AccessKey
from gateway.metastore import MetaStore

log = logging.getLogger("coffre.tenants")

TENANT_V1 = 1
KEY_V1 = 1
PARTITION_NAME = b"coffre:tenants"
TENANT_PREFIX = b"tenant:"
KEY_PREFIX = b"key:"
MASTER_KEY_ENV = "COFFRE_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
ADMIN_TENANT = "admin"

# Limits (gateway/limits.py belongs to the lead; these move there when it is merged).
master_key_bytes = 32                 # AES-256-GCM
nonce_bytes = 12                      # AES-GCM's standard nonce
key_refresh_s = 2.0                   # how stale a gateway's key cache may get
# How long a starting gateway waits for its first key load before it listens anyway (with
# only its bootstrap keys): a store that slow is one whose requests would fail too.
key_first_load_wait_s = 10.0
tenant_name_chars_max = 63
keys_per_tenant_max = 100

_TENANT_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
_ACCESS_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


class KeyStatus(Enum):
    ACTIVE = "active"
    REVOKED = "revoked"


class TenantError(Exception):
    """An admin command that cannot be done (unknown tenant, name taken, ...)."""


@dataclass(frozen=True)
class TenantRecord:
    name: str
    created_ms: int
    admin: bool = False

    def encode(self) -> bytes:
        out: bytes = msgpack.packb([TENANT_V1, self.name, self.created_ms, self.admin])
        return out

    @classmethod
    def decode(cls, raw: bytes) -> TenantRecord:
        body = msgpack.unpackb(raw, raw=False)
        if body[0] != TENANT_V1:
            raise ValueError(f"tenant record version {body[0]}")
        return cls(str(body[1]), int(body[2]), bool(body[3]))


@dataclass(frozen=True)
class KeyRecord:
    access_key: str
    tenant: str
    created_ms: int
    status: KeyStatus
    nonce: bytes
    sealed_secret: bytes      # AES-GCM(master, nonce, secret, aad=access key id)

    def encode(self) -> bytes:
        out: bytes = msgpack.packb(
            [KEY_V1, self.access_key, self.tenant, self.created_ms, self.status.value,
             self.nonce, self.sealed_secret], use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> KeyRecord:
        body = msgpack.unpackb(raw, raw=False)
        if body[0] != KEY_V1:
            raise ValueError(f"key record version {body[0]}")
        return cls(str(body[1]), str(body[2]), int(body[3]), KeyStatus(body[4]),
                   bytes(body[5]), bytes(body[6]))


# ---- the master key ----------------------------------------------------------------------


def _decode_master(text: str, where: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except ValueError:
        raise ValueError(f"master key in {where} is not base64") from None
    if len(raw) != master_key_bytes:
        raise ValueError(f"master key in {where} must be {master_key_bytes} bytes")
    return raw


def ensure_master_key(data_root: Path) -> Path:
    """Create <data root>/master.key (0600, random) unless it exists; return its path."""
    path = data_root / MASTER_KEY_FILE
    if path.exists() or os.environ.get(MASTER_KEY_ENV):
        return path
    data_root.mkdir(parents=True, exist_ok=True)
    text = base64.b64encode(secrets.token_bytes(master_key_bytes)).decode() + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path       # another process made it first: theirs is the key
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return path


def load_master_key(data_root: Path, create: bool = True) -> bytes:
    """COFFRE_MASTER_KEY wins; else the data root's master.key, created when missing (unless
    `create` is False: an admin command pointed at the wrong data root must not mint one)."""
    env = os.environ.get(MASTER_KEY_ENV)
    if env:
        return _decode_master(env, MASTER_KEY_ENV)
    path = ensure_master_key(data_root) if create else data_root / MASTER_KEY_FILE
    if not path.exists():
        raise FileNotFoundError(f"no master key at {path} (is COFFRE_DATA the cluster's?)")
    return _decode_master(path.read_text(), str(path))


class SecretBox:
    """Seals and opens access key secrets under the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def seal(self, access_key: str, secret: str) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(nonce_bytes)
        return nonce, self._aead.encrypt(nonce, secret.encode(), _aad(access_key))

    def open(self, rec: KeyRecord) -> str | None:
        """The secret, or None when the record was not sealed under this master key."""
        try:
            return self._aead.decrypt(rec.nonce, rec.sealed_secret,
                                      _aad(rec.access_key)).decode()
        except (InvalidTag, ValueError):
            return None


def _aad(access_key: str) -> bytes:
    return b"coffre:key:" + access_key.encode()


def new_access_key() -> str:
    return "CF" + "".join(secrets.choice(_ACCESS_ALPHABET) for _ in range(18))


def new_secret() -> str:
    return "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))


def check_tenant_name(name: str) -> str:
    if not _TENANT_RE.match(name):
        raise TenantError(f"invalid tenant name {name!r}: 1-{tenant_name_chars_max} of "
                          "a-z 0-9 . _ -, starting with a letter or digit")
    return name


# ---- the directory: records in the metadata store ----------------------------------------


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: the only time its secret is shown."""

    record: KeyRecord
    secret_key: str


class Directory:
    """Tenant and key records, read and written with metadata quorums."""

    def __init__(self, store: MetaStore, box: SecretBox) -> None:
        self.store, self.box = store, box

    @property
    def partition(self) -> int:
        return self.store.partition(PARTITION_NAME)

    async def get_tenant(self, name: str) -> TenantRecord | None:
        rec = await self.store.get_live(self.partition, TENANT_PREFIX + name.encode())
        return TenantRecord.decode(rec.value) if rec is not None and rec.value else None

    async def create_tenant(self, name: str, admin: bool = False) -> TenantRecord:
        check_tenant_name(name)
        if await self.get_tenant(name) is not None:
            raise TenantError(f"tenant {name!r} already exists")
        rec = TenantRecord(name, int(time.time() * 1000), admin)
        await self.store.put(self.partition, TENANT_PREFIX + name.encode(), rec.encode())
        return rec

    async def list_tenants(self) -> list[TenantRecord]:
        return [TenantRecord.decode(v) for v in await self._scan(TENANT_PREFIX)]

    async def delete_tenant(self, name: str) -> list[str]:
        """Tombstone the tenant and revoke its keys; return the revoked key ids."""
        if await self.get_tenant(name) is None:
            raise TenantError(f"no tenant {name!r}")
        revoked = []
        for key in await self.list_keys(name):
            if key.status is KeyStatus.ACTIVE:
                await self.revoke_key(key.access_key)
                revoked.append(key.access_key)
        await self.store.put(self.partition, TENANT_PREFIX + name.encode(), None)
        return revoked

    async def create_key(self, tenant: str, access_key: str | None = None,
                         secret: str | None = None) -> NewKey:
        if await self.get_tenant(tenant) is None:
            raise TenantError(f"no tenant {tenant!r}")
        if len(await self.list_keys(tenant)) >= keys_per_tenant_max:
            raise TenantError(f"tenant {tenant!r} has {keys_per_tenant_max} keys already")
        access = access_key or new_access_key()
        secret_key = secret or new_secret()
        nonce, sealed = self.box.seal(access, secret_key)
        rec = KeyRecord(access, tenant, int(time.time() * 1000), KeyStatus.ACTIVE, nonce,
                        sealed)
        await self.store.put(self.partition, KEY_PREFIX + access.encode(), rec.encode())
        return NewKey(rec, secret_key)

    async def get_key(self, access_key: str) -> KeyRecord | None:
        rec = await self.store.get_live(self.partition, KEY_PREFIX + access_key.encode())
        return KeyRecord.decode(rec.value) if rec is not None and rec.value else None

    async def list_keys(self, tenant: str | None = None) -> list[KeyRecord]:
        keys = [KeyRecord.decode(v) for v in await self._scan(KEY_PREFIX)]
        return [k for k in keys if tenant is None or k.tenant == tenant]

    async def revoke_key(self, access_key: str) -> KeyRecord:
        rec = await self.get_key(access_key)
        if rec is None:
            raise TenantError(f"no access key {access_key!r}")
        revoked = KeyRecord(rec.access_key, rec.tenant, rec.created_ms, KeyStatus.REVOKED,
                            rec.nonce, rec.sealed_secret)
        await self.store.put(self.partition, KEY_PREFIX + access_key.encode(), revoked.encode())
        return revoked

    async def _scan(self, prefix: bytes) -> list[bytes]:
        cursor = self.store.cursor(self.partition, prefix, None)
        out = []
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                out.append(rec.value)
        return out

    async def active_keys(self) -> dict[str, AccessKey]:
        """Every key that authenticates now: active, opened, of an existing tenant."""
        tenants = {t.name for t in await self.list_tenants()}
        out = {}
        for rec in await self.list_keys():
            if rec.status is not KeyStatus.ACTIVE or rec.tenant not in tenants:
                continue
            secret = self.box.open(rec)
            if secret is None:
                log.warning("access key %s is not sealed under this master key; ignored",
                            rec.access_key)
                continue
            out[rec.access_key] = AccessKey(rec.access_key, secret, rec.tenant)
        return out

    async def bootstrap(self, key: AccessKey) -> None:
        """First start: the admin tenant and the credentials.toml key, unless present (a
        revoked admin key stays revoked: only a missing record is written)."""
        if await self.get_tenant(key.tenant) is None:
            await self.create_tenant(key.tenant, admin=key.tenant == ADMIN_TENANT)
        if await self.get_key(key.access_key) is None:
            await self.create_key(key.tenant, key.access_key, key.secret_key)


# ---- the gateway's cache -----------------------------------------------------------------


class KeyCache:
    """What SigV4 reads on every request: access key id -> key, refreshed in the background.

    Until the first refresh succeeds it holds the bootstrap keys (credentials.toml), so a
    gateway whose store cannot be read still serves its admin; after that, only what the
    store says. A gateway waits for the first try (`first_try`) before it listens: with
    the bootstrap keys alone it would refuse every tenant's valid key."""

    def __init__(self, directory: Directory | None, bootstrap: list[AccessKey]) -> None:
        self.directory = directory
        self.bootstrap_keys = list(bootstrap)
        self._keys: dict[str, AccessKey] = {k.access_key: k for k in bootstrap}
        self.refreshed = False
        self._tried = asyncio.Event()       # set once the first refresh has ended, either way

    def get(self, access_key: str) -> AccessKey | None:
        return self._keys.get(access_key)

    def secret_of(self, access_key: str) -> str | None:
        key = self._keys.get(access_key)
        return key.secret_key if key is not None else None

    def tenant_of(self, access_key: str) -> str | None:
        key = self._keys.get(access_key)
        return key.tenant if key is not None else None

    def replace(self, keys: dict[str, AccessKey]) -> None:
        self._keys = dict(keys)

    async def refresh(self) -> bool:
        """Rebuild from the store; False (and the old cache kept) when it cannot be read."""
        try:
            if self.directory is None:
                return False
            if not self.refreshed:
                for key in self.bootstrap_keys:
                    await self.directory.bootstrap(key)
            self._keys = await self.directory.active_keys()
            self.refreshed = True
            return True
        except Exception as exc:   # the loop must outlive any bad record or node fault
            log.warning("key cache refresh failed, keeping %d cached keys: %s",
                        len(self._keys), type(exc).__name__)
            return False
        finally:
            self._tried.set()

    async def first_try(self, timeout_s: float = key_first_load_wait_s) -> bool:
        """Wait (up to timeout_s) for the first refresh to end; True if the keys loaded."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._tried.wait(), timeout_s)
        return self.refreshed

    async def run(self, period_s: float = key_refresh_s) -> None:
        """The background loop: refresh now, then every period_s, until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(period_s)
