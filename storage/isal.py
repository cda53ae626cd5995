"""Intel ISA-L's GF(2^8) kernels (SIMD) for the erasure code, loaded with ctypes.

Why: zfec computes parity one byte at a time from tables; it was a third of the gateway's
CPU under large PUTs (1.6 ms per MB of 4+2 stripes). ISA-L's ec_encode_data does the same
matrix product over the same field (polynomial 0x11d) with AVX2/AVX-512 at ~0.07 ms/MB.
Given zfec's own coefficients (erasure.py reads them from zfec), its output is byte for byte
zfec's: fragments on disk do not change, and a node without ISA-L still reads them.

Where the library comes from: the pyeclib wheel (OpenStack's, a dependency for this only)
bundles a build of ISA-L; a system libisal (Debian's libisal2) serves as well. None found, or
COFFRE_ISAL=0: `load()` is None and erasure.py keeps to zfec alone.

Rules: a Kernel is one fixed matrix (rows x k); apply() takes k equal-length contiguous
buffers (bytes, bytearray or views of them) and returns the rows' products as new bytearrays.
ctypes releases the GIL during the call, so callers run it in threads like zfec.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

log = logging.getLogger("coffre.isal")

ENV = "COFFRE_ISAL"
Buffer = bytes | bytearray | memoryview


class _PyBuffer(ctypes.Structure):
    """CPython's Py_buffer: the address of any object's bytes without copying them."""

    _fields_ = [("buf", ctypes.c_void_p), ("obj", ctypes.c_void_p),
                ("len", ctypes.c_ssize_t), ("itemsize", ctypes.c_ssize_t),
                ("readonly", ctypes.c_int), ("ndim", ctypes.c_int),
                ("format", ctypes.c_char_p), ("shape", ctypes.c_void_p),
                ("strides", ctypes.c_void_p), ("suboffsets", ctypes.c_void_p),
                ("internal", ctypes.c_void_p)]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_PyBuffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_PyBuffer)]
_release_buffer.restype = None
_PYBUF_SIMPLE, _PYBUF_WRITABLE = 0, 1


class _Pinned:
    """The addresses of some buffers, exported (so neither moved nor freed) until exit."""

    def __init__(self, buffers: Sequence[Buffer], writable: bool = False) -> None:
        self._views = [_PyBuffer() for _ in buffers]
        self._buffers = buffers
        self._flags = _PYBUF_WRITABLE if writable else _PYBUF_SIMPLE

    def __enter__(self) -> list[int]:
        taken: list[_PyBuffer] = []
        try:
            for buf, view in zip(self._buffers, self._views, strict=True):
                _get_buffer(buf, ctypes.byref(view), self._flags)   # raises if not contiguous
                taken.append(view)
        except BaseException:
            for view in taken:
                _release_buffer(ctypes.byref(view))
            raise
        return [int(v.buf or 0) for v in self._views]

    def __exit__(self, *exc: object) -> None:
        for view in self._views:
            _release_buffer(ctypes.byref(view))


class Library:
    """The few ISA-L functions the erasure code needs."""

    def __init__(self, cdll: ctypes.CDLL, where: str) -> None:
        self.where = where
        self._init_tables = cdll.ec_init_tables
        self._init_tables.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                      ctypes.c_void_p]
        self._init_tables.restype = None
        self.encode_data = cdll.ec_encode_data
        self.encode_data.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                     ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.encode_data.restype = None
        self._invert = cdll.gf_invert_matrix
        self._invert.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        self._invert.restype = ctypes.c_int

    def kernel(self, rows: Sequence[Sequence[int]]) -> Kernel:
        return Kernel(self, rows)

    def tables(self, rows: Sequence[Sequence[int]]) -> ctypes.Array[ctypes.c_ubyte]:
        """ISA-L's expanded multiplication tables of a rows x k matrix (32 bytes a cell)."""
        k = len(rows[0])
        flat = (ctypes.c_ubyte * (len(rows) * k))(*[c for row in rows for c in row])
        out = (ctypes.c_ubyte * (32 * len(rows) * k))()
        self._init_tables(k, len(rows), flat, out)
        return out

    def invert(self, matrix: Sequence[Sequence[int]]) -> list[list[int]]:
        """The inverse of a square matrix over GF(2^8); ValueError if it is singular."""
        n = len(matrix)
        flat = (ctypes.c_ubyte * (n * n))(*[c for row in matrix for c in row])
        out = (ctypes.c_ubyte * (n * n))()
        if self._invert(flat, out, n) != 0:
            raise ValueError("singular matrix")
        return [list(out[r * n:(r + 1) * n]) for r in range(n)]


class Kernel:
    """out[r] = sum over j of rows[r][j] * data[j], byte by byte in GF(2^8)."""

    def __init__(self, lib: Library, rows: Sequence[Sequence[int]]) -> None:
        self._lib = lib
        self.k, self.rows = len(rows[0]), len(rows)
        self._tables = lib.tables(rows)

    def apply(self, data: Sequence[Buffer]) -> list[bytearray]:
        if len(data) != self.k:
            raise ValueError(f"need {self.k} blocks, have {len(data)}")
        length = len(data[0])
        if any(len(d) != length for d in data):
            raise ValueError("blocks of different lengths")
        out = [bytearray(length) for _ in range(self.rows)]
        if length == 0:
            return out
        with _Pinned(data) as src, _Pinned(out, writable=True) as dst:
            self._lib.encode_data(length, self.k, self.rows, self._tables,
                                  (ctypes.c_void_p * self.k)(*src),
                                  (ctypes.c_void_p * self.rows)(*dst))
        return out


def _candidates() -> Iterator[str]:
    spec = importlib.util.find_spec("pyeclib")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).resolve().parent.parent / "pyeclib.libs"
        yield from (str(p) for p in sorted(bundled.glob("libisal*.so*")))
    system = ctypes.util.find_library("isal")
    if system is not None:
        yield system


def load() -> Library | None:
    """ISA-L if it can be found and is not turned off (COFFRE_ISAL=0), else None."""
    if os.environ.get(ENV, "1") == "0":
        return None
    for where in _candidates():
        try:
            return Library(ctypes.CDLL(where), where)
        except (OSError, AttributeError) as e:     # not loadable, or an ISA-L without them
            log.warning("ISA-L at %s not usable: %s", where, e)
    return None
