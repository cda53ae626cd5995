"""aws-chunked decoder: AWS's published signed examples, botocore's own aws-chunked output,
every body fed whole, one byte at a time and in random pieces, and each framing fault."""

from __future__ import annotations

import hashlib
import io
import os
import random
from collections.abc import Iterable
from typing import Any

import pytest
from botocore import httpchecksum
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import errors
from gateway.checksums import ChecksumAlgorithm, checksum_b64
from gateway.chunked import (
    ChunkedDecoder,
    Data,
    End,
    Event,
    Trailers,
    chunk_signature,
    encode_chunked,
    trailer_signature,
)
from gateway.sigv4 import AuthResult, PayloadMode, signing_key

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SCOPE = "20130524/us-east-1/s3/aws4_request"
SIGNED = PayloadMode.STREAMING_SIGNED
SIGNED_TRAILER = PayloadMode.STREAMING_SIGNED_TRAILER
UNSIGNED_TRAILER = PayloadMode.STREAMING_UNSIGNED_TRAILER


def example_auth(seed: str, mode: PayloadMode) -> AuthResult:
    return AuthResult(
        access_key="AKIAIOSFODNN7EXAMPLE", region="us-east-1", amz_date="20130524T000000Z",
        scope=SCOPE, signing_key=signing_key(SECRET, "20130524", "us-east-1"), signature=seed,
        payload=mode, payload_sha256=None, presigned=False,
    )


def splits(body: bytes, seed: int) -> Iterable[tuple[str, list[bytes]]]:
    """The same body fed whole, one byte at a time, and in random pieces."""
    yield "whole", [body]
    yield "bytewise", [body[i:i + 1] for i in range(len(body))]
    rng = random.Random(seed)
    pieces, pos = [], 0
    while pos < len(body):
        step = rng.randint(1, 9000)
        pieces.append(body[pos:pos + step])
        pos += step
    yield f"random(seed={seed})", pieces


def decode(decoder: ChunkedDecoder, pieces: Iterable[bytes]) -> tuple[bytes, list[Event]]:
    out = bytearray()
    events: list[Event] = []
    for piece in pieces:
        for event in decoder.feed(piece):
            if isinstance(event, Data):
                assert not events or not isinstance(events[-1], End)
                out += event.data
            else:
                events.append(event)
    decoder.eof()
    return bytes(out), events


def decode_all_ways(
    body: bytes, mode: PayloadMode, auth: AuthResult | None, trailers: list[str],
    length: int | None, expect: bytes, seed: int = 1,
) -> list[Event]:
    print(f"seed={seed}")
    results = []
    for name, pieces in splits(body, seed):
        data, events = decode(ChunkedDecoder(mode, auth, trailers, length), pieces)
        assert data == expect, name
        assert isinstance(events[-1], End), name
        results.append(events)
    assert results[0] == results[1] == results[2]
    return results[0]


# ------------------------------------------------------------ AWS's published examples

A_66560 = b"a" * 66560
EXAMPLE_SIGNED = (
    b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n"
    + b"a" * 65536 + b"\r\n"
    + b"400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n"
    + b"a" * 1024 + b"\r\n"
    + b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n"
    + b"\r\n"
)
SEED_SIGNED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
SEED_TRAILER = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
EXAMPLE_TRAILER_CHUNKS = (
    b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n"
    + b"a" * 65536 + b"\r\n"
    + b"400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n"
    + b"a" * 1024 + b"\r\n"
    + b"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n"
)
EXAMPLE_TRAILER_LINES = (
    b"x-amz-checksum-crc32c:sOO8/Q==\r\n"
    b"x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n"
)


def test_aws_example_signed_chunks() -> None:
    auth = example_auth(SEED_SIGNED, SIGNED)
    events = decode_all_ways(EXAMPLE_SIGNED, SIGNED, auth, [], 66560, A_66560)
    assert events == [End()]


def test_aws_example_chunk_signatures_reproduce() -> None:
    auth = example_auth(SEED_SIGNED, SIGNED)
    first = chunk_signature(auth, SEED_SIGNED, hashlib.sha256(b"a" * 65536).hexdigest())
    assert first == "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
    assert encode_chunked(A_66560, SIGNED, 65536, auth) == EXAMPLE_SIGNED


