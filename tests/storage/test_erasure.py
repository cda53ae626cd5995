"""The erasure code: ISA-L's arithmetic must give zfec's bytes exactly (fragments written by
either are read by the other), and any k of k+m blocks must give the stripe back."""

from __future__ import annotations

import random

import pytest
import zfec
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import erasure, isal

CODES = [(2, 1), (4, 2), (6, 3), (8, 3), (10, 4), (3, 5)]


def test_isal_is_found_from_the_dependencies() -> None:
    # pyeclib (a dependency) bundles it: every machine `make run` set up uses the fast path,
    # and the tests below compare it with zfec rather than skip.
    assert erasure._ISAL is not None
    assert all(erasure.Codec(k, m)._fast is not None for k, m in CODES)


@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from(CODES), length=st.integers(0, 5000), seed=st.integers(0, 2**32))
def test_isal_parity_is_zfecs(code: tuple[int, int], length: int, seed: int) -> None:
    k, m = code
    rnd = random.Random(seed)
    blocks = [rnd.randbytes(length) for _ in range(k)]
    ours = erasure.Codec(k, m).encode([memoryview(b) for b in blocks])
    theirs = zfec.Encoder(k, k + m).encode(blocks, tuple(range(k, k + m)))
    assert [bytes(b) for b in ours[k:]] == list(theirs)
    assert [bytes(b) for b in ours[:k]] == blocks


@settings(max_examples=80, deadline=None)
@given(code=st.sampled_from(CODES), length=st.integers(1, 3000), seed=st.integers(0, 2**32),
       fast=st.booleans())
def test_any_k_blocks_give_the_data_back(code: tuple[int, int], length: int, seed: int,
                                         fast: bool) -> None:
    k, m = code
    rnd = random.Random(seed)
    codec = erasure.Codec(k, m)
    if not fast:
        codec._fast = None          # zfec's own decoder
    blocks = [rnd.randbytes(length) for _ in range(k)]
    coded = codec.encode(blocks)
    kept = sorted(rnd.sample(range(k + m), k))
    have = {i: coded[i] for i in kept}
    assert [bytes(b) for b in codec.decode(have)] == blocks
    lost = next((i for i in range(k + m) if i not in kept), None)
    if lost is not None:
        assert bytes(codec.rebuild(have, lost)) == bytes(coded[lost])


def test_without_isal_zfec_does_the_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(isal.ENV, "0")
    assert isal.load() is None
    monkeypatch.setattr(erasure, "_ISAL", None)     # as if loaded under COFFRE_ISAL=0
    codec = erasure.Codec(4, 2)
    assert codec._fast is None
    blocks = [bytes([i]) * 100 for i in range(4)]
    coded = codec.encode(blocks)
    assert [bytes(b) for b in codec.decode({1: coded[1], 3: coded[3], 4: coded[4],
                                             5: coded[5]})] == blocks


def test_kernel_refuses_blocks_it_cannot_multiply() -> None:
    assert erasure._ISAL is not None
    kernel = erasure._ISAL.kernel([[1, 2], [3, 4]])
    with pytest.raises(ValueError):
        kernel.apply([b"ab", b"abc"])             # unequal lengths
    with pytest.raises(ValueError):
        kernel.apply([b"ab"])                     # too few blocks
    with pytest.raises(BufferError):
        kernel.apply([memoryview(b"abcd")[::2], b"ab"])     # not contiguous
    with pytest.raises(ValueError):
        erasure._ISAL.invert([[1, 1], [1, 1]])   # singular
