"""Erasure coding of stripes with zfec (systematic Reed-Solomon).

A stripe of up to k*block bytes is cut into k equal blocks (zero-padded) and m parity blocks
are computed; any k of the k+m blocks give the stripe back. Because the code is systematic,
blocks 0..k-1 are the data itself, so a healthy read needs no decoding at all.
zfec releases the GIL while it computes, so callers run these in a thread pool.
`replicate n` is k=1: every "parity" block is a copy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import zfec


class Codec:
    def __init__(self, k: int, m: int) -> None:
        if k < 1 or m < 0:
            raise ValueError(f"bad code {k}+{m}")
        self.k, self.m = k, m
        self._parity_nums = tuple(range(k, k + m))
        self._enc = zfec.Encoder(k, k + m) if m else None
        self._dec = zfec.Decoder(k, k + m) if m else None

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
        out: list[bytes] = self._dec.decode([have[n] for n in nums], nums)
        return list(out)

    def rebuild(self, have: Mapping[int, bytes | memoryview], want: int) -> bytes | memoryview:
        """Block number `want` of a stripe, from any k others (repair of one fragment)."""
        data = self.decode(have)
        if want < self.k:
            return data[want]
        return self.encode(data)[want]
