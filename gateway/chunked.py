"""aws-chunked body decoder, sans-IO: bytes in, events out (Data, Trailers, End).

The framing (each chunk `hex-size[;chunk-signature=sig]\\r\\n data \\r\\n`, a zero-size last
chunk, then trailer lines and an empty line) is never part of the object: the caller stores
only what Data events carry.

Rules:
- In the signed modes every chunk signature is checked against the chain that starts at the
  request's seed signature, and the trailer signature against the last chunk's. Data of a
  chunk is handed out as it arrives, before that chunk's signature can be checked, so the
  caller must not commit anything until End: a bad signature raises on a later `feed`.
- Sizes are hex digits only (no sign, prefix or spaces), at most `max_chunk_bytes`; lines
  and trailers are bounded, so no input makes the decoder buffer without limit.
- Trailers must be declared in x-amz-trailer; every declared one must arrive.
- The decoded total must equal x-amz-decoded-content-length when that was given.
- Data events do not copy: a piece that is all payload is passed on as the same object;
  otherwise it is sliced once from a memoryview.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto

from gateway import errors
from gateway.sigv4 import EMPTY_SHA256, AuthResult, PayloadMode, signatures_equal

CHUNK_ALGORITHM = "AWS4-HMAC-SHA256-PAYLOAD"
TRAILER_ALGORITHM = "AWS4-HMAC-SHA256-TRAILER"
TRAILER_SIGNATURE = "x-amz-trailer-signature"

# Limits (would live in gateway/limits.py; kept here until the lead moves them).
chunk_line_bytes_max = 1024        # "hex;chunk-signature=<64 hex>" is under 100
trailer_line_bytes_max = 4096
trailer_section_bytes_max = 16 * 1024
trailers_count_max = 16
chunk_size_hex_digits_max = 16

_HEX_SIZE_RE = re.compile(rb"[0-9a-fA-F]{1,%d}\Z" % chunk_size_hex_digits_max)
_SIG_RE = re.compile(rb"[0-9a-f]{64}\Z")
_CRLF = b"\r\n"


@dataclass(frozen=True)
class Data:
    data: bytes


@dataclass(frozen=True)
class Trailers:
    headers: tuple[tuple[str, str], ...]   # lower-case names, in the order received


@dataclass(frozen=True)
class End:
    pass


Event = Data | Trailers | End


class _State(Enum):
    SIZE_LINE = auto()      # reading "hex[;ext]\r\n"
    DATA = auto()           # reading the chunk's bytes
    DATA_CRLF = auto()      # the "\r\n" that closes a chunk (also closes the last one)
    TRAILER = auto()        # reading "name:value\r\n" lines up to an empty line
    DONE = auto()           # End emitted; only a stray "\r\n" may follow


def chunk_signature(auth: AuthResult, previous: str, data_sha256: str) -> str:
    to_sign = "\n".join(
        (CHUNK_ALGORITHM, auth.amz_date, auth.scope, previous, EMPTY_SHA256, data_sha256)
    )
    return hmac.new(auth.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def canonical_trailers(trailers: Sequence[tuple[str, str]]) -> bytes:
    return b"".join(f"{name}:{value}\n".encode() for name, value in trailers)


def trailer_signature(auth: AuthResult, previous: str, trailers: Sequence[tuple[str, str]]) -> str:
    digest = hashlib.sha256(canonical_trailers(trailers)).hexdigest()
    to_sign = "\n".join((TRAILER_ALGORITHM, auth.amz_date, auth.scope, previous, digest))
    return hmac.new(auth.signing_key, to_sign.encode(), hashlib.sha256).hexdigest()


def _framing(detail: str) -> errors.S3Error:
    return errors.InvalidRequest(f"Malformed aws-chunked body: {detail}")


def _malformed_trailer(detail: str) -> errors.S3Error:
    # AWS answers MalformedTrailerError here; errors.py has no such class yet.
    return errors.InvalidRequest(f"Malformed trailer: {detail}")


class ChunkedDecoder:
    """One request body's decoder; feed it the bytes as they arrive, then call eof()."""

    def __init__(
        self,
        mode: PayloadMode,
        auth: AuthResult | None,
        declared_trailers: Sequence[str],
        decoded_length: int | None,
        max_chunk_bytes: int = 16 * 2**20,
    ) -> None:
        if not mode.streaming:
            raise ValueError(f"{mode} is not an aws-chunked payload")
        if mode.chunk_signed and auth is None:
            raise ValueError("signed aws-chunked needs the request's AuthResult")
        self._mode = mode
        self._auth = auth
        self._declared = {t.strip().lower() for t in declared_trailers if t.strip()}
        self._decoded_length = decoded_length
        self._max_chunk_bytes = max_chunk_bytes
        self._state = _State.SIZE_LINE
        self._buf = bytearray()            # partial line, or partial CRLF
        self._remaining = 0                # bytes left in the current chunk
        self._last_chunk = False
        self._total = 0
        self._previous = auth.signature if auth is not None else ""
        self._claimed = ""                 # signature announced for the current chunk
        self._hash = hashlib.sha256()
        self._trailers: list[tuple[str, str]] = []
        self._trailer_bytes = 0
        self._skipped_blank = False
        self._signed_trailers = False
        self._epilogue_seen = False

    @property
    def decoded_bytes(self) -> int:
        """Payload bytes announced by the chunk headers read so far."""
        return self._total

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        view = memoryview(data)
        pos, end = 0, len(data)
        while pos < end:
            if self._state is _State.DATA:
                pos = self._take_data(data, view, pos, events)
            elif self._state is _State.DONE:
                pos = self._take_epilogue(view, pos)
            else:
                line, pos = self._take_line(view, pos)
                if line is not None:
                    self._on_line(line, events)
        # A zero-size chunk has no data to wait for: close it now, not on the next feed.
        if self._state is _State.DATA and self._remaining == 0:
            self._end_chunk_data()
        return events

    def eof(self) -> None:
        if self._state is not _State.DONE:
            raise errors.IncompleteBody(
                "The request body ended before the last aws-chunked chunk."
            )

    # ---------------------------------------------------------------- pieces of feed

    def _take_data(self, data: bytes, view: memoryview, pos: int, events: list[Event]) -> int:
        n = min(self._remaining, len(view) - pos)
        piece = view[pos:pos + n]
        if self._mode.chunk_signed:
            self._hash.update(piece)
        if n:
            # The whole input is payload: hand it on as is, without a copy.
            events.append(Data(data if n == len(data) else bytes(piece)))
        self._remaining -= n
        if self._remaining == 0:
            self._end_chunk_data()
        return pos + n

    def _end_chunk_data(self) -> None:
        if self._mode.chunk_signed:
            assert self._auth is not None
            expected = chunk_signature(self._auth, self._previous, self._hash.hexdigest())
            if not signatures_equal(expected, self._claimed):
                raise errors.SignatureDoesNotMatch(
                    "The chunk signature we calculated does not match the one you provided."
                )
            self._previous = expected
        if self._last_chunk and self._mode.has_trailer:
            self._state = _State.TRAILER
        else:
            self._state = _State.DATA_CRLF

    def _take_epilogue(self, view: memoryview, pos: int) -> int:
        # Tolerate one empty line after the trailer signature, which some signers send.
        taken = view[pos:pos + 2 - len(self._buf)]
        self._buf += taken
        if self._epilogue_seen or not _CRLF.startswith(self._buf):
            raise _framing("data after the end of the body.")
        if self._buf == _CRLF:
            self._epilogue_seen = True
            self._buf.clear()
        return pos + len(taken)

    def _take_line(self, view: memoryview, pos: int) -> tuple[bytes | None, int]:
        if self._state is _State.DATA_CRLF:
            return self._take_crlf(view, pos)
        limit = self._line_limit() + 2
        window = view[pos:pos + limit - len(self._buf)]
        idx = window.tobytes().find(b"\n")
        if idx < 0:
            self._buf += window
            if len(self._buf) >= limit:
                raise _framing("a line is too long.")
            return None, pos + len(window)
        self._buf += window[:idx + 1]
        line = bytes(self._buf)
        self._buf.clear()
        if not line.endswith(_CRLF):
            raise _framing("lines must end with CRLF.")
        return line[:-2], pos + idx + 1

    def _take_crlf(self, view: memoryview, pos: int) -> tuple[bytes | None, int]:
        taken = view[pos:pos + 2 - len(self._buf)]
        self._buf += taken
        if not _CRLF.startswith(self._buf):
            raise _framing("a chunk is longer than its declared size.")
        if len(self._buf) < 2:
            return None, pos + len(taken)
        self._buf.clear()
        return b"", pos + len(taken)

    def _line_limit(self) -> int:
        if self._state is _State.TRAILER:
            return trailer_line_bytes_max
        return chunk_line_bytes_max

    # ---------------------------------------------------------------- lines

    def _on_line(self, line: bytes, events: list[Event]) -> None:
        if self._state is _State.SIZE_LINE:
            self._on_size_line(line)
        elif self._state is _State.DATA_CRLF:
            if self._last_chunk:
                self._finish(events)
            else:
                self._state = _State.SIZE_LINE
        else:
            self._on_trailer_line(line, events)

    def _on_size_line(self, line: bytes) -> None:
        size_field, _, extension = line.partition(b";")
        if not _HEX_SIZE_RE.match(size_field):
            raise _framing("a chunk size is not a hexadecimal number.")
        size = int(size_field, 16)
        if size > self._max_chunk_bytes:
            raise _framing(f"a chunk is larger than {self._max_chunk_bytes} bytes.")
        self._total += size
        if self._decoded_length is not None and self._total > self._decoded_length:
            raise errors.IncompleteBody(
                "The aws-chunked body is longer than x-amz-decoded-content-length."
            )
        if self._mode.chunk_signed:
            name, _, signature = extension.partition(b"=")
            if name != b"chunk-signature" or not _SIG_RE.match(signature):
                raise _framing("a chunk lacks its chunk-signature.")
            self._claimed = signature.decode()
            self._hash = hashlib.sha256()
        self._remaining = size
        self._last_chunk = size == 0
        self._state = _State.DATA

    def _on_trailer_line(self, line: bytes, events: list[Event]) -> None:
        if not line:
            if not self._trailers and self._declared and not self._skipped_blank:
                # Some signers end the last chunk with an empty line before the trailers.
                self._skipped_blank = True
                return
            self._finish(events)
            return
        self._trailer_bytes += len(line) + 2
        if self._trailer_bytes > trailer_section_bytes_max:
            raise _malformed_trailer("the trailers are too large.")
        name_raw, sep, value_raw = line.partition(b":")
        name = name_raw.decode("latin-1").strip().lower()
        value = value_raw.decode("latin-1").strip()
        if not sep or not name:
            raise _malformed_trailer("a trailer line is not name:value.")
        if name == TRAILER_SIGNATURE and self._mode.chunk_signed:
            self._check_trailer_signature(value)
            self._finish(events)
            return
        if name not in self._declared:
            raise _malformed_trailer(f"{name} was not declared in x-amz-trailer.")
        if any(n == name for n, _ in self._trailers) or len(self._trailers) >= trailers_count_max:
            raise _malformed_trailer(f"{name} is repeated.")
        self._trailers.append((name, value))

    def _check_trailer_signature(self, claimed: str) -> None:
        assert self._auth is not None
        expected = trailer_signature(self._auth, self._previous, self._trailers)
        if not signatures_equal(expected, claimed):
            raise errors.SignatureDoesNotMatch(
                "The trailer signature we calculated does not match the one you provided."
            )
        self._signed_trailers = True

    def _finish(self, events: list[Event]) -> None:
        if self._decoded_length is not None and self._total != self._decoded_length:
            raise errors.IncompleteBody(
                "The aws-chunked body is shorter than x-amz-decoded-content-length."
            )
        if self._mode.has_trailer:
            if self._mode.chunk_signed and not self._signed_trailers:
                raise _malformed_trailer("the trailers lack x-amz-trailer-signature.")
            missing = self._declared - {name for name, _ in self._trailers}
            if missing:
                raise _malformed_trailer(f"declared trailer {min(missing)} is missing.")
            events.append(Trailers(tuple(self._trailers)))
        events.append(End())
        self._state = _State.DONE


