"""The rings of one process: every ring file of a directory, swapped in when a file changes.

Rules: lookups (`data`, `meta`) read memory only. `reload_if_changed` costs one directory
scan and a stat per ring file; a file whose (inode, size, mtime) did not change is not read.
A changed file is loaded and swapped in only if its ring version differs (a CLI edit that did
not rebalance rewrites the file with the same version). A file that fails to load keeps the
previous ring in service and is reported in `errors`: a half-published or corrupt file must
never take a running process down. Files: `data-<width>.ring` (one per storage-policy width)
and `meta.ring` (the metadata ring, width 3).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ring.model import Ring
from ring.ringfile import RingFileError, load

META_NAME = "meta.ring"
META_WIDTH = 3
_DATA_NAME = re.compile(r"^data-([0-9]{1,2})\.ring$")


def data_name(width: int) -> str:
    return f"data-{width}.ring"


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int, int]  # inode, size, mtime_ns of the file read
    ring: Ring


def _ring_files(directory: str) -> dict[str, str]:
    out = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name == META_NAME or _DATA_NAME.match(entry.name):
                out[entry.name] = entry.path
    return out


def _stamp(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def _load_named(name: str, path: str) -> Ring:
    """Load a ring and check that its width is the one its file name says."""
    ring = load(path)
    match = _DATA_NAME.match(name)
    # The meta ring's width is the cluster's metadata replica count (3 or 5): any is fine.
    if match and ring.width != int(match.group(1)):
        raise RingFileError(f"{name} holds a ring of width {ring.width}, "
                            f"expected {match.group(1)}")
    return ring


class RingSet:
    """All rings of `directory`. Raises RingFileError if a ring present at start is bad."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = os.fspath(directory)
        self._loaded: dict[str, _Loaded] = {}
        self.errors: dict[str, str] = {}  # file name -> why its last reload failed
        for name, path in sorted(_ring_files(self.directory).items()):
            stamp = _stamp(path)
            self._loaded[name] = _Loaded(stamp, _load_named(name, path))

    def data(self, width: int) -> Ring:
        """The data ring for policies of `width` slots. LookupError if there is none."""
        loaded = self._loaded.get(data_name(width))
        if loaded is None:
            raise LookupError(f"no ring {data_name(width)} in {self.directory}")
        return loaded.ring

    @property
    def meta(self) -> Ring:
        loaded = self._loaded.get(META_NAME)
        if loaded is None:
            raise LookupError(f"no ring {META_NAME} in {self.directory}")
        return loaded.ring

    @property
    def widths(self) -> tuple[int, ...]:
        """Widths that have a data ring."""
        return tuple(sorted(r.ring.width for n, r in self._loaded.items() if n != META_NAME))

    def versions(self) -> dict[str, int]:
        return {name: loaded.ring.version for name, loaded in sorted(self._loaded.items())}

    def reload_if_changed(self) -> bool:
        """Swap in rings whose file changed to a new version. True if any ring was swapped."""
        swapped = False
        try:
            files = _ring_files(self.directory)
        except OSError as exc:
            self.errors["."] = str(exc)
            return False
        for name, path in files.items():
            swapped |= self._reload_one(name, path)
        return swapped

    def _reload_one(self, name: str, path: str) -> bool:
        old = self._loaded.get(name)
        try:
            stamp = _stamp(path)
            if old is not None and old.stamp == stamp:
                return False
            ring = _load_named(name, path)
        except (OSError, RingFileError) as exc:
            self.errors[name] = str(exc)
            return False
        self.errors.pop(name, None)
        self._loaded[name] = _Loaded(stamp, ring)
        return old is None or old.ring.version != ring.version
