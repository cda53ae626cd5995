"""Configuration: one TOML file (conf/local.toml by default) read into frozen dataclasses.

The same file drives `coffre up` (the whole local cluster) and `coffre gateway` (one gateway
process); the data root comes from COFFRE_DATA when set, so several commands started with the
same COFFRE_DATA see the same cluster.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from gateway import errors


@dataclass(frozen=True)
class Policy:
    """A storage policy: `ec k+m` (erasure code) or `replicate n` (k=1, m=n-1)."""

    k: int
    m: int

    @property
    def width(self) -> int:
        return self.k + self.m

    @property
    def name(self) -> str:
        return f"ec {self.k}+{self.m}" if self.k > 1 else f"replicate {self.width}"


def parse_policy(text: str) -> Policy:
    """Parse "ec 4+2" or "replicate 3"; raise ValueError on anything else."""
    words = text.strip().lower().split()
    if len(words) == 2 and words[0] == "ec" and "+" in words[1]:
        k_text, m_text = words[1].split("+", 1)
        k, m = int(k_text), int(m_text)
        if not (1 <= k <= 32 and 0 <= m <= 16):
            raise ValueError(f"ec policy out of range: {text!r}")
        return Policy(k, m)
    if len(words) == 2 and words[0] == "replicate":
        n = int(words[1])
        if not 1 <= n <= 16:
            raise ValueError(f"replicate policy out of range: {text!r}")
        return Policy(1, n - 1)
    raise ValueError(f"unknown storage policy {text!r} (want 'ec K+M' or 'replicate N')")


def policy_from_header(text: str) -> Policy:
    try:
        return parse_policy(text)
    except ValueError as exc:
        raise errors.InvalidArgument(str(exc)) from None


@dataclass(frozen=True)
class NodeLayout:
    """How `coffre up` lays out the storage nodes of a local cluster."""

    count: int = 6                  # storage node processes
    first_port: int = 9101          # node i listens on first_port + i
    devices_per_node: int = 1       # device directories per node
    capacity_bytes: int = 0         # per device; 0 = the filesystem's free space
    orphan_grace_s: float = 3600.0  # unreferenced data younger than this is never collected


@dataclass(frozen=True)
class AbuseLimits:
    """What one client may cost a gateway (`[abuse]`); enforced by gateway/abuse.py."""

    header_line_bytes_max: int = 8190           # request line and each header field
    headers_count_max: int = 100                # header fields per request
    xml_body_bytes_max: int = 2 * 1024 * 1024   # a declared XML request body (DeleteObjects
    #                                             of 1000 keys of 1024 bytes is ~1.1 MiB)
    requests_in_flight_max: int = 1024          # per gateway process; 0 = no cap
    requests_in_flight_per_client_max: int = 128  # per client address; 0 = no cap
    header_timeout_s: float = 10.0              # connection open -> header section complete
    body_idle_timeout_s: float = 60.0           # longest stall of a body being read
    keepalive_timeout_s: float = 30.0           # an idle keep-alive connection is closed


def _abuse_limits(raw: dict[str, object]) -> AbuseLimits:
    base = AbuseLimits()
    values = {f: type(getattr(base, f))(raw[f])
              for f in base.__dataclass_fields__ if f in raw}
    return AbuseLimits(**values)


@dataclass(frozen=True)
class Config:
    data_root: Path                 # rings/, nodes/, credentials.toml live here
    region: str = "us-east-1"       # the only region this cluster answers for
    listen: str = "127.0.0.1:9000"  # the gateway's S3 port
    # Gateway processes `coffre up` starts on that port (SO_REUSEPORT spreads connections):
    # one event loop per core for hashing, encoding and protocol work.
    workers: int = 1
    # `coffre up` also runs `coffre rebalance auto-fail --after-s` this long (0: it does not):
    # a node unreachable that long is failed in the rings and its data rebuilt elsewhere.
    auto_fail_after_s: float = 0.0
    # Object bytes one gateway process holds in flight, all requests together (gateway.budget).
    memory_budget_mib: int = 256
    # Data of a replaced or deleted object is removed this long after (gateway.retire), so
    # that GETs already streaming it finish.
    retire_after_s: float = 300.0
    # Listing pages listed ahead for paging clients per gateway process (gateway.list_ahead);
    # 0 turns read-ahead off.
    list_read_ahead_pages: int = 16
    # Server access logs are written into their target buckets this often (and when a
    # process has buffered enough of them, and at shutdown): gateway.log_delivery.
    access_log_flush_s: float = 300.0
    # Metering counts, durable at once in <data root>/usage-journal, reach the metadata
    # store this often (gateway.usage_journal): usage exports lag by at most this.
    usage_flush_s: float = 1.0
    virtual_host_domain: str = ""   # e.g. "s3.local": bucket.s3.local addresses a bucket
    # e.g. "s3-website.localhost": bucket.s3-website.localhost is the bucket's static website
    # (gateway.website_serve); "" = no website endpoint.
    website_domain: str = ""
    part_power: int = 8             # 2**part_power partitions per ring
    default_policy: Policy = Policy(4, 2)
    extra_policies: tuple[Policy, ...] = ()  # more data rings to build (8+3, replicate 3)
    inline_max_bytes: int = 64 * 1024        # objects up to this size live in the manifest
    index_shards: int = 8           # bucket index shards, fixed at bucket creation
    write_quorum_extra: int = 1     # a write needs k + this many durable fragments
    meta_replicas: int = 3         # metadata copies; quorums are majorities of them
    max_skew_s: int = 900           # SigV4 clock skew window (AWS: 15 minutes)
    node_timeout_s: float = 30.0    # one internal request
    bucket_cache_s: float = 2.0     # how long a gateway trusts a cached bucket record
    nodes: NodeLayout = NodeLayout()
    admin_listen: str = ""          # HOST:PORT of /metrics and /health; "" = none
    abuse: AbuseLimits = AbuseLimits()  # header/body caps, concurrency, slow clients

    @property
    def rings_dir(self) -> Path:
        return self.data_root / "rings"

    @property
    def credentials_path(self) -> Path:
        return self.data_root / "credentials.toml"

    @property
    def all_policies(self) -> tuple[Policy, ...]:
        seen: list[Policy] = [self.default_policy]
        seen.extend(p for p in self.extra_policies if p not in seen)
        return tuple(seen)


def load(path: str | os.PathLike[str], data_root: str | None = None) -> Config:
    """Read a TOML config; COFFRE_DATA (or `data_root`) overrides the file's data root."""
    raw = tomllib.loads(Path(path).read_text())
    cluster = raw.get("cluster", {})
    gw = raw.get("gateway", {})
    nodes = raw.get("nodes", {})
    root = data_root or os.environ.get("COFFRE_DATA") or cluster.get("data_root", "var")
    return Config(
        data_root=Path(root).absolute(),
        region=cluster.get("region", "us-east-1"),
        listen=gw.get("listen", "127.0.0.1:9000"),
        workers=_positive(gw.get("workers", 1), "gateway.workers"),
        memory_budget_mib=_positive(gw.get("memory_budget_mib", 256), "gateway.memory_budget_mib"),
        auto_fail_after_s=float(cluster.get("auto_fail_after_s", 0.0)),
        retire_after_s=_non_negative(gw.get("retire_after_s", 300.0), "gateway.retire_after_s"),
        list_read_ahead_pages=int(_non_negative(gw.get("list_read_ahead_pages", 16),
                                                "gateway.list_read_ahead_pages")),
        access_log_flush_s=_positive_s(gw.get("access_log_flush_s", 300.0),
                                       "gateway.access_log_flush_s"),
        usage_flush_s=_positive_s(gw.get("usage_flush_s", 1.0), "gateway.usage_flush_s"),
        virtual_host_domain=gw.get("virtual_host_domain", ""),
        website_domain=gw.get("website_domain", ""),
        part_power=int(cluster.get("part_power", 8)),
        default_policy=parse_policy(cluster.get("default_policy", "ec 4+2")),
        extra_policies=tuple(parse_policy(p) for p in cluster.get("extra_policies", [])),
        inline_max_bytes=int(gw.get("inline_max_bytes", 64 * 1024)),
        index_shards=int(gw.get("index_shards", 8)),
        write_quorum_extra=int(gw.get("write_quorum_extra", 1)),
        meta_replicas=int(cluster.get("meta_replicas", 3)),
        max_skew_s=int(gw.get("max_skew_s", 900)),
        node_timeout_s=float(gw.get("node_timeout_s", 30.0)),
        bucket_cache_s=float(gw.get("bucket_cache_s", 2.0)),
        abuse=_abuse_limits(raw.get("abuse", {})),
        admin_listen=_admin_listen(raw.get("admin", {}), gw.get("listen", "127.0.0.1:9000")),
        nodes=NodeLayout(
            count=int(nodes.get("count", 6)),
            first_port=int(nodes.get("first_port", 9101)),
            devices_per_node=int(nodes.get("devices_per_node", 1)),
            capacity_bytes=int(nodes.get("capacity_bytes", 0)),
            orphan_grace_s=float(nodes.get("orphan_grace_s", 3600.0)),
        ),
    )


def _positive(raw: object, name: str) -> int:
    value = int(str(raw))
    if value < 1:
        raise ValueError(f"{name} must be >= 1")
    return value


def _non_negative(raw: object, name: str) -> float:
    value = float(str(raw))
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0")
    return value


def _positive_s(raw: object, name: str) -> float:
    value = float(str(raw))
    if not value > 0:
        raise ValueError(f"{name} must be > 0")
    return value


def _admin_listen(admin: dict[str, object], listen: str) -> str:
    """`[admin] listen`; by default loopback on the S3 port + 1000; "off" disables it."""
    text = str(admin.get("listen", ""))
    if text == "off":
        return ""
    if text:
        return text
    return f"127.0.0.1:{int(listen.rsplit(':', 1)[1]) + 1000}"
