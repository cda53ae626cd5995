"""Coffre's key service for SSE-KMS: named keys that the operator creates for a tenant,
kept in the metadata store sealed under the cluster master key, local to the cluster.

A key is a record `kms:<key id>` in the tenants' metadata partition (gateway/tenants.py):
its id (a UUID, as AWS's), tenant, alias, state (Enabled or Disabled) and 256 bits of
random material, sealed with AES-GCM under a key derived from the master key, with the key
id and tenant as associated data (a sealed material copied onto another record does not
open). Only the tenant's own requests may use a key (gateway/sse_kms.py). Keys are never
deleted: an object's data key is sealed under one, and losing it loses the object.

Each tenant has a default key, alias `aws/s3`, made on first use as AWS makes its managed
key. Two gateways may make it at the same moment, so nothing of it may be random: its id
and material are derived from the master key, the tenant's name and its creation time
(a tenant deleted and made again gets another), and its record is written stamped at the
tenant's creation, older than any operator's change. Concurrent makers write the same
record, and a key disabled before a gateway's first use stays disabled.

Every gateway holds a `KeyringCache`, rebuilt every `keyring_refresh_s` like the access key
cache, so a disabled key is refused by every gateway within seconds; a key id not in it yet
is read from the store (a key created a moment ago works at once).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import msgpack
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway import errors, hlc, limits, sse_kms
from gateway.metastore import MetaStore
from gateway.sse import derive
from gateway.tenants import PARTITION_NAME, Directory, TenantError

log = logging.getLogger("coffre.kms")

KMS_KEY_V1 = 1
KEY_PREFIX = b"kms:"
material_bytes = 32                     # AES-256
nonce_bytes = 12
keyring_refresh_s = 2.0                 # how stale a gateway's keyring may get
keyring_ready_wait_s = 5.0              # a request waits this long for a first load


class KeyState(Enum):
    ENABLED = "Enabled"                 # AWS's KeyState names
    DISABLED = "Disabled"


@dataclass(frozen=True)
class KmsKeyRecord:
    key_id: str
    tenant: str
    alias: str                  # without "alias/"; "" for none
    created_ms: int
    state: KeyState
    nonce: bytes                # b"" with sealed b"": a default key, derived (KeyBox.open)
    sealed: bytes               # AES-GCM(kek, nonce, material, aad=key id + tenant)

    @property
    def enabled(self) -> bool:
        return self.state is KeyState.ENABLED

    def encode(self) -> bytes:
        out: bytes = msgpack.packb(
            [KMS_KEY_V1, self.key_id, self.tenant, self.alias, self.created_ms,
             self.state.value, self.nonce, self.sealed], use_bin_type=True)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> KmsKeyRecord:
        body = msgpack.unpackb(raw, raw=False)
        if body[0] != KMS_KEY_V1:
            raise ValueError(f"kms key record version {body[0]}")
        return cls(str(body[1]), str(body[2]), str(body[3]), int(body[4]), KeyState(body[5]),
                   bytes(body[6]), bytes(body[7]))


@dataclass(frozen=True)
class OpenKey:
    """A key as a gateway uses it: its record and its material in the clear."""

    record: KmsKeyRecord
    material: bytes = field(repr=False)


def check_alias(alias: str) -> str:
    """An alias an operator may give (AWS's rule: letters, digits, / _ -; aws/ is
    reserved for the keys the service makes)."""
    name = alias.removeprefix("alias/")
    ok = 0 < len(name) <= limits.kms_alias_chars_max and \
        all(c.isascii() and (c.isalnum() or c in "/_-") for c in name)
    if not ok or name.startswith("aws/"):
        raise TenantError(f"invalid alias {alias!r}: 1-{limits.kms_alias_chars_max} of "
                          "A-Z a-z 0-9 / _ -, not starting with aws/")
    return name


class KeyBox:
    """Seals and opens key material under the master key; derives default keys."""

    def __init__(self, master: bytes) -> None:
        self._aead = AESGCM(derive(master, b"coffre kms key-encryption key"))
        self._defaults = derive(master, b"coffre kms default keys")

    def seal(self, key_id: str, tenant: str, material: bytes) -> tuple[bytes, bytes]:
        nonce = secrets.token_bytes(nonce_bytes)
        return nonce, self._aead.encrypt(nonce, material, _aad(key_id, tenant))

    def open(self, rec: KmsKeyRecord) -> bytes | None:
        """The material, or None when the record was not made under this master key."""
        if not rec.sealed:
            default = self.default_record(rec.tenant, rec.created_ms)
            return self._default_material(rec) if rec.key_id == default.key_id else None
        try:
            return self._aead.decrypt(rec.nonce, rec.sealed, _aad(rec.key_id, rec.tenant))
        except (InvalidTag, ValueError):
            return None

    def _derived(self, what: bytes, tenant: str, created_ms: int) -> bytes:
        info = b"\0".join([what, tenant.encode(), str(created_ms).encode()])
        return derive(self._defaults, info)

    def default_record(self, tenant: str, created_ms: int) -> KmsKeyRecord:
        """The tenant's default key: the same record whoever makes it."""
        raw = self._derived(b"id", tenant, created_ms)[:16]
        key_id = str(uuid.UUID(bytes=raw, version=4))
        return KmsKeyRecord(key_id, tenant, sse_kms.DEFAULT_ALIAS, created_ms,
                            KeyState.ENABLED, b"", b"")

    def _default_material(self, rec: KmsKeyRecord) -> bytes:
        return self._derived(b"material", rec.tenant, rec.created_ms)


