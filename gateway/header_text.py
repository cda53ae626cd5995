"""Text in HTTP header values: how a header's bytes become text, and text a safe header.

aiohttp hands header values over as the bytes read as UTF-8 with `surrogateescape`, so a
byte that is not UTF-8 (a raw ISO-8859-1 'é' is 0xE9) becomes a lone surrogate: a str that
cannot be encoded again, stored, or sent. `raw_bytes` gives the bytes back; the two
readings below turn them into text that can be.

User metadata follows S3 (UsingMetadata, "User-defined object metadata"): the value is read
as ISO-8859-1, RFC 2047 encoded-words in it are decoded before it is stored, and a stored
value that is not plain printable US-ASCII is returned as RFC 2047 encoded-words. AWS's own
example shows the ISO-8859-1 reading: 'ÄMÄZÕÑ S3' sent as UTF-8 comes back as
`=?UTF-8?B?w4PChE3Dg8KEWsODwpXDg8KRIFMz?=`, each UTF-8 byte one character.

Pure: str in, str out.
"""

from __future__ import annotations

import base64
import binascii
import re

# An RFC 2047 encoded-word: =?charset?B|Q?text?= (an RFC 2231 "*language" may follow the
# charset); `_GAP` is the whitespace between two adjacent words, which a decoder drops.
_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([BbQq])\?([^?\s]*)\?=")
_GAP = re.compile(r"[ \t]+")
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
# What a header value may carry as is: printable US-ASCII and tab; a name: RFC 9110 tchars.
_PLAIN = re.compile(r"[\t\x20-\x7e]*\Z")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# Characters no header value may hold: they end or corrupt the header block.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# UTF-8 bytes per encoded-word: 45 is 60 base64 characters, so that a word stays within
# RFC 2047's 75 characters with the 12 of "=?UTF-8?B?" and "?=".
_WORD_BYTES_MAX = 45


def raw_bytes(value: str) -> bytes:
    """The bytes of a header value as aiohttp read them (UTF-8, surrogateescape)."""
    return value.encode("utf-8", "surrogateescape")


def latin1_text(value: str) -> str:
    """The value read as ISO-8859-1, HTTP's historical charset: one character per byte."""
    return raw_bytes(value).decode("latin-1")


def utf8_text(value: str) -> str:
    """The value as UTF-8 text when its bytes are UTF-8, else read as ISO-8859-1."""
    try:
        return raw_bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return latin1_text(value)


def is_plain(value: str) -> bool:
    """True when the value can be a header value as it is (printable US-ASCII, tab)."""
    return _PLAIN.match(value) is not None


def has_control(value: str) -> bool:
    """True when the value holds a control character (CR, LF, NUL...) other than tab."""
    return _CONTROL.search(value) is not None


def is_token(name: str) -> bool:
    """True when `name` can be a header name."""
    return _TOKEN.match(name) is not None


def encode_words(text: str) -> str:
    """`text` as a header value: unchanged when plain, else RFC 2047 B-encoded UTF-8 words
    (each a whole number of characters, separated by a space)."""
    if is_plain(text):
        return text
    words: list[bytes] = []
    chunk = b""
    for char in text:
        data = char.encode("utf-8")
        if len(chunk) + len(data) > _WORD_BYTES_MAX:
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return " ".join(f"=?UTF-8?B?{base64.b64encode(w).decode()}?=" for w in words)


def decode_words(text: str) -> str:
    """`text` with its RFC 2047 encoded-words decoded; a word that cannot be (unknown
    charset, bad base64, bytes not in its charset) stays as it was."""
    out: list[str] = []
    at = 0
    last_decoded = False
    for match in _WORD.finditer(text):
        gap = text[at:match.start()]
        decoded = _decode_word(match)
        # RFC 2047 6.2: whitespace between two adjacent encoded-words is not part of the text.
        if not (last_decoded and decoded is not None and _GAP.fullmatch(gap)):
            out.append(gap)
        out.append(match.group(0) if decoded is None else decoded)
        last_decoded = decoded is not None
        at = match.end()
    out.append(text[at:])
    return "".join(out)


def _decode_word(match: re.Match[str]) -> str | None:
    charset, encoding, payload = match.groups()
    try:
        if encoding in "Bb":
            data = base64.b64decode(payload, validate=True)
        else:
            data = _Q_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]),
                                 payload.replace("_", " ").encode("ascii"))
        decoded = data.decode(charset)
        decoded.encode("utf-8")    # a codec such as unicode_escape can yield lone surrogates
    except (binascii.Error, LookupError, UnicodeError, ValueError):
        return None
    return decoded
