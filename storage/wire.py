"""The node's internal HTTP API, as names shared by server.py and client.py.

Paths (keys travel as "k" + hex so that an empty key still makes a path segment):
    PUT    /v1/frag/{dev}/{part}/{key}          body = fragment (Content-Length required)
    GET    /v1/frag/{dev}/{part}/{key}?offset=&length=     streamed; X-Coffre-Size = full size
    HEAD   /v1/frag/{dev}/{part}/{key}          X-Coffre-Size
    DELETE /v1/frag/{dev}/{part}/{key}          idempotent
    GET    /v1/frags/{dev}/{part}?after=&limit=              msgpack [[key, size], ...]
    PUT    /v1/meta/{dev}/{part}/{key}?ts=N[&tombstone=1]    body = value
    GET    /v1/meta/{dev}/{part}/{key}          body = value; X-Coffre-Ts, X-Coffre-Tombstone
    GET    /v1/metas/{dev}/{part}?prefix=&start_after=&start_at=&limit=
                                                msgpack [[key, ts (16 bytes), value|nil], ...]
    GET    /v1/summary/{dev}/{part}             JSON
    PUT|GET /admin/rings/{name}; GET /admin/info; GET /health/live
    GET    /v1/fragsum/{dev}/{part}/{key}       JSON {"size", "xxh3"} of the stored body
    GET    /admin/rebalance                     JSON status of the rebalancer (rebalancer.py)
    POST   /admin/rebalance/pause|resume        JSON status
    POST   /admin/rebalance/throttle?bytes_per_s=&concurrency=     JSON status
    GET    /admin/rebalance/sizes               JSON {"devices": {id: [[part, frags, bytes]]}}
Statuses: 404 missing, 416 bad range, 422 corrupt (quarantined), 507 full, 503 device failed,
400 bad request. Error bodies are JSON {"error": class name, "reason": text}.
The same port also serves the framed RPC channel (rpc.py): a connection whose first bytes are
rpc_stream.MAGIC speaks it instead of HTTP.
"""

from __future__ import annotations

REBALANCE_PATH = "/admin/rebalance"
FRAGSUM_PATH = "/v1/fragsum/{dev}/{part}/{key}"

H_SIZE = "X-Coffre-Size"
H_TS = "X-Coffre-Ts"
H_TOMBSTONE = "X-Coffre-Tombstone"
H_APPLIED = "X-Coffre-Applied"


def key_to_path(key: bytes) -> str:
    return "k" + key.hex()


def key_from_path(text: str) -> bytes:
    if not text.startswith("k"):
        raise ValueError("key must start with 'k'")
    return bytes.fromhex(text[1:])


def frag_path(device: int, partition: int, key: bytes) -> str:
    return f"/v1/frag/{device}/{partition}/{key_to_path(key)}"


def meta_path(device: int, partition: int, key: bytes) -> str:
    return f"/v1/meta/{device}/{partition}/{key_to_path(key)}"


def fragsum_path(device: int, partition: int, key: bytes) -> str:
    return f"/v1/fragsum/{device}/{partition}/{key_to_path(key)}"