def test_aws_example_signed_trailer() -> None:
    auth = example_auth(SEED_TRAILER, SIGNED_TRAILER)
    assert checksum_b64(ChecksumAlgorithm.CRC32C, A_66560) == "sOO8/Q=="
    # The documentation prints an empty line between the last chunk and the trailers; the
    # HTTP/1.1 trailer grammar has none. Both forms are accepted.
    for body in (EXAMPLE_TRAILER_CHUNKS + EXAMPLE_TRAILER_LINES + b"\r\n",
                 EXAMPLE_TRAILER_CHUNKS + b"\r\n" + EXAMPLE_TRAILER_LINES + b"\r\n",
                 EXAMPLE_TRAILER_CHUNKS + EXAMPLE_TRAILER_LINES):
        events = decode_all_ways(body, SIGNED_TRAILER, auth, ["x-amz-checksum-crc32c"], 66560,
                                 A_66560)
        assert events == [Trailers((("x-amz-checksum-crc32c", "sOO8/Q=="),)), End()]
    assert trailer_signature(
        auth, "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
        [("x-amz-checksum-crc32c", "sOO8/Q==")],
    ) == "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"


def test_aws_example_tampering_is_caught() -> None:
    auth = example_auth(SEED_SIGNED, SIGNED)
    index = EXAMPLE_SIGNED.index(b"\r\n") + 2 + 70000 - 66000
    tampered = EXAMPLE_SIGNED[:index] + b"b" + EXAMPLE_SIGNED[index + 1:]
    for _, pieces in splits(tampered, 2):
        with pytest.raises(errors.SignatureDoesNotMatch):
            decode(ChunkedDecoder(SIGNED, auth, [], 66560), pieces)
    other_seed = example_auth("0" * 64, SIGNED)
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(ChunkedDecoder(SIGNED, other_seed, [], 66560), [EXAMPLE_SIGNED])
    trailer_auth = example_auth(SEED_TRAILER, SIGNED_TRAILER)
    wrong = EXAMPLE_TRAILER_CHUNKS + EXAMPLE_TRAILER_LINES.replace(b"sOO8/Q==", b"sOO8/A==")
    with pytest.raises(errors.SignatureDoesNotMatch):
        decode(ChunkedDecoder(SIGNED_TRAILER, trailer_auth, ["x-amz-checksum-crc32c"], None),
               [wrong + b"\r\n"])


# ------------------------------------------------------------ botocore's aws-chunked output

BOTOCORE_CLASSES = {
    ChecksumAlgorithm.CRC32: httpchecksum.CrtCrc32Checksum,
    ChecksumAlgorithm.CRC32C: httpchecksum.CrtCrc32cChecksum,
    ChecksumAlgorithm.CRC64NVME: httpchecksum.CrtCrc64NvmeChecksum,
    ChecksumAlgorithm.SHA1: httpchecksum.Sha1Checksum,
    ChecksumAlgorithm.SHA256: httpchecksum.Sha256Checksum,
    ChecksumAlgorithm.SHA512: httpchecksum.Sha512Checksum,
    ChecksumAlgorithm.XXHASH64: httpchecksum.CrtXxhash64Checksum,
    ChecksumAlgorithm.XXHASH3: httpchecksum.CrtXxhash3Checksum,
    ChecksumAlgorithm.XXHASH128: httpchecksum.CrtXxhash128Checksum,
}   # botocore sends no MD5 trailer (it has no MD5 checksum class)


def botocore_chunked(body: bytes, alg: ChecksumAlgorithm | None, chunk_size: int) -> bytes:
    wrapper = httpchecksum.AwsChunkedWrapper(
        io.BytesIO(body),
        checksum_cls=BOTOCORE_CLASSES[alg] if alg else None,
        checksum_name=alg.header_name if alg else "x-amz-checksum",
        chunk_size=chunk_size,
    )
    return bytes(wrapper.read())


@pytest.mark.parametrize("alg", list(BOTOCORE_CLASSES))
@pytest.mark.parametrize("size", [0, 1, 5000, 3 * 4096 + 7])
def test_botocore_aws_chunked_decodes(alg: ChecksumAlgorithm, size: int) -> None:
    body = random.Random(size).randbytes(size)
    wire = botocore_chunked(body, alg, chunk_size=4096)
    events = decode_all_ways(wire, UNSIGNED_TRAILER, None, [alg.header_name], size, body,
                             seed=size)
    trailers = events[0]
    assert isinstance(trailers, Trailers)
    assert trailers.headers == ((alg.header_name, checksum_b64(alg, body)),)
    assert trailers.headers[0][1] == BOTOCORE_CLASSES[alg]().handle(body)


def test_botocore_aws_chunked_without_checksum() -> None:
    wire = botocore_chunked(b"hello", None, chunk_size=2)
    assert decode_all_ways(wire, UNSIGNED_TRAILER, None, [], 5, b"hello") == [
        Trailers(()), End()
    ]


