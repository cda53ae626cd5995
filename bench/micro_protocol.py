"""Micro-benchmarks of the gateway's pure protocol code: SigV4, aws-chunked, checksums.

Prints, for one core: SigV4 verification and signing cost per request (µs), the aws-chunked
decoder's throughput in each payload mode (MB/s of decoded data), and each checksum's
throughput (MB/s), all in process CPU time, with ratios to the cheapest reference (memcpy,
plain MD5). Seeded; nothing here asserts a time.
Run: `.venv/bin/python -m bench.micro_protocol [--seconds S]`.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from gateway.checksums import ChecksumAlgorithm, Checksummer
from gateway.chunked import ChunkedDecoder, encode_chunked
from gateway.sigv4 import AuthResult, PayloadMode, authenticate
from gateway.sigv4_client import presign_url, sign_request

AKID = "AKIDBENCH"
SECRET = "bench-secret"
REGION = "us-east-1"
NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
MB = 1e6


def per_call_us(fn: Callable[[], object], seconds: float) -> float:
    """Mean CPU time of fn() in µs over about `seconds` of CPU (after a short warm-up).

    CPU time, not wall time: the machine is shared, and a busy neighbour should not make
    our code look slower than it is."""
    for _ in range(50):
        fn()
    calls, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        for _ in range(100):
            fn()
        calls += 100
    return elapsed / calls * 1e6


def throughput_mb_s(fn: Callable[[], object], nbytes: int, seconds: float) -> float:
    fn()
    rounds, start = 0, time.process_time()
    while (elapsed := time.process_time() - start) < seconds:
        fn()
        rounds += 1
    return rounds * nbytes / elapsed / MB


def bench_sigv4(seconds: float) -> None:
    url = "http://127.0.0.1:9000/bench/some/key%20with%20space.bin?partNumber=3&uploadId=abc"
    extra = {"content-type": "application/octet-stream", "content-length": "1048576",
             "x-amz-meta-owner": "bench", "user-agent": "bench/1.0"}
    headers = list(sign_request("PUT", url, extra, AKID, SECRET, REGION, NOW).items())
    parts = urlsplit(url)
    presigned = urlsplit(presign_url("GET", url, AKID, SECRET, REGION, NOW, 3600))
    host = [("host", "127.0.0.1:9000")]

    def secrets(akid: str) -> str | None:
        return SECRET if akid == AKID else None

    verify_us = per_call_us(lambda: authenticate(
        "PUT", parts.path, parts.query, headers, secrets, NOW, REGION), seconds)
    presigned_us = per_call_us(lambda: authenticate(
        "GET", presigned.path, presigned.query, host, secrets, NOW, REGION), seconds)
    sign_us = per_call_us(lambda: sign_request(
        "PUT", url, extra, AKID, SECRET, REGION, NOW), seconds)
    print("SigV4 (per request, one core)")
    print(f"  verify, Authorization header   {verify_us:8.1f} µs  ({1e6 / verify_us:,.0f}/s)")
    print(f"  verify, presigned URL          {presigned_us:8.1f} µs  "
          f"({1e6 / presigned_us:,.0f}/s)")
    print(f"  sign_request (client side)     {sign_us:8.1f} µs")


def _auth(mode: PayloadMode) -> AuthResult:
    from gateway.sigv4 import signing_key

    return AuthResult(AKID, REGION, "20240301T120000Z", "20240301/us-east-1/s3/aws4_request",
                      signing_key(SECRET, "20240301", REGION), "0" * 64, mode, None, False)


def bench_chunked(seconds: float, body: bytes) -> None:
    print(f"aws-chunked decode ({len(body) // 2**20} MiB body, fed in 64 KiB pieces)")
    feed_bytes = 64 * 1024
    memcpy = throughput_mb_s(lambda: bytearray(body), len(body), seconds)
    cases = [
        ("unsigned+trailer, 1 MiB chunks", PayloadMode.STREAMING_UNSIGNED_TRAILER, 2**20),
        ("unsigned+trailer, 64 KiB chunks", PayloadMode.STREAMING_UNSIGNED_TRAILER, 2**16),
        ("signed, 64 KiB chunks", PayloadMode.STREAMING_SIGNED, 2**16),
        ("signed+trailer, 1 MiB chunks", PayloadMode.STREAMING_SIGNED_TRAILER, 2**20),
    ]
    for name, mode, chunk in cases:
        auth = _auth(mode) if mode.chunk_signed else None
        trailers = [("x-amz-checksum-crc32", "AAAAAA==")] if mode.has_trailer else []
        wire = encode_chunked(body, mode, chunk, auth, trailers)
        pieces = [wire[i:i + feed_bytes] for i in range(0, len(wire), feed_bytes)]
        declared = [n for n, _ in trailers]

        def run(mode: PayloadMode = mode, auth: AuthResult | None = auth,
                pieces: list[bytes] = pieces, declared: list[str] = declared) -> None:
            decoder = ChunkedDecoder(mode, auth, declared, len(body))
            for piece in pieces:
                decoder.feed(piece)
            decoder.eof()

        rate = throughput_mb_s(run, len(body), seconds)
        print(f"  {name:34s} {rate:9.0f} MB/s  ({rate / memcpy:.2f} x memcpy)")
    sha = throughput_mb_s(lambda: hashlib.sha256(body).digest(), len(body), seconds)
    print(f"  {'reference: memcpy':34s} {memcpy:9.0f} MB/s")
    print(f"  {'reference: sha256 alone':34s} {sha:9.0f} MB/s")


def bench_checksums(seconds: float, body: bytes) -> None:
    print(f"checksums ({len(body) // 2**20} MiB buffer, updated in 1 MiB pieces)")
    view = memoryview(body)
    step = 2**20

    def over(update: Callable[[memoryview], object]) -> Callable[[], None]:
        def run() -> None:
            for i in range(0, len(body), step):
                update(view[i:i + step])
        return run

    md5 = throughput_mb_s(over(hashlib.md5().update), len(body), seconds)
    for alg in ChecksumAlgorithm:
        rate = throughput_mb_s(over(Checksummer(alg).update), len(body), seconds)
        print(f"  {alg.aws_name:10s} {rate:9.0f} MB/s  ({rate / md5:5.2f} x md5)")
    print(f"  {'MD5':10s} {md5:9.0f} MB/s  (reference: the ETag)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per figure")
    parser.add_argument("--body-mib", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"seed={args.seed}")
    body = random.Random(args.seed).randbytes(args.body_mib * 2**20)
    bench_sigv4(args.seconds)
    bench_chunked(args.seconds, body)
    bench_checksums(args.seconds, body)


if __name__ == "__main__":
    main()