# ---------------------------------------------------------------- client side


def encode_chunked(
    body: bytes,
    mode: PayloadMode,
    chunk_bytes: int,
    auth: AuthResult | None = None,
    trailers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The aws-chunked body a client sends (for tests and benchmarks).

    `auth` carries the signing key, date, scope and seed signature in the signed modes;
    `trailers` are sent after the last chunk in the trailer modes."""
    if mode.chunk_signed and auth is None:
        raise ValueError("signed aws-chunked needs the request's AuthResult")
    out = bytearray()
    previous = auth.signature if auth is not None else ""
    pieces = [body[i:i + chunk_bytes] for i in range(0, len(body), chunk_bytes)] + [b""]
    for piece in pieces:
        out += b"%x" % len(piece)
        if mode.chunk_signed:
            assert auth is not None
            previous = chunk_signature(auth, previous, hashlib.sha256(piece).hexdigest())
            out += f";chunk-signature={previous}".encode()
        out += _CRLF
        if piece or not mode.has_trailer:
            out += piece + _CRLF
    if mode.has_trailer:
        out += b"".join(f"{name}:{value}\r\n".encode() for name, value in trailers)
        if mode.chunk_signed:
            assert auth is not None
            signature = trailer_signature(auth, previous, trailers)
            out += f"{TRAILER_SIGNATURE}:{signature}\r\n".encode()
        out += _CRLF
    return bytes(out)
