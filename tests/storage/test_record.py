"""Record format: round trips, the sans-IO parser fed whole and byte by byte, range math."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import record as rec
from storage.record import (
    Garbage,
    ParsedRecord,
    RecordFlag,
    RecordHead,
    RecordKind,
    RecordParser,
)

CHUNK = 16  # tiny chunks so that small bodies span many of them


def _head(kind: RecordKind = RecordKind.FRAGMENT, key: bytes = b"key", body_len: int = 0,
          ts: int = 7, partition: int = 3, flags: RecordFlag = RecordFlag.NONE) -> RecordHead:
    return RecordHead(kind, flags, partition, key, ts, body_len, CHUNK)


def _parse(data: bytes, step: int | None = None) -> list[ParsedRecord | Garbage]:
    parser = RecordParser()
    events: list[ParsedRecord | Garbage] = []
    if step is None:
        events += parser.feed(data)
    else:
        for i in range(0, len(data), step):
            events += parser.feed(data[i:i + step])
    return events + parser.finish()


def _streamed(head: RecordHead, body: bytes, piece: int) -> bytes:
    head_bytes, digest = rec.encode_head(head)
    enc = rec.BodyEncoder(digest, len(body), head.chunk_size)
    out: list[rec.Buffer] = [head_bytes]
    for i in range(0, len(body), piece):
        out += enc.feed(body[i:i + piece])
    return b"".join(out + enc.finish())


def test_head_round_trip_with_long_key_and_huge_ts() -> None:
    head = _head(key=bytes(range(256)) * 4, ts=2**128 - 1, body_len=10, partition=2**32 - 1)
    data, _ = rec.encode_head(head)
    assert rec.decode_head(data) == head
    assert head.stored_bytes == len(rec.encode_record(head, b"x" * 10))


@pytest.mark.parametrize("body_len", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_streamed_encoding_equals_whole_encoding(body_len: int) -> None:
    body = bytes(random.Random(body_len).randbytes(body_len))
    head = _head(body_len=body_len)
    whole = rec.encode_record(head, body)
    for piece in (1, 3, CHUNK, 100):
        assert _streamed(head, body, piece) == whole
    assert len(whole) == head.stored_bytes


def test_encoder_refuses_wrong_lengths() -> None:
    head = _head(body_len=4)
    _, digest = rec.encode_head(head)
    enc = rec.BodyEncoder(digest, 4, CHUNK)
    with pytest.raises(ValueError):
        enc.feed(b"12345")
    enc = rec.BodyEncoder(digest, 4, CHUNK)
    enc.feed(b"123")
    with pytest.raises(ValueError):
        enc.finish()


def _segment(seed: int) -> tuple[bytes, list[tuple[RecordHead, bytes]]]:
    rng = random.Random(seed)
    out, records = b"", []
    for i in range(20):
        kind = rng.choice(list(RecordKind))
        body = rng.randbytes(rng.randrange(0, 5 * CHUNK))
        head = _head(kind, key=b"k%d" % i + rng.randbytes(rng.randrange(0, 40)),
                     body_len=len(body), ts=rng.randrange(2**128))
        records.append((head, body))
        out += rec.encode_record(head, body)
    return out, records


@pytest.mark.parametrize("step", [None, 1, 7, 4096])
def test_parser_fed_whole_or_in_pieces(step: int | None) -> None:
    seed = 11
    print("seed", seed)
    data, records = _segment(seed)
    events = _parse(data, step)
    assert all(isinstance(e, ParsedRecord) and e.intact for e in events)
    parsed = [e for e in events if isinstance(e, ParsedRecord)]
    assert [p.head for p in parsed] == [h for h, _ in records]
    for p, (h, body) in zip(parsed, records, strict=True):
        assert p.body == (None if h.kind is RecordKind.FRAGMENT else body)


def test_parser_events_do_not_depend_on_feeding() -> None:
    for seed in range(5):
        print("seed", seed)
        rng = random.Random(seed)
        clean, _ = _segment(seed)
        data = bytearray(rng.randbytes(50) + clean + rng.randbytes(30))
        for _ in range(5):  # flips anywhere: heads, chunks, trailers
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        data = data[:rng.randrange(len(data) // 2, len(data))]  # and a torn tail
        whole = _parse(bytes(data))
        assert _parse(bytes(data), 1) == whole
        assert _parse(bytes(data), 13) == whole
        covered = sum(e.length if isinstance(e, Garbage) else e.head.stored_bytes
                      for e in whole)
        assert covered == len(data)  # every byte is accounted for exactly once


def test_flipped_body_byte_makes_record_damaged_not_lost() -> None:
    data, records = _segment(3)
    first = records[0][0].stored_bytes
    second_head, second_body = records[1]
    while len(second_body) == 0:
        data, records = _segment(len(data))
        first = records[0][0].stored_bytes
        second_head, second_body = records[1]
    raw = bytearray(data)
    raw[first + second_head.head_bytes] ^= 0xFF  # first body byte of record 2
    events = _parse(bytes(raw))
    parsed = [e for e in events if isinstance(e, ParsedRecord)]
    assert len(parsed) == len(records)  # the head still chains to the next record
    assert [p.intact for p in parsed].count(False) == 1 and not parsed[1].intact


def test_torn_tail_is_garbage() -> None:
    data, records = _segment(5)
    cut = len(data) - 3
    events = _parse(data[:cut])
    assert isinstance(events[-1], Garbage)
    assert events[-1].length == records[-1][0].stored_bytes - 3
    assert all(e.intact for e in events if isinstance(e, ParsedRecord))


def test_tombstone_flag_round_trip() -> None:
    head = _head(RecordKind.META, flags=RecordFlag.TOMBSTONE)
    (p,) = _parse(rec.encode_record(head, b""))
    assert isinstance(p, ParsedRecord) and p.head.flags & RecordFlag.TOMBSTONE and p.intact


@settings(max_examples=300, deadline=None)
@given(body_len=st.integers(1, 10 * CHUNK), data=st.data())
def test_range_reads_verify_and_return_exact_bytes(body_len: int, data: st.DataObject) -> None:
    offset = data.draw(st.integers(0, body_len - 1))
    length = data.draw(st.integers(1, body_len - offset))
    body = bytes((i * 7) % 251 for i in range(body_len))
    head = _head(body_len=body_len)
    stored = rec.encode_record(head, body)[head.head_bytes:]
    span = rec.body_span(body_len, CHUNK, offset, length)
    piece = stored[span.stored_offset:span.stored_offset + span.stored_len]
    got = rec.decode_chunks(piece, span.first_chunk, body_len, CHUNK)
    assert got[span.skip:span.skip + length] == body[offset:offset + length]
    bad = bytearray(piece)
    bad[data.draw(st.integers(0, len(bad) - 1))] ^= 0x80
    with pytest.raises(rec.ChecksumMismatch):
        rec.decode_chunks(bytes(bad), span.first_chunk, body_len, CHUNK)
