"""A botocore S3 client that never leaves the process, for tests of what SDKs send and read:
the request body of one operation is captured and a given answer comes back as a 200."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def offline_client(op: str, answer: bytes, seen: list[bytes],
                   headers_seen: list[dict[str, str]] | None = None) -> Any:
    """An S3 client whose `op` never leaves the process: its request body lands in `seen`
    (its headers in `headers_seen`, if given) and `answer` comes back as a 200."""
    client = botocore.session.get_session().create_client(
        "s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")

    def send(request: Any, **_: Any) -> AWSResponse:
        seen.append(request.body if isinstance(request.body, bytes) else b"")
        if headers_seen is not None:
            headers_seen.append({k: v.decode() if isinstance(v, bytes) else v
                                 for k, v in request.headers.items()})
        return AWSResponse(request.url, 200, {}, _Raw(answer))

    client.meta.events.register(f"before-send.s3.{op}", send)
    return client
