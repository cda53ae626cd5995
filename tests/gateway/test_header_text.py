"""Header bytes as text (gateway.header_text) and the object headers built on it
(gateway.headers): user metadata stored and returned as S3 does (ISO-8859-1, RFC 2047), no
header value that cannot be stored or sent, response-* overrides that cannot break HTTP."""

from __future__ import annotations

import email.header

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from gateway import errors, headers
from gateway.header_text import (
    decode_words,
    encode_words,
    has_control,
    is_plain,
    latin1_text,
    utf8_text,
)
from gateway.manifest import Manifest


def as_aiohttp(raw: bytes) -> str:
    """A header value as aiohttp hands it over."""
    return raw.decode("utf-8", "surrogateescape")


def rfc2047(value: str) -> str:
    """What a standard decoder (Python's email package) reads in a header value."""
    return str(email.header.make_header(email.header.decode_header(value)))


def test_header_bytes_read_as_iso_8859_1_or_utf8() -> None:
    assert latin1_text(as_aiohttp(b"Hello World\xe9")) == "Hello World\xe9"
    assert latin1_text(as_aiohttp("é".encode())) == "Ã©"         # one character per byte
    assert utf8_text(as_aiohttp("é".encode())) == "é"
    assert utf8_text(as_aiohttp(b"caf\xe9")) == "café"
    for text in (latin1_text(as_aiohttp(b"\xff\xfe")), utf8_text(as_aiohttp(b"\xc3"))):
        text.encode("utf-8")                                       # storable: no surrogate


def test_encode_words_only_what_is_not_plain() -> None:
    assert encode_words("plain value, tab\tand ~") == "plain value, tab\tand ~"
    assert encode_words("Hello World\xe9") == "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="
    # AWS's example in UsingMetadata: 'ÄMÄZÕÑ S3' sent as UTF-8, read as ISO-8859-1.
    sent = latin1_text(as_aiohttp("ÄMÄZÕÑ S3".encode()))
    assert encode_words(sent) == "=?UTF-8?B?w4PChE3Dg8KEWsODwpXDg8KRIFMz?="
    assert encode_words("a\r\nb") == "=?UTF-8?B?YQ0KYg==?="


def test_long_values_become_several_words_of_whole_characters() -> None:
    text = "日本語" * 40
    encoded = encode_words(text)
    words = encoded.split(" ")
    assert len(words) > 1 and all(len(w) <= 75 for w in words)
    assert rfc2047(encoded) == text and decode_words(encoded) == text


def test_decode_words() -> None:
    assert decode_words("=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?=") == "Hello World\xe9"
    assert decode_words("=?utf-8?q?caf=C3=A9_au_lait?=") == "café au lait"
    assert decode_words("a =?ISO-8859-1?Q?=E9?= =?UTF-8*fr?B?w6k=?= b") == "a éé b"
    assert decode_words("=?UTF-8?Q?a=0D=0Ab?=") == "a\r\nb"
    for kept in ("plain", "=?x-nope?Q?a?=", "=?UTF-8?B?!!?=", "=?UTF-8?Q?=FF?=",
                 "=?unicode_escape?Q?\\ud800?=", "=?UTF-8?B?w6k=", "=?base64?B?QQ==?="):
        assert decode_words(kept) == kept


@given(st.text(max_size=300))
def test_every_text_survives_encode_then_decode(text: str) -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return                                  # not text a header can come to hold
    encoded = encode_words(text)
    assert is_plain(encoded) and not has_control(encoded)
    if encoded != text:
        assert decode_words(encoded) == text


def test_user_metadata_is_stored_as_s3_stores_it() -> None:
    sent = CIMultiDict([
        ("X-Amz-Meta-Raw", as_aiohttp(b"Hello World\xe9")),     # ISO-8859-1 on the wire
        ("x-amz-meta-utf8", as_aiohttp("é".encode())),           # UTF-8: one char per byte
        ("x-amz-meta-words", "=?UTF-8?Q?caf=C3=A9?="),
        ("x-amz-meta-plain", "v"),
    ])
    assert headers.user_metadata(sent) == {
        "raw": "Hello World\xe9", "utf8": "Ã©", "words": "café", "plain": "v"}


def test_user_metadata_size_counts_utf8_bytes() -> None:
    limit = 2048 - len("k")
    assert headers.user_metadata({"x-amz-meta-k": "a" * limit})
    with pytest.raises(errors.MetadataTooLarge):
        headers.user_metadata({"x-amz-meta-k": as_aiohttp(b"\xe9" * (limit // 2 + 1))})


def test_stored_headers_never_hold_a_surrogate() -> None:
    sent = CIMultiDict([("Content-Disposition", as_aiohttp(b"attachment; filename=\xe9.txt")),
                        ("Content-Language", as_aiohttp("fr-é".encode()))])
    stored = headers.stored_headers(sent)
    assert stored["Content-Disposition"] == "attachment; filename=é.txt"
    assert stored["Content-Language"] == "fr-é"                 # UTF-8 goes back as it came


def test_metadata_headers_are_always_sendable() -> None:
    m = Manifest(0, '"e"', 0, {}, {"a": "Hello World\xe9", "b": "a\r\nb", "c": "ok",
                                   "bad name": "x", "é": "y"})
    out = headers.object_headers(m, {})
    assert out["x-amz-meta-a"] == "=?UTF-8?B?SGVsbG8gV29ybGTDqQ==?="
    assert rfc2047(out["x-amz-meta-b"]) == "a\r\nb" and out["x-amz-meta-c"] == "ok"
    assert out["x-amz-missing-meta"] == "2"
    assert all(is_plain(v) and not has_control(v) for k, v in out.items()
               if k.startswith("x-amz-"))


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: x=1", "a\x00", "日本.txt"])
def test_response_overrides_that_cannot_be_sent_are_refused(value: str) -> None:
    m = Manifest(0, '"e"', 0, {}, {})
    with pytest.raises(errors.InvalidArgument) as caught:
        headers.object_headers(m, {"response-content-disposition": value})
    assert caught.value.extra["ArgumentName"] == "response-content-disposition"
    sent = headers.object_headers(m, {"response-content-disposition": "attachment; é\t.txt"})
    assert sent["Content-Disposition"] == "attachment; é\t.txt"
