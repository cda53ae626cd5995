"""Object bodies derived from (seed, key), generated and checked without holding them.

Every object's bytes are a window of one seeded block, starting at an offset that hashes the
key: byte *i* of object *key* is `block[(offset(key) + i) % len(block)]`. A PUT streams slices
of the block; a GET (whole or ranged) compares what it reads with the same slices. So a 64 MiB
or 256 MiB object never sits in memory, and the check is a memcmp, not a hash of the body.
Rules: pure (no I/O); the same seed always gives the same bytes.
"""

import hashlib
import random
from collections.abc import Iterator

import xxhash

from bench.limits import BODY_BLOCK_BYTES, CHUNK_BYTES


class BodySource:
    """The seeded bytes of every object of one benchmark run."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        block = random.Random(seed).randbytes(BODY_BLOCK_BYTES)
        # The block followed by its own head: any slice of up to CHUNK_BYTES starting anywhere
        # in the block is contiguous, so a window is one memoryview slice, never a join.
        self._ring = memoryview(block + block[:CHUNK_BYTES])

    def offset(self, key: str) -> int:
        """Where in the block object *key* starts."""
        return xxhash.xxh64_intdigest(key.encode(), seed=self.seed) % BODY_BLOCK_BYTES

    def chunks(self, key: str, start: int, length: int) -> Iterator[memoryview]:
        """Bytes [start, start+length) of object *key*, in slices of at most CHUNK_BYTES."""
        base = self.offset(key)
        end = start + length
        pos = start
        while pos < end:
            n = min(CHUNK_BYTES, end - pos)
            at = (base + pos) % BODY_BLOCK_BYTES
            yield self._ring[at : at + n]
            pos += n

    def body(self, key: str, length: int) -> bytes:
        """The whole object as bytes: for small objects only."""
        return b"".join(self.chunks(key, 0, length))

    def sha256_hex(self, key: str, length: int) -> str:
        """The SHA-256 of the object, for signed-payload PUTs."""
        digest = hashlib.sha256()
        for piece in self.chunks(key, 0, length):
            digest.update(piece)
        return digest.hexdigest()

    def matches(self, key: str, start: int, data: bytes) -> bool:
        """True if *data* are the bytes of object *key* from offset *start*."""
        pos = 0
        for piece in self.chunks(key, start, len(data)):
            # startswith(buffer, pos) is a memcmp in place: no copy of either side, where
            # comparing memoryviews goes item by item (50x slower) and slicing copies.
            if not data.startswith(piece, pos):
                return False
            pos += len(piece)
        return True


class Checker:
    """Checks a body that arrives in pieces of any size against object *key* at *start*."""

    def __init__(self, source: BodySource, key: str, start: int) -> None:
        self._source = source
        self._key = key
        self._pos = start
        self.ok = True
        self.received_bytes = 0

    def feed(self, data: bytes) -> None:
        if self.ok and not self._source.matches(self._key, self._pos, data):
            self.ok = False
        self._pos += len(data)
        self.received_bytes += len(data)
