"""`coffre admin tenant|key|kms|quota|stored ...`: tenants, access keys, KMS keys and quotas
of a cluster.

The commands talk to the storage nodes directly through a MetaStore built from the same
config file (and COFFRE_DATA) as the cluster, the way a gateway does: no gateway needs to
be up, and every gateway sees a change at its next key cache refresh (a few seconds).
`--json` prints one JSON document on stdout for scripts; errors go to stderr with exit
code 1 (bad request) or 2 (the cluster did not answer). A secret is printed once, by
`key create`, and never again; a KMS key's material is never printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from gateway import config as config_mod
from gateway import errors
from gateway.catalog import Catalog
from gateway.counters import Counters
from gateway.hlc import Clock
from gateway.kms import KeyBox, Keyring, KeyState, KmsKeyRecord
from gateway.metastore import MetaStore
from gateway.quotas import Quota, Quotas, Scope
from gateway.sse_kms import key_arn
from gateway.tenants import (
    Directory,
    KeyRecord,
    SecretBox,
    TenantError,
    TenantRecord,
    load_master_key,
)
from gateway.usage_cli import add_usage_command
from ring.ringset import RingSet
from storage.client import NodeClient

straggler_wait_s = 5.0      # how long a command waits for the last replicas' writes

Action = Callable[[Directory, Catalog, argparse.Namespace], Awaitable[Any]]
KmsAction = Callable[[Keyring, str, argparse.Namespace], Awaitable[Any]]   # str: the region


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _tenant_doc(t: TenantRecord) -> dict[str, Any]:
    return {"tenant": t.name, "admin": t.admin, "created": _iso(t.created_ms)}


def _key_doc(k: KeyRecord) -> dict[str, Any]:
    return {"access_key": k.access_key, "tenant": k.tenant, "status": k.status.value,
            "created": _iso(k.created_ms)}


def _kms_doc(k: KmsKeyRecord, region: str) -> dict[str, Any]:
    return {"key_id": k.key_id, "arn": key_arn(region, k.tenant, k.key_id),
            "tenant": k.tenant, "alias": f"alias/{k.alias}" if k.alias else "",
            "state": k.state.value, "created": _iso(k.created_ms)}


# ---- the actions: each returns a JSON-able document ----------------------------------------


async def _tenant_create(d: Directory, _c: Catalog, args: argparse.Namespace) -> Any:
    return _tenant_doc(await d.create_tenant(args.name, admin=args.admin))


async def _tenant_list(d: Directory, _c: Catalog, _args: argparse.Namespace) -> Any:
    return [_tenant_doc(t) for t in await d.list_tenants()]


async def _tenant_delete(d: Directory, catalog: Catalog, args: argparse.Namespace) -> Any:
    tenant = await d.get_tenant(args.name)
    if tenant is None:
        raise TenantError(f"no tenant {args.name!r}")
    if tenant.admin and not args.force:
        raise TenantError(f"{args.name!r} is an admin tenant (use --force)")
    owned = [b.name for b in await catalog.list_buckets() if b.owner == args.name]
    if owned:
        # Buckets outlive no owner: a re-created tenant of the same name would inherit them.
        raise TenantError(f"tenant {args.name!r} still owns buckets: {', '.join(owned)}")
    revoked = await d.delete_tenant(args.name)
    return {"tenant": args.name, "deleted": True, "revoked_keys": revoked}


async def _key_create(d: Directory, _c: Catalog, args: argparse.Namespace) -> Any:
    new = await d.create_key(args.tenant)
    return {**_key_doc(new.record), "secret_key": new.secret_key}


async def _key_list(d: Directory, _c: Catalog, args: argparse.Namespace) -> Any:
    return [_key_doc(k) for k in await d.list_keys(args.tenant)]


async def _key_revoke(d: Directory, _c: Catalog, args: argparse.Namespace) -> Any:
    return _key_doc(await d.revoke_key(args.access_key))


async def _kms_create(ring: Keyring, region: str, args: argparse.Namespace) -> Any:
    return _kms_doc(await ring.create_key(args.tenant, args.alias or ""), region)


async def _kms_list(ring: Keyring, region: str, args: argparse.Namespace) -> Any:
    return [_kms_doc(k, region) for k in await ring.list_keys(args.tenant)]


async def _kms_disable(ring: Keyring, region: str, args: argparse.Namespace) -> Any:
    return _kms_doc(await ring.set_state(args.key_id, KeyState.DISABLED), region)


async def _kms_enable(ring: Keyring, region: str, args: argparse.Namespace) -> Any:
    return _kms_doc(await ring.set_state(args.key_id, KeyState.ENABLED), region)


def _quota_target(args: argparse.Namespace) -> tuple[Scope, str]:
    return (Scope.TENANT, args.tenant) if args.tenant else (Scope.BUCKET, args.bucket)


async def _quotas(d: Directory, catalog: Catalog) -> Quotas:
    return Quotas(d.store, catalog, Counters(catalog, 0))


async def _quota_set(d: Directory, catalog: Catalog, args: argparse.Namespace) -> Any:
    scope, name = _quota_target(args)
    if scope is Scope.TENANT and await d.get_tenant(name) is None:
        raise TenantError(f"no tenant {name!r}")
    if scope is Scope.BUCKET and await catalog.find_bucket(name) is None:
        raise TenantError(f"no bucket {name!r}")
    quota = Quota(args.bytes, args.objects)
    await (await _quotas(d, catalog)).set(scope, name, quota)
    return {scope.name.lower(): name, "bytes_max": quota.bytes_max,
            "objects_max": quota.objects_max}


async def _quota_get(d: Directory, catalog: Catalog, args: argparse.Namespace) -> Any:
    scope, name = _quota_target(args)
    quota = await (await _quotas(d, catalog)).get(scope, name)
    return {scope.name.lower(): name, "bytes_max": quota.bytes_max,
            "objects_max": quota.objects_max}


async def _usage(d: Directory, catalog: Catalog, args: argparse.Namespace) -> Any:
    counters = Counters(catalog, 0)
    rows = []
    for b in await catalog.list_buckets():
        if args.tenant is None or b.owner == args.tenant:
            u = await counters.usage(b)
            rows.append({"tenant": b.owner, "bucket": b.name, "objects": u.objects,
                         "bytes": u.bytes})
    return rows


# ---- running one action against the cluster ----------------------------------------------


@asynccontextmanager
async def _cluster(args: argparse.Namespace
                   ) -> AsyncIterator[tuple[MetaStore, bytes, config_mod.Config]]:
    """The cluster's metadata store, master key and config, for one command."""
    cfg = config_mod.load(args.config, args.data)
    rings = RingSet(cfg.rings_dir)
    client = NodeClient(request_timeout_s=min(cfg.node_timeout_s, 10.0))
    try:
        meta = MetaStore(rings, client, Clock())
        yield meta, load_master_key(cfg.data_root, create=False), cfg
        await _drain(meta)
    finally:
        await client.close()


