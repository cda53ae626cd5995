"""The segment record format: encoding, range arithmetic and a sans-IO parser.

A record is self-describing so that the index can be rebuilt from segments alone:

    head   : fixed fields (HEAD_FORMAT) + key; the last fixed field is xxh3_64(fields + key)
    chunks : the body cut into chunk_size pieces, each followed by its own xxh3_64 (8 bytes),
             so a range read verifies only the chunks it touches
    trailer: TRAILER_MAGIC, 4 zero bytes, xxh3_64(head checksum + every chunk checksum)

A writer writes the head first (when it reserves the region) and the trailer last, so a record
whose trailer does not check out was never acknowledged. Nothing here touches a file: the
writer gets bytes to pwrite, the reader hands in bytes it read, and RecordParser is fed bytes
in pieces of any size (one byte at a time gives the same events as the whole segment at once).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

import xxhash

from storage import limits

MAGIC = b"CFSR"
TRAILER_MAGIC = b"CFSE"
FORMAT_VERSION = 1
# magic, version, kind, flags, partition, key_len, reserved, chunk_size, ts (u128), body_len
_FIELDS = struct.Struct(">4sBBHIHHI16sQ")
_CHECKSUM = struct.Struct(">Q")
HEAD_FIXED_BYTES = _FIELDS.size + _CHECKSUM.size
CHUNK_CHECKSUM_BYTES = 8
TRAILER_BYTES = 16


class RecordKind(enum.IntEnum):
    FRAGMENT = 1
    # A fragment delete; its body is the segment number of the record it deletes, so that
    # compaction knows when the tombstone is no longer needed.
    FRAGMENT_DELETE = 2
    META = 3


class RecordFlag(enum.IntFlag):
    NONE = 0
    # A metadata record whose value is None (a delete marker that still carries its ts).
    TOMBSTONE = 1


class FormatError(ValueError):
    """Bytes that are not a valid record head."""


class ChecksumMismatch(ValueError):
    def __init__(self, chunk: int) -> None:
        super().__init__(f"checksum mismatch in chunk {chunk}")
        self.chunk = chunk


@dataclass(frozen=True)
class RecordHead:
    kind: RecordKind
    flags: RecordFlag
    partition: int
    key: bytes
    ts: int
    body_len: int
    chunk_size: int

    @property
    def head_bytes(self) -> int:
        return HEAD_FIXED_BYTES + len(self.key)

    @property
    def stored_bytes(self) -> int:
        return stored_size(len(self.key), self.body_len, self.chunk_size)


def chunk_count(body_len: int, chunk_size: int) -> int:
    return (body_len + chunk_size - 1) // chunk_size


def stored_size(key_len: int, body_len: int, chunk_size: int) -> int:
    chunks = chunk_count(body_len, chunk_size)
    return HEAD_FIXED_BYTES + key_len + body_len + chunks * CHUNK_CHECKSUM_BYTES + TRAILER_BYTES


def encode_head(head: RecordHead) -> tuple[bytes, bytes]:
    """Return (head bytes, head checksum digest); the digest seeds the trailer checksum."""
    if len(head.key) > limits.key_size_bytes_max:
        raise ValueError("key too long")
    if not 0 <= head.ts < 2**limits.meta_ts_bits:
        raise ValueError("ts out of range")
    fields = _FIELDS.pack(
        MAGIC, FORMAT_VERSION, int(head.kind), int(head.flags), head.partition,
        len(head.key), 0, head.chunk_size, head.ts.to_bytes(16, "big"), head.body_len,
    )
    digest = xxhash.xxh3_64_digest(fields + head.key)
    return fields + digest + head.key, digest


def decode_fixed(buf: bytes | bytearray | memoryview) -> tuple[RecordHead, int, bytes]:
    """Decode the fixed part; return (head with an empty key, key_len, stored checksum)."""
    if len(buf) < HEAD_FIXED_BYTES:
        raise FormatError("short head")
    magic, version, kind, flags, partition, key_len, _r, chunk_size, ts, body_len = (
        _FIELDS.unpack_from(buf, 0)
    )
    if magic != MAGIC:
        raise FormatError("bad magic")
    if version != FORMAT_VERSION:
        raise FormatError(f"unknown format version {version}")
    if kind not in RecordKind.__members__.values() or key_len > limits.key_size_bytes_max:
        raise FormatError("bad kind or key length")
    if chunk_size <= 0 or chunk_size > limits.write_batch_bytes:
        raise FormatError("bad chunk size")
    stored = bytes(buf[_FIELDS.size:HEAD_FIXED_BYTES])
    head = RecordHead(RecordKind(kind), RecordFlag(flags), partition, b"",
                      int.from_bytes(ts, "big"), body_len, chunk_size)
    return head, key_len, stored


def decode_head(buf: bytes | bytearray | memoryview) -> RecordHead:
    """Decode and check a whole head (fixed part + key)."""
    head, key_len, stored = decode_fixed(buf)
    if len(buf) < HEAD_FIXED_BYTES + key_len:
        raise FormatError("short key")
    key = bytes(buf[HEAD_FIXED_BYTES:HEAD_FIXED_BYTES + key_len])
    if xxhash.xxh3_64_digest(bytes(buf[:_FIELDS.size]) + key) != stored:
        raise FormatError("head checksum mismatch")
    return RecordHead(head.kind, head.flags, head.partition, key, head.ts, head.body_len,
                      head.chunk_size)


Buffer = bytes | memoryview


class BodyEncoder:
    """Turns body bytes into stored chunks; finish() checks the length and adds the trailer.

    The stored form comes back as a list of buffers for one vectored write: views of the
    bytes fed (which must not change afterwards) and each chunk's digest, so that a body
    is copied only by the kernel, not joined again in Python (a chunk that spans two fed
    pieces is hashed across both views).
    """

    def __init__(self, head_digest: bytes, body_len: int, chunk_size: int) -> None:
        self._left = body_len
        self._chunk = chunk_size
        self._pending: list[memoryview] = []     # the start of the next chunk
        self._pending_len = 0
        self._trailer = xxhash.xxh3_64(head_digest)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Buffer]:
        if len(data) > self._left:
            raise ValueError("body longer than declared")
        self._left -= len(data)
        view = memoryview(data).cast("B")
        out: list[Buffer] = []
        if self._pending_len + len(view) < self._chunk:
            if view:
                self._pending.append(view)
                self._pending_len += len(view)
            return out
        at = 0
        if self._pending:   # complete the chunk begun by earlier pieces
            at = self._chunk - self._pending_len
            self._pending.append(view[:at])
            self._emit(out, self._pending)
            self._pending, self._pending_len = [], 0
        while len(view) - at >= self._chunk:
            self._emit(out, [view[at:at + self._chunk]])
            at += self._chunk
        if at < len(view):
            self._pending, self._pending_len = [view[at:]], len(view) - at
        return out

    def finish(self) -> list[Buffer]:
        if self._left:
            raise ValueError(f"body shorter than declared by {self._left} bytes")
        out: list[Buffer] = []
        if self._pending:
            self._emit(out, self._pending)
            self._pending, self._pending_len = [], 0
        out += (TRAILER_MAGIC, bytes(4), self._trailer.digest())
        return out

    def _emit(self, out: list[Buffer], pieces: list[memoryview]) -> None:
        if len(pieces) == 1:
            digest = xxhash.xxh3_64_digest(pieces[0])
        else:
            h = xxhash.xxh3_64()
            for p in pieces:
                h.update(p)
            digest = h.digest()
        self._trailer.update(digest)
        out += pieces
        out.append(digest)


def encode_record(head: RecordHead, body: bytes) -> bytes:
    """A whole record in one piece (small records: deletes, metadata)."""
    head_bytes, digest = encode_head(head)
    enc = BodyEncoder(digest, len(body), head.chunk_size)
    return b"".join([head_bytes, *enc.feed(body), *enc.finish()])


@dataclass(frozen=True)
class Span:
    """The stored bytes (relative to the body start) that hold body[offset:offset+length]."""

    first_chunk: int
    stored_offset: int
    stored_len: int
    skip: int  # bytes of the first chunk's data before `offset`


def body_span(body_len: int, chunk_size: int, offset: int, length: int) -> Span:
    if offset < 0 or length <= 0 or offset + length > body_len:
        raise ValueError("range outside body")
    step = chunk_size + CHUNK_CHECKSUM_BYTES
    first = offset // chunk_size
    last = (offset + length - 1) // chunk_size
    last_len = min(chunk_size, body_len - last * chunk_size)
    end = last * step + last_len + CHUNK_CHECKSUM_BYTES
    return Span(first, first * step, end - first * step, offset - first * chunk_size)


def decode_chunks(stored: bytes | memoryview, first_chunk: int, body_len: int,
                  chunk_size: int) -> bytes:
    """Verify and strip the checksums of consecutive stored chunks starting at first_chunk."""
    return b"".join(chunk_views(stored, first_chunk, body_len, chunk_size))


def chunk_views(stored: bytes | memoryview, first_chunk: int, body_len: int,
                chunk_size: int) -> list[memoryview]:
    """decode_chunks without joining: the verified chunks as views into `stored` (a reader
    that copies them once into what it sends saves a copy of every byte)."""
    view = memoryview(stored)
    parts: list[memoryview] = []
    chunk, pos = first_chunk, 0
    while pos < len(view):
        size = min(chunk_size, body_len - chunk * chunk_size)
        data = view[pos:pos + size]
        if len(data) != size or xxhash.xxh3_64_digest(data) != bytes(
                view[pos + size:pos + size + CHUNK_CHECKSUM_BYTES]):
            raise ChecksumMismatch(chunk)
        parts.append(data)
        pos += size + CHUNK_CHECKSUM_BYTES
        chunk += 1
    return parts


@dataclass(frozen=True)
class ParsedRecord:
    offset: int
    head: RecordHead
    body: bytes | None  # kept for all kinds but FRAGMENT (their bodies can be huge)
    intact: bool  # every chunk and the trailer checked out


@dataclass(frozen=True)
class Garbage:
    """Bytes that are not part of any record head (torn tails, overwritten regions)."""

    offset: int
    length: int


Event = ParsedRecord | Garbage


class _State(enum.Enum):
    HEAD = enum.auto()
    CHUNK = enum.auto()
    TRAILER = enum.auto()


class RecordParser:
    """Sans-IO segment scanner: feed() bytes, get events; finish() at end of file."""

    def __init__(self, base_offset: int = 0) -> None:
        self._buf = bytearray()
        self._pos = base_offset  # file offset of _buf[0]
        self._state = _State.HEAD
        self._garbage_at = -1
        self._garbage_len = 0
        self._head: RecordHead | None = None
        self._rec_offset = 0
        self._chunk = 0
        self._intact = True
        self._body = bytearray()
        self._trailer = xxhash.xxh3_64()

    def feed(self, data: bytes | bytearray | memoryview) -> list[Event]:
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> list[Event]:
        events: list[Event] = []
        if self._state is not _State.HEAD:
            self._add_garbage(self._rec_offset, self._pos - self._rec_offset)
            self._state = _State.HEAD
        self._add_garbage(self._pos, len(self._buf))
        self._consume(len(self._buf))
        self._flush_garbage(events)
        return events

    def _consume(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self._pos += n
        return out

    def _add_garbage(self, offset: int, length: int) -> None:
        if length <= 0:
            return
        if self._garbage_at < 0:
            self._garbage_at = offset
        self._garbage_len += length

    def _flush_garbage(self, events: list[Event]) -> None:
        if self._garbage_len:
            events.append(Garbage(self._garbage_at, self._garbage_len))
        self._garbage_at, self._garbage_len = -1, 0

    def _step(self, events: list[Event]) -> bool:
        if self._state is _State.HEAD:
            return self._step_head(events)
        if self._state is _State.CHUNK:
            return self._step_chunk()
        return self._step_trailer(events)

    def _resync(self) -> bool:
        found = self._buf.find(MAGIC, 1)
        # Keep a possible partial magic at the end of the buffer.
        skip = found if found > 0 else max(1, len(self._buf) - len(MAGIC) + 1)
        self._add_garbage(self._pos, skip)
        self._consume(skip)
        return found > 0

    def _step_head(self, events: list[Event]) -> bool:
        if len(self._buf) < len(MAGIC):
            return False
        if self._buf[:len(MAGIC)] != MAGIC:
            return self._resync()
        if len(self._buf) < HEAD_FIXED_BYTES:
            return False
        try:
            _, key_len, _ = decode_fixed(self._buf)
            if len(self._buf) < HEAD_FIXED_BYTES + key_len:
                return False
            head = decode_head(self._buf)
        except FormatError:
            return self._resync()
        self._flush_garbage(events)
        self._head, self._rec_offset = head, self._pos
        self._consume(head.head_bytes)
        self._chunk, self._intact = 0, True
        self._body.clear()
        self._trailer = xxhash.xxh3_64(self._head_digest(head))
        self._state = _State.CHUNK if head.body_len else _State.TRAILER
        return True

    @staticmethod
    def _head_digest(head: RecordHead) -> bytes:
        return encode_head(head)[1]

    def _step_chunk(self) -> bool:
        head = self._head
        assert head is not None
        size = min(head.chunk_size, head.body_len - self._chunk * head.chunk_size)
        if len(self._buf) < size + CHUNK_CHECKSUM_BYTES:
            return False
        data = self._consume(size)
        digest = self._consume(CHUNK_CHECKSUM_BYTES)
        self._trailer.update(digest)
        if xxhash.xxh3_64_digest(data) != digest:
            self._intact = False
        if head.kind is not RecordKind.FRAGMENT:
            self._body += data
        self._chunk += 1
        if self._chunk == chunk_count(head.body_len, head.chunk_size):
            self._state = _State.TRAILER
        return True

    def _step_trailer(self, events: list[Event]) -> bool:
        head = self._head
        assert head is not None
        if len(self._buf) < TRAILER_BYTES:
            return False
        trailer = self._consume(TRAILER_BYTES)
        ok = trailer == TRAILER_MAGIC + bytes(4) + self._trailer.digest()
        body = None if head.kind is RecordKind.FRAGMENT else bytes(self._body)
        events.append(ParsedRecord(self._rec_offset, head, body, ok and self._intact))
        self._state = _State.HEAD
        return True