def test_boto3_put_object_body_decodes() -> None:
    import boto3
    from botocore.awsrequest import AWSResponse

    seen: list[Any] = []

    class Raw:
        def stream(self, **_: Any) -> Iterable[bytes]:
            yield b""

    def capture(request: Any, **_: Any) -> Any:
        seen.append(request)
        return AWSResponse(request.url, 200, {}, Raw())

    client = boto3.client("s3", endpoint_url="https://127.0.0.1:9", region_name="us-east-1",
                          aws_access_key_id="a", aws_secret_access_key="b")
    client.meta.events.register("before-send.s3", capture)
    body = os.urandom(300_000)
    client.put_object(Bucket="b", Key="k", Body=io.BytesIO(body), ChecksumAlgorithm="CRC64NVME")
    request = seen[0]
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["x-amz-content-sha256"] == UNSIGNED_TRAILER.value.encode()
    wire = request.body.read()
    trailer = headers["x-amz-trailer"].decode()
    data, events = decode(
        ChunkedDecoder(UNSIGNED_TRAILER, None, [trailer],
                       int(headers["x-amz-decoded-content-length"])), [wire])
    assert data == body
    assert events[0] == Trailers(
        ((trailer, checksum_b64(ChecksumAlgorithm.CRC64NVME, body)),))


# ------------------------------------------------------------ our own encoder, signed


def test_signed_round_trip_with_trailers() -> None:
    seed = 7
    print(f"seed={seed}")
    rng = random.Random(seed)
    body = rng.randbytes(100_000)
    auth = example_auth(hashlib.sha256(b"seed").hexdigest(), SIGNED_TRAILER)
    crc = checksum_b64(ChecksumAlgorithm.CRC32, body)
    wire = encode_chunked(body, SIGNED_TRAILER, 8192, auth, [("x-amz-checksum-crc32", crc)])
    events = decode_all_ways(wire, SIGNED_TRAILER, auth, ["x-amz-checksum-crc32"], len(body),
                             body, seed)
    assert events == [Trailers((("x-amz-checksum-crc32", crc),)), End()]


def test_large_chunk_in_pieces_is_not_copied() -> None:
    body = os.urandom(2**20)
    wire = encode_chunked(body, UNSIGNED_TRAILER, 2**20, None, [])
    header = wire.index(b"\r\n") + 2
    decoder = ChunkedDecoder(UNSIGNED_TRAILER, None, [], len(body))
    assert decoder.feed(wire[:header]) == []
    passed_through = 0
    piece_bytes = 64 * 1024
    for start in range(header, header + len(body), piece_bytes):
        piece = wire[start:start + piece_bytes]
        (event,) = decoder.feed(piece)
        assert isinstance(event, Data)
        passed_through += event.data is piece
    assert passed_through == 16
    assert decoder.feed(wire[header + len(body):]) == [Trailers(()), End()]
    decoder.eof()


# ------------------------------------------------------------ faults


def unsigned(body: bytes, trailers: list[str] | None = None, length: int | None = None) -> None:
    decode(ChunkedDecoder(UNSIGNED_TRAILER, None, trailers or [], length), [body])


@pytest.mark.parametrize(
    "wire",
    [
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b" 5\r\nhello\r\n0\r\n\r\n",
        b"5 \r\nhello\r\n0\r\n\r\n",
        b"\r\nhello\r\n0\r\n\r\n",
        b"g\r\nhello\r\n0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"4\r\nhello\r\n0\r\n\r\n",
        b"5" * 2000 + b"\r\n",
        b"5\r\nhello\r\n0\r\n\r\nextra",
        b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n",
        b"5\r\nhello\r\n0\r\nno-colon\r\n\r\n",
    ],
)
def test_malformed_framing(wire: bytes) -> None:
    with pytest.raises((errors.InvalidRequest, errors.IncompleteBody)):
        unsigned(wire)


def test_truncated_body() -> None:
    wire = botocore_chunked(b"hello world", ChecksumAlgorithm.CRC32, 4)
    for cut in range(len(wire)):
        decoder = ChunkedDecoder(UNSIGNED_TRAILER, None, ["x-amz-checksum-crc32"], 11)
        decoder.feed(wire[:cut])
        with pytest.raises(errors.IncompleteBody):
            decoder.eof()


