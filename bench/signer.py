"""SigV4 request signing for the load generator, behind one small interface.

Two implementations: botocore's `S3SigV4Auth` (the reference every SDK user runs) and Coffre's
own `gateway.sigv4.sign_request`. Both are measured by `--self-test`, because signing is the
largest share of the client's per-request cost. The payload hash is always given by the caller
(`UNSIGNED-PAYLOAD`, or the SHA-256 of a body the caller knows), so neither signer ever reads
a body. Rules: no I/O; the URL passed must already be URI-encoded exactly as it is sent.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from botocore.auth import S3SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class SignerKind(Enum):
    BOTOCORE = "botocore"
    GATEWAY = "gateway"


class Signer(Protocol):
    def sign(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        """The headers to send: *headers* plus the date, payload hash and authorization."""
        ...


class _GivenPayloadAuth(S3SigV4Auth):  # type: ignore[misc]
    """botocore's S3 signer, told the payload hash instead of hashing `request.body`."""

    def payload(self, request: Any) -> str:
        return str(request.context["payload_sha256"])


class BotocoreSigner:
    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self._auth = _GivenPayloadAuth(Credentials(access_key, secret_key), "s3", region)

    def sign(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, headers=headers)
        request.context["payload_sha256"] = payload_sha256
        self._auth.add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}


class GatewaySigner:
    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        # Imported here so that the botocore path works in a tree without the gateway.
        from gateway.sigv4 import sign_request

        self._sign = sign_request
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region

    def sign(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        return self._sign(
            method, url, headers, self._access_key, self._secret_key, self._region,
            datetime.now(UTC), payload_sha256,
        )


def make_signer(kind: SignerKind, access_key: str, secret_key: str, region: str) -> Signer:
    factories: dict[SignerKind, Callable[[str, str, str], Signer]] = {
        SignerKind.BOTOCORE: BotocoreSigner,
        SignerKind.GATEWAY: GatewaySigner,
    }
    return factories[kind](access_key, secret_key, region)


def sign_cost_us(signer: Signer, count: int = 2000) -> float:
    """Mean CPU time of one signature (a GET with three headers), in microseconds."""
    start = time.process_time()
    for i in range(count):
        signer.sign("GET", f"http://127.0.0.1:9000/bench/key-{i}", {}, UNSIGNED_PAYLOAD)
    return (time.process_time() - start) / count * 1e6
