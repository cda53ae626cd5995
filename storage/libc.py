"""Functions of the C library that Python's os module lacks, looked up once (ctypes).

A function missing from this libc (musl has no mallopt, non-Linux systems no
sync_file_range) is None: its callers then do without, as they would on any other system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Any


def function(name: str, argtypes: tuple[Any, ...], restype: Any = ctypes.c_int) -> Any:
    """The libc function `name` with its C signature, or None when this libc has none."""
    lib = ctypes.util.find_library("c")
    if lib is None:
        return None
    try:
        fn = getattr(ctypes.CDLL(lib, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = argtypes
    fn.restype = restype
    return fn
