"""The two ids every S3 response carries: x-amz-request-id and x-amz-id-2 (the host id).

AWS sends both on every response and names both at the end of every error document
(<RequestId>, then <HostId>). The host id is an opaque base64 string of its own per request.
Here it is derived from the request id with a key this process draws at start, so that
wherever the request id is known (the response headers, an error body, a website error
page, the access log line) the same host id follows from it, and nothing has to carry it.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import MutableMapping

# 56 bytes: AWS's host ids are 76 base64 characters.
_HOST_ID_BYTES = 56
_HOST_KEY = secrets.token_bytes(32)     # per process: ids of two gateways never collide


def new_request_id() -> str:
    return secrets.token_hex(8).upper()


def host_id(request_id: str) -> str:
    digest = hashlib.blake2b(request_id.encode(), key=_HOST_KEY,
                             digest_size=_HOST_ID_BYTES).digest()
    return base64.b64encode(digest).decode()


def stamp(headers: MutableMapping[str, str], request_id: str) -> None:
    """Put both ids on a response's headers."""
    headers["x-amz-request-id"] = request_id
    headers["x-amz-id-2"] = host_id(request_id)
