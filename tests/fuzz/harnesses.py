"""atheris harnesses for the pure parsers of the S3 front (issue 12).

Each target takes the fuzzer's bytes and feeds them to one parser; an S3Error is a fine
answer (a 4xx/501 for the client), any other exception is a crash that atheris reports with
the input that caused it. Run one directly:

    python -m tests.fuzz.harnesses <target> -runs=20000 [-seed=N]

tests/fuzz/test_atheris.py runs every target this way for a bounded number of runs.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports():
    from gateway import conditions, errors, names, ranges, s3xml, sigv4
    from gateway.chunked import ChunkedDecoder, encode_chunked

ACCESS, SECRET, REGION = "AKIDFUZZ", "fuzz-secret-key-1234567890", "us-east-1"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AMZ_DATE = NOW.strftime("%Y%m%dT%H%M%SZ")


def _secret(access: str) -> str | None:
    return SECRET if access == ACCESS else None


def _answer(fn: Callable[[], object]) -> None:
    try:
        fn()
    except errors.S3Error as err:
        if not (400 <= err.status < 500 or err.status == 501):
            raise AssertionError(f"{err.code} answered {err.status}") from None


def sigv4_header(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = [("host", "127.0.0.1:9000"),
               ("x-amz-date", fdp.PickValueInList([AMZ_DATE, fdp.ConsumeUnicode(20)])),
               ("x-amz-content-sha256", fdp.PickValueInList(
                   [sigv4.UNSIGNED_PAYLOAD, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                    fdp.ConsumeUnicode(70)])),
               ("authorization", "AWS4-HMAC-SHA256 Credential=" + fdp.ConsumeUnicode(300))]
    path = "/" + fdp.ConsumeUnicode(40)
    _answer(lambda: sigv4.authenticate("PUT", path, "", headers, _secret, NOW, REGION))


def sigv4_query(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    base = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS}%2F{AMZ_DATE[:8]}"
            f"%2F{REGION}%2Fs3%2Faws4_request&X-Amz-Date={AMZ_DATE}&X-Amz-Expires=60"
            "&X-Amz-SignedHeaders=host&X-Amz-Signature=")
    query = fdp.PickValueInList([base, ""]) + fdp.ConsumeUnicodeNoSurrogates(400)
    headers = [("host", "127.0.0.1:9000")]
    _answer(lambda: sigv4.authenticate("GET", "/b/k", query, headers, _secret, NOW, REGION))


def _chunked_auth() -> sigv4.AuthResult:
    key = sigv4.signing_key(SECRET, AMZ_DATE[:8], REGION)
    return sigv4.AuthResult(ACCESS, REGION, AMZ_DATE, f"{AMZ_DATE[:8]}/{REGION}/s3/aws4_request",
                            key, "0" * 64, sigv4.PayloadMode.STREAMING_SIGNED, None, False)


_AUTH = _chunked_auth()
_VALID = encode_chunked(b"fuzz" * 40, sigv4.PayloadMode.STREAMING_SIGNED, 64, _AUTH)


def aws_chunked(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.PickValueInList(list(sigv4.PayloadMode))
    if not mode.streaming:
        return
    # Half the inputs start from a valid signed body with one region replaced by fuzz.
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    if body[:1] == b"\x00":
        at = int.from_bytes(hashlib.md5(body).digest()[:2], "big") % len(_VALID)
        body = _VALID[:at] + body[1:] + _VALID[at + len(body) - 1:]
    trailers = ["x-amz-checksum-crc32"] if mode.has_trailer else []

    def run() -> None:
        decoder = ChunkedDecoder(mode, _AUTH if mode.chunk_signed else None, trailers, 160)
        for i in range(0, len(body), 7):
            decoder.feed(body[i:i + 7])
        decoder.eof()
    _answer(run)


def range_header(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    size = fdp.ConsumeIntInRange(0, 1 << 40)
    text = fdp.ConsumeUnicode(60)
    _answer(lambda: ranges.parse_range(text, size))


def conditional_headers(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    headers = {name: fdp.ConsumeUnicode(40) for name in
               ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")
               if fdp.ConsumeBool()}
    etag = '"' + hashlib.md5(data).hexdigest() + '"'
    _answer(lambda: conditions.evaluate(headers, etag, fdp.ConsumeIntInRange(0, 1 << 45)))
    _answer(lambda: conditions.check_write(headers, fdp.PickValueInList([None, etag]), "k"))


def xml_body(data: bytes) -> None:
    _answer(lambda: s3xml.parse_tagging(data))
    _answer(lambda: s3xml.parse(data, "Delete"))


def bucket_and_key(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    _answer(lambda: names.check_bucket_name(text))
    _answer(lambda: names.check_key(text))


TARGETS: dict[str, Callable[[bytes], None]] = {
    "sigv4_header": sigv4_header, "sigv4_query": sigv4_query, "aws_chunked": aws_chunked,
    "range_header": range_header, "conditional_headers": conditional_headers,
    "xml_body": xml_body, "bucket_and_key": bucket_and_key,
}


def main() -> None:
    target = TARGETS[sys.argv[1]]
    atheris.Setup([sys.argv[0], *sys.argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
