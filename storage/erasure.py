"""Erasure coding of stripes with zfec (systematic Reed-Solomon).

A stripe of up to k*block bytes is cut into k equal blocks (zero-padded) and m parity blocks
are computed; any k of the k+m blocks give the stripe back. Because the code is systematic,
blocks 0..k-1 are the data itself, so a healthy read needs no decoding at all.
zfec releases the GIL while it computes, so callers run these in a thread pool.
`replicate n` is k=1: every "parity" block is a copy.

The arithmetic runs in ISA-L (storage/isal.py) when it is there: zfec's coefficients,
read from zfec itself, multiplied with SIMD, ~20x faster and byte-identical (each code is
checked against zfec once per process before it is trusted). Without ISA-L zfec does the work.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence

import zfec

from storage import isal

log = logging.getLogger("coffre.erasure")
_ISAL = isal.load()
_DECODERS_MAX = 256       # erasure patterns with a cached decoding matrix, per codec


@functools.cache
def _parity_rows(k: int, m: int) -> tuple[tuple[int, ...], ...]:
    """zfec's parity coefficients: parity block r of a stripe whose block j is the byte 1
    and the others 0 is exactly the coefficient (r, j). Once per code and process (the
    rebalancer makes a Codec per rebuilt fragment)."""
    enc, parity_nums = zfec.Encoder(k, k + m), tuple(range(k, k + m))
    columns = [enc.encode([b"\x01" if i == j else b"\x00" for i in range(k)], parity_nums)
               for j in range(k)]
    return tuple(tuple(columns[j][r][0] for j in range(k)) for r in range(m))


@functools.cache
def _fast_encoder(lib: isal.Library | None, k: int, m: int) -> isal.Kernel | None:
    """ISA-L's encoder for k+m, once checked against zfec on a random stripe (once per code
    and process); None without ISA-L or if they disagree."""
    if lib is None:
        return None
    kernel = lib.kernel(_parity_rows(k, m))
    probe = [os.urandom(64) for _ in range(k)]
    if [bytes(p) for p in kernel.apply(probe)] != list(
            zfec.Encoder(k, k + m).encode(probe, tuple(range(k, k + m)))):
        log.error("ISA-L (%s) disagrees with zfec for %d+%d: using zfec", lib.where, k, m)
        return None
    return kernel


class Codec:
    def __init__(self, k: int, m: int) -> None:
        if k < 1 or m < 0:
            raise ValueError(f"bad code {k}+{m}")
        self.k, self.m = k, m
        self._parity_nums = tuple(range(k, k + m))
        self._enc = zfec.Encoder(k, k + m) if m else None
        self._dec = zfec.Decoder(k, k + m) if m else None
        self._rows = _parity_rows(k, m) if m and k > 1 else ()
        self._fast = _fast_encoder(_ISAL, k, m) if self._rows else None
        self._decoders: dict[tuple[int, ...], isal.Kernel] = {}

    def split(self, data: bytes | memoryview, block_len: int) -> list[memoryview]:
        """Cut a stripe's data into k blocks of block_len bytes, zero-padding the tail.

        The blocks are views of `data` (no copy) unless padding is needed; `data` must not
        be mutated while they are in use.
        """
        need = self.k * block_len
        if len(data) < need:
            data = bytes(data) + bytes(need - len(data))
        view = memoryview(data)
        return [view[i * block_len:(i + 1) * block_len] for i in range(self.k)]

    def encode(self, blocks: Sequence[bytes | memoryview]) -> list[bytes | memoryview]:
        """The k data blocks followed by the m parity blocks."""
        if self._enc is None:
            return list(blocks)
        if self.k == 1:
            return [blocks[0]] * (1 + self.m)
        if self._fast is not None:
            return [*blocks, *(memoryview(p) for p in self._fast.apply(blocks))]
        parity: list[bytes] = self._enc.encode(tuple(blocks), self._parity_nums)
        return [*blocks, *parity]

    def decode(self, have: Mapping[int, bytes | memoryview]) -> list[bytes | memoryview]:
        """The k data blocks from any k blocks, given as {block number: bytes}."""
        if all(i in have for i in range(self.k)):
            return [have[i] for i in range(self.k)]
        if len(have) < self.k:
            raise ValueError(f"need {self.k} blocks, have {len(have)}")
        if self.k == 1:
            return [next(iter(have.values()))]
        assert self._dec is not None
        nums = sorted(have)[: self.k]
        if self._fast is not None:
            return self._decode_fast(have, tuple(nums))
        out: list[bytes] = self._dec.decode([have[n] for n in nums], nums)
        return list(out)

    def _decode_fast(self, have: Mapping[int, bytes | memoryview], nums: tuple[int, ...]
                     ) -> list[bytes | memoryview]:
        """The missing data blocks are rows of the inverse of the generator's rows for the
        blocks we have (nums: sorted, so every data block we have is among them)."""
        assert _ISAL is not None
        missing = [j for j in range(self.k) if j not in nums]
        kernel = self._decoders.get(nums)
        if kernel is None:
            rows = [[int(i == c) for c in range(self.k)] if i < self.k
                    else list(self._rows[i - self.k]) for i in nums]
            inverse = _ISAL.invert(rows)
            kernel = _ISAL.kernel([inverse[j] for j in missing])
            if len(self._decoders) >= _DECODERS_MAX:
                self._decoders.clear()
            self._decoders[nums] = kernel
        rebuilt = dict(zip(missing, kernel.apply([have[n] for n in nums]), strict=True))
        return [have[j] if j in have else memoryview(rebuilt[j]) for j in range(self.k)]

    def rebuild(self, have: Mapping[int, bytes | memoryview], want: int) -> bytes | memoryview:
        """Block number `want` of a stripe, from any k others (repair of one fragment)."""
        data = self.decode(have)
        if want < self.k:
            return data[want]
        return self.encode(data)[want]