async def _with_store(args: argparse.Namespace, action: Action) -> Any:
    async with _cluster(args) as (meta, master, _cfg):
        return await action(Directory(meta, SecretBox(master)), Catalog(meta, 0.0), args)


async def _with_keyring(args: argparse.Namespace, action: KmsAction) -> Any:
    async with _cluster(args) as (meta, master, cfg):
        keyring = Keyring(Directory(meta, SecretBox(master)), KeyBox(master))
        return await action(keyring, cfg.region, args)


async def _drain(meta: MetaStore) -> None:
    """A quorum write returns once a majority answered; let the other replicas' writes
    land too before the process closes its connections under them."""
    await meta.settle(straggler_wait_s)


def _print_text(doc: Any) -> None:
    rows = doc if isinstance(doc, list) else [doc]
    for row in rows:
        print("  ".join(f"{k}={v}" for k, v in row.items()))


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    return _reporting(lambda args: _with_store(args, action))


def _kms_runner(action: KmsAction) -> Callable[[argparse.Namespace], int]:
    return _reporting(lambda args: _with_keyring(args, action))


def _reporting(command: Callable[[argparse.Namespace], Coroutine[Any, Any, Any]]
               ) -> Callable[[argparse.Namespace], int]:
    """Runs a command; prints its document, or its error with the exit code."""
    def run(args: argparse.Namespace) -> int:
        try:
            doc = asyncio.run(command(args))
        except TenantError as exc:
            print(f"coffre admin: {exc}", file=sys.stderr)
            return 1
        except (errors.S3Error, OSError, ValueError) as exc:
            print(f"coffre admin: the cluster did not answer: {exc}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(doc, indent=None))
        else:
            _print_text(doc)
        return 0
    return run


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="conf/local.toml")
    p.add_argument("--data", default=None, help="data root (default: COFFRE_DATA or config)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _add_tenant(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    tenant = groups.add_parser("tenant", help="create, list or delete tenants")
    sub = tenant.add_subparsers(dest="tenant_command", required=True)
    create = sub.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="an operator tenant")
    create.set_defaults(func=_runner(_tenant_create))
    lst = sub.add_parser("list", help="list tenants")
    lst.set_defaults(func=_runner(_tenant_list))
    delete = sub.add_parser("delete", help="delete a tenant that owns no bucket; revoke "
                                           "its keys")
    delete.add_argument("name")
    delete.add_argument("--force", action="store_true", help="even an admin tenant")
    delete.set_defaults(func=_runner(_tenant_delete))
    for p in (create, lst, delete):
        _common(p)