def test_oversize_chunk() -> None:
    decoder = ChunkedDecoder(UNSIGNED_TRAILER, None, [], None, max_chunk_bytes=1024)
    with pytest.raises(errors.InvalidRequest, match="larger"):
        decoder.feed(b"401\r\n")
    decoder = ChunkedDecoder(UNSIGNED_TRAILER, None, [], None)
    with pytest.raises(errors.InvalidRequest):
        decoder.feed(b"ffffffffffffffffff\r\n")


def test_decoded_length_must_match() -> None:
    with pytest.raises(errors.IncompleteBody):
        unsigned(b"5\r\nhello\r\n0\r\n\r\n", length=6)
    with pytest.raises(errors.IncompleteBody):
        unsigned(b"5\r\nhello\r\n0\r\n\r\n", length=4)
    unsigned(b"5\r\nhello\r\n0\r\n\r\n", length=5)


def test_trailers_must_be_declared_and_present() -> None:
    crc = checksum_b64(ChecksumAlgorithm.CRC32, b"hello")
    wire = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n"
    unsigned(wire, ["x-amz-checksum-crc32"])
    with pytest.raises(errors.InvalidRequest, match="not declared"):
        unsigned(wire, ["x-amz-checksum-crc32c"])
    with pytest.raises(errors.InvalidRequest, match="missing"):
        unsigned(b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n",
                 ["x-amz-checksum-crc32", "x-amz-checksum-sha1"])
    doubled = (b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:" + crc.encode()
               + b"\r\nx-amz-checksum-crc32:" + crc.encode() + b"\r\n\r\n")
    with pytest.raises(errors.InvalidRequest, match="repeated"):
        unsigned(doubled, ["x-amz-checksum-crc32"])


def test_signed_chunks_need_signatures() -> None:
    auth = example_auth(SEED_SIGNED, SIGNED)
    for wire in (b"5\r\nhello\r\n0\r\n\r\n", b"5;chunk-signature=zz\r\nhello\r\n",
                 b"5;other=" + b"0" * 64 + b"\r\nhello\r\n"):
        with pytest.raises(errors.InvalidRequest):
            decode(ChunkedDecoder(SIGNED, auth, [], None), [wire])


def test_signed_trailer_needs_its_signature() -> None:
    auth = example_auth(SEED_TRAILER, SIGNED_TRAILER)
    body = EXAMPLE_TRAILER_CHUNKS + b"x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"
    with pytest.raises(errors.InvalidRequest, match="signature"):
        decode(ChunkedDecoder(SIGNED_TRAILER, auth, ["x-amz-checksum-crc32c"], None), [body])


def test_signed_streaming_without_trailer_refuses_trailers() -> None:
    auth = example_auth(SEED_SIGNED, SIGNED)
    body = EXAMPLE_SIGNED[:-2] + b"x-amz-checksum-crc32c:sOO8/Q==\r\n\r\n"
    with pytest.raises(errors.InvalidRequest):
        decode(ChunkedDecoder(SIGNED, auth, [], None), [body])


def test_constructor_refuses_misuse() -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder(PayloadMode.UNSIGNED, None, [], None)
    with pytest.raises(ValueError):
        ChunkedDecoder(SIGNED, None, [], None)


@settings(max_examples=300, deadline=None)
@given(wire=st.binary(max_size=300), mode=st.sampled_from([SIGNED, SIGNED_TRAILER,
                                                          UNSIGNED_TRAILER]))
def test_garbage_only_raises_s3_errors(wire: bytes, mode: PayloadMode) -> None:
    auth = example_auth(SEED_SIGNED, mode)
    decoder = ChunkedDecoder(mode, auth, ["x-amz-checksum-crc32"], None)
    try:
        decoder.feed(wire)
        decoder.eof()
    except errors.S3Error:
        pass


@settings(max_examples=200, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000), flip=st.integers(1, 255))
def test_corruption_of_a_signed_body_never_changes_what_is_accepted(cut: int, flip: int) -> None:
    # Either refused, or (a case change in a hex size or a trailer name) the same result.
    auth = example_auth(SEED_TRAILER, SIGNED_TRAILER)
    body = bytes(range(256)) * 30
    trailers = [("x-amz-checksum-crc32", "AAAAAA==")]
    wire = encode_chunked(body, SIGNED_TRAILER, 1000, auth, trailers)
    index = cut % len(wire)
    corrupted = wire[:index] + bytes([wire[index] ^ flip]) + wire[index + 1:]
    decoder = ChunkedDecoder(SIGNED_TRAILER, auth, ["x-amz-checksum-crc32"], len(body))
    try:
        data, events = decode(decoder, [corrupted])
    except errors.S3Error:
        return
    assert data == body and events == [Trailers(tuple(trailers)), End()]
