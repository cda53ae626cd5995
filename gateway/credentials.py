"""Access keys: the admin key that `coffre up` creates, read from <data root>/credentials.toml.

The file is written once with mode 0600 and read by every gateway that shares the data
root. (Tenants and keys move into the metadata store with the tenants issue.)
"""

from __future__ import annotations

import os
import secrets
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AccessKey:
    access_key: str
    secret_key: str
    tenant: str


def _random(n: int, alphabet: str) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def ensure(path: Path, endpoint: str, region: str) -> AccessKey:
    """Create the admin credentials file if missing (env vars win); return the admin key."""
    access = os.environ.get("COFFRE_ACCESS_KEY")
    secret = os.environ.get("COFFRE_SECRET_KEY")
    if path.exists() and not (access and secret):
        return load(path)[0]
    key = AccessKey(
        access or "CF" + _random(18, string.ascii_uppercase + string.digits),
        secret or _random(40, string.ascii_letters + string.digits + "/+"),
        "admin",
    )
    text = (
        "# Coffre admin credentials (created by `coffre up`). Keep this file private.\n"
        f'endpoint = "{endpoint}"\nregion = "{region}"\ntenant = "{key.tenant}"\n'
        f'access_key = "{key.access_key}"\nsecret_key = "{key.secret_key}"\n'
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return key


def load(path: Path) -> list[AccessKey]:
    raw = tomllib.loads(path.read_text())
    return [AccessKey(raw["access_key"], raw["secret_key"], raw.get("tenant", "admin"))]