def _aad(key_id: str, tenant: str) -> bytes:
    return b"coffre:kms:" + key_id.encode() + b"\0" + tenant.encode()


# ---- the keyring: records in the metadata store -------------------------------------------


class Keyring:
    """KMS key records, read and written with metadata quorums."""

    def __init__(self, directory: Directory, box: KeyBox) -> None:
        self.directory, self.box = directory, box

    @property
    def store(self) -> MetaStore:
        return self.directory.store

    @property
    def partition(self) -> int:
        return self.store.partition(PARTITION_NAME)

    async def get(self, key_id: str) -> KmsKeyRecord | None:
        rec = await self.store.get_live(self.partition, KEY_PREFIX + key_id.encode())
        return KmsKeyRecord.decode(rec.value) if rec is not None and rec.value else None

    async def list_keys(self, tenant: str | None = None) -> list[KmsKeyRecord]:
        cursor = self.store.cursor(self.partition, KEY_PREFIX, None)
        out = []
        while (rec := await cursor.pop()) is not None:
            if rec.value is not None:
                key = KmsKeyRecord.decode(rec.value)
                if tenant is None or key.tenant == tenant:
                    out.append(key)
        return out

    async def create_key(self, tenant: str, alias: str = "") -> KmsKeyRecord:
        """A new key of `tenant`, with 256 random bits. (Two operators giving one alias at
        the same instant make two keys of it; the older one is the alias's.)"""
        if await self.directory.get_tenant(tenant) is None:
            raise TenantError(f"no tenant {tenant!r}")
        name = check_alias(alias) if alias else ""
        keys = await self.list_keys(tenant)
        if len(keys) >= limits.kms_keys_per_tenant_max:
            raise TenantError(f"tenant {tenant!r} has {len(keys)} KMS keys already")
        if name and any(k.alias == name for k in keys):
            raise TenantError(f"tenant {tenant!r} already has a key alias/{name}")
        key_id = str(uuid.uuid4())
        nonce, sealed = self.box.seal(key_id, tenant, secrets.token_bytes(material_bytes))
        rec = KmsKeyRecord(key_id, tenant, name, int(time.time() * 1000), KeyState.ENABLED,
                           nonce, sealed)
        await self._put(rec)
        return rec

    async def set_state(self, key_id: str, state: KeyState) -> KmsKeyRecord:
        rec = await self.get(key_id)
        if rec is None:
            raise TenantError(f"no KMS key {key_id!r}")
        changed = replace(rec, state=state)
        await self._put(changed)
        return changed

    async def ensure_default(self, tenant: str) -> KmsKeyRecord:
        """The tenant's default key, made if it has none (see the module's docstring)."""
        made = await self.directory.get_tenant(tenant)
        if made is None:
            raise errors.AccessDenied(f"no tenant {tenant!r}")
        rec = self.box.default_record(tenant, made.created_ms)
        found = await self.get(rec.key_id)
        if found is not None:
            return found
        await self.store.put_at(self.partition, KEY_PREFIX + rec.key_id.encode(),
                                rec.encode(), hlc.first_stamp_of(made.created_ms))
        return await self.get(rec.key_id) or rec

    async def _put(self, rec: KmsKeyRecord) -> None:
        await self.store.put(self.partition, KEY_PREFIX + rec.key_id.encode(), rec.encode())

    def opened(self, rec: KmsKeyRecord) -> OpenKey | None:
        material = self.box.open(rec)
        if material is None:
            log.warning("KMS key %s is not sealed under this master key; ignored", rec.key_id)
            return None
        return OpenKey(rec, material)


# ---- the gateway's cache ------------------------------------------------------------------


