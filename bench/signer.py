"""SigV4 request signing for the load generator, behind one small interface.

Three implementations: botocore's `S3SigV4Auth` (the reference every SDK user runs), Coffre's
own `gateway.sigv4_client.sign_request`, and `FastSigner`, a lean one for the URLs this client
builds
(already canonical: encoded path, sorted encoded query) that caches the signing key per day and
the date string per second. All three are measured by `--self-test`: inside a busy load loop
the gateway's generic signer cost ~170 us per request (botocore's more), as much as aiohttp
itself, and a benchmark must spend its CPU on requests. Tests check that the fast signer agrees
with the other two. The payload hash is always given by the caller (`UNSIGNED-PAYLOAD`, or the
SHA-256 of a body the caller knows), so no signer ever reads a body.
Rules: no I/O; the URL passed must already be URI-encoded exactly as it is sent.
"""

import hashlib
import hmac
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


class SignerKind(Enum):
    FAST = "fast"
    BOTOCORE = "botocore"
    GATEWAY = "gateway"


class Signer(Protocol):
    def sign(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        """The headers to send: *headers* plus the date, payload hash and authorization."""
        ...


class FastSigner:
    """SigV4 for URLs whose path is URI-encoded and whose query is encoded (S3 style).

    Every header given is signed, as are host, x-amz-date and x-amz-content-sha256. The query
    is sorted here; names and values are taken as encoded by the caller.
    """

    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        self._access_key = access_key
        self._secret = ("AWS4" + secret_key).encode()
        self._region = region
        self._second = -1
        self._amz_date = ""
        self._day = ""
        self._key = b""

    def _clock(self, now_s: float) -> None:
        second = int(now_s)
        if second == self._second:
            return
        self._second = second
        self._amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
        if self._amz_date[:8] != self._day:
            self._day = self._amz_date[:8]
            key = self._secret
            for part in (self._day, self._region, "s3", "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._key = key

    def sign(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        return self.sign_at(method, url, headers, payload_sha256, time.time())

    def sign_at(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str, now_s: float
    ) -> dict[str, str]:
        self._clock(now_s)
        host, _, rest = url.partition("://")[2].partition("/")
        if host.endswith(":80") and url.startswith("http:"):
            host = host[:-3]
        path, _, query = rest.partition("?")
        if query:
            pairs = sorted(p if "=" in p else p + "=" for p in query.split("&") if p)
            query = "&".join(pairs)
        out = dict(headers)
        out["x-amz-date"] = self._amz_date
        out["x-amz-content-sha256"] = payload_sha256
        table = sorted((k.lower(), " ".join(v.split())) for k, v in out.items())
        table.append(("host", host))
        table.sort()
        names = ";".join(k for k, _ in table)
        canonical = "\n".join((
            method, "/" + path, query, "".join(f"{k}:{v}\n" for k, v in table), names,
            payload_sha256,
        ))
        scope = f"{self._day}/{self._region}/s3/aws4_request"
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        to_sign = f"AWS4-HMAC-SHA256\n{self._amz_date}\n{scope}\n{digest}"
        signature = hmac.new(self._key, to_sign.encode(), hashlib.sha256).hexdigest()
        out["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
            f"SignedHeaders={names}, Signature={signature}"
        )
        return out


class BotocoreSigner:
    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        # Imported here: botocore is a test dependency, the gateway signer needs none.
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        class GivenPayloadAuth(S3SigV4Auth):  # type: ignore[misc]
            """botocore's S3 signer, told the payload hash instead of hashing the body."""

            def payload(self, request: Any) -> str:
                return str(request.context["payload_sha256"])

        self._request_class = AWSRequest
        self._auth = GivenPayloadAuth(Credentials(access_key, secret_key), "s3", region)

    def sign(
        self, method: str, url: str, headers: dict[str, str], payload_sha256: str
    ) -> dict[str, str]:
        request = self._request_class(method=method, url=url, headers=headers)
        request.context["payload_sha256"] = payload_sha256
        self._auth.add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}


class GatewaySigner:
    def __init__(self, access_key: str, secret_key: str, region: str) -> None:
        # Imported here so that the botocore path works in a tree without the gateway.
        from gateway.sigv4_client import sign_request

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
        SignerKind.FAST: FastSigner,
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