def _add_key(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    key = groups.add_parser("key", help="create, list or revoke access keys")
    sub = key.add_subparsers(dest="key_command", required=True)
    create = sub.add_parser("create", help="create an access key; prints its secret once")
    create.add_argument("--tenant", required=True)
    create.set_defaults(func=_runner(_key_create))
    lst = sub.add_parser("list", help="list access keys (never their secrets)")
    lst.add_argument("--tenant", default=None)
    lst.set_defaults(func=_runner(_key_list))
    revoke = sub.add_parser("revoke", help="revoke an access key (every gateway within "
                                           "seconds)")
    revoke.add_argument("access_key")
    revoke.set_defaults(func=_runner(_key_revoke))
    for p in (create, lst, revoke):
        _common(p)


def _add_kms(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kms = groups.add_parser("kms", help="the tenants' SSE-KMS keys")
    sub = kms.add_subparsers(dest="kms_command", required=True)
    create = sub.add_parser("create-key", help="create a KMS key of a tenant")
    create.add_argument("--tenant", required=True)
    create.add_argument("--alias", default=None, help="NAME or alias/NAME, unique per tenant")
    create.set_defaults(func=_kms_runner(_kms_create))
    lst = sub.add_parser("list", help="list KMS keys (never their material)")
    lst.add_argument("--tenant", default=None)
    lst.set_defaults(func=_kms_runner(_kms_list))
    disable = sub.add_parser("disable", help="refuse the key's use, for writes and reads "
                                             "(every gateway within seconds)")
    disable.add_argument("key_id")
    disable.set_defaults(func=_kms_runner(_kms_disable))
    enable = sub.add_parser("enable", help="allow a disabled key's use again")
    enable.add_argument("key_id")
    enable.set_defaults(func=_kms_runner(_kms_enable))
    for p in (create, lst, disable, enable):
        _common(p)


def _add_quota(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    quota = groups.add_parser("quota", help="storage quotas of a tenant or a bucket")
    sub = quota.add_subparsers(dest="quota_command", required=True)
    set_ = sub.add_parser("set", help="set a quota (0 = no limit)")
    set_.add_argument("--bytes", type=int, default=0)
    set_.add_argument("--objects", type=int, default=0)
    set_.set_defaults(func=_runner(_quota_set))
    get = sub.add_parser("get", help="show a quota")
    get.set_defaults(func=_runner(_quota_get))
    for p in (set_, get):
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--tenant")
        target.add_argument("--bucket")
        _common(p)
    usage = groups.add_parser("stored", help="objects and bytes stored, per bucket")
    usage.add_argument("--tenant", default=None)
    usage.set_defaults(func=_runner(_usage))
    _common(usage)


def _init(args: argparse.Namespace) -> int:
    """Create the data root's secrets once, on the admin machine of a multi-host cluster:
    the admin key (credentials.toml, 0600) and the master key that seals tenants' secrets.
    Both files are then copied to every gateway host (as the README's deployment says)."""
    from gateway.credentials import ensure
    from gateway.tenants import MASTER_KEY_FILE, ensure_master_key

    cfg = config_mod.load(args.config, args.data)
    ensure_master_key(cfg.data_root)
    host, port = cfg.listen.rsplit(":", 1)
    key = ensure(cfg.credentials_path, f"http://{host}:{port}", cfg.region)
    print(f"admin access key {key.access_key}; copy {cfg.credentials_path} and "
          f"{cfg.data_root / MASTER_KEY_FILE} to every gateway host")
    return 0


def add_admin_commands(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds `init`, `tenant`, `key`, `kms`, `quota` and `stored` under an existing `coffre
    admin` parser's subparsers."""
    init = groups.add_parser("init", help="create the admin key and the master key (once)")
    init.add_argument("--config", default="conf/local.toml")
    init.add_argument("--data", default=None, help="data root (default: COFFRE_DATA or config)")
    init.set_defaults(func=_init)
    _add_tenant(groups)
    _add_key(groups)
    _add_kms(groups)
    _add_quota(groups)
    add_usage_command(groups)       # `usage`: metered usage for billing


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers `coffre admin` with its `tenant` and `key` groups."""
    admin = sub.add_parser("admin", help="tenants and access keys")
    groups = admin.add_subparsers(dest="admin_command", required=True)
    add_admin_commands(groups)


def main(argv: list[str] | None = None) -> int:
    """`python -m gateway.admin_cli tenant ...`: the same commands without `coffre`."""
    parser = argparse.ArgumentParser(prog="coffre admin")
    add_admin_commands(parser.add_subparsers(dest="admin_command", required=True))
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