class KeyringCache:
    """The keys a gateway uses: key id -> opened key, rebuilt in the background."""

    def __init__(self, keyring: Keyring | None) -> None:
        self.keyring = keyring
        self._by_id: dict[str, OpenKey] = {}
        self._by_alias: dict[tuple[str, str], OpenKey] = {}
        self._loaded = asyncio.Event()

    def _replace(self, keys: list[OpenKey]) -> None:
        self._by_id = {k.record.key_id: k for k in keys}
        aliases: dict[tuple[str, str], OpenKey] = {}
        # Oldest first, so that an alias two keys share (a race of two operators) is the
        # older key's on every gateway.
        for k in sorted(keys, key=lambda k: (k.record.created_ms, k.record.key_id)):
            if k.record.alias:
                aliases.setdefault((k.record.tenant, k.record.alias), k)
        self._by_alias = aliases

    def _add(self, key: OpenKey) -> None:
        self._replace([k for k in self._by_id.values()
                       if k.record.key_id != key.record.key_id] + [key])

    async def refresh(self) -> bool:
        """Reload every key; False (and the old cache kept) when the store cannot be read."""
        if self.keyring is None:
            return False
        try:
            records = await self.keyring.list_keys()
        except Exception as exc:   # the loop must outlive any bad record or node fault
            log.warning("keyring refresh failed, keeping %d cached keys: %s",
                        len(self._by_id), type(exc).__name__)
            return False
        keys = []
        for rec in records:
            cached = self._by_id.get(rec.key_id)
            if cached is not None and cached.record.sealed == rec.sealed:
                keys.append(OpenKey(rec, cached.material))     # no need to open it again
            elif (key := self.keyring.opened(rec)) is not None:
                keys.append(key)
        self._replace(keys)
        self._loaded.set()
        return True

    async def run(self, period_s: float = keyring_refresh_s) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(period_s)

    async def cleanup_ctx(self, _app: Any) -> AsyncIterator[None]:
        """aiohttp's cleanup context: the refresh loop runs while the app does."""
        task = asyncio.create_task(self.run())
        yield
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass

    def _ring(self) -> Keyring:
        if self.keyring is None:
            raise errors.NotImplementedError_("Server-side encryption with KMS is not "
                                              "configured")
        return self.keyring

    async def _ready(self) -> None:
        """Wait for a first load: a gateway that just started knows no alias yet."""
        if self._loaded.is_set():
            return
        try:
            await asyncio.wait_for(self._loaded.wait(), keyring_ready_wait_s)
        except TimeoutError:
            raise errors.ServiceUnavailable("The KMS keyring is not loaded yet") from None

    async def by_id(self, key_id: str) -> OpenKey | None:
        key = self._by_id.get(key_id)
        if key is not None:
            return key
        rec = await self._ring().get(key_id)
        key = self._ring().opened(rec) if rec is not None else None
        if key is not None:
            self._add(key)
        return key

    async def by_alias(self, tenant: str, alias: str) -> OpenKey | None:
        await self._ready()
        key = self._by_alias.get((tenant, alias))
        if key is None and alias == sse_kms.DEFAULT_ALIAS:
            key = self._ring().opened(await self._ring().ensure_default(tenant))
            if key is not None:
                self._add(key)
        return key

    async def for_write(self, tenant: str | None, text: str, region: str) -> OpenKey:
        """The key a write names (`text`; "" the tenant's default), if the tenant may use it
        now: AWS's KMS.NotFoundException, KMS.DisabledException or AccessDenied if not."""
        if tenant is None:
            raise errors.AccessDenied("Anonymous requests cannot use KMS keys")
        ref = sse_kms.parse_ref(text or "alias/" + sse_kms.DEFAULT_ALIAS)
        sse_kms.check_ref(ref, tenant, region)
        key = await (self.by_alias(tenant, ref.name) if ref.alias else self.by_id(ref.name))
        if key is None or key.record.tenant != tenant:
            raise sse_kms.not_found(text)
        return _enabled(key, region)

    async def for_read(self, tenant: str | None, use: sse_kms.KmsUse, region: str) -> OpenKey:
        """The key an object was sealed under, if the requester may use it now."""
        key = await self.by_id(use.key_id)
        if key is None:
            raise sse_kms.not_found(use.key_id)
        if key.record.tenant != tenant:
            raise sse_kms.unreadable()
        return _enabled(key, region)


def _enabled(key: OpenKey, region: str) -> OpenKey:
    if not key.record.enabled:
        arn = sse_kms.key_arn(region, key.record.tenant, key.record.key_id)
        raise sse_kms.KmsDisabled(f"{arn} is disabled.")
    return key
