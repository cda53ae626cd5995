"""A storage node: its devices, its I/O threads, the ring files it holds.

Rules: the node owns the thread pool that all its devices' blocking work runs in; a device
that fails stays listed (failed flag) and the others keep serving. Ring files pushed by the
operator are validated with ring.ringfile before they replace the old file atomically.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
from dataclasses import dataclass
from pathlib import Path

import xxhash

from storage import limits
from storage.device import Device
from storage.errors import BadRequest, DeviceFailed, NotFound

_RING_NAME = re.compile(
    r"[A-Za-z0-9_][A-Za-z0-9._-]{0,%d}" % (limits.ring_name_chars_max - 1))  # noqa: UP031


@dataclass(frozen=True)
class NodeConfig:
    devices: dict[int, Path]  # device id (as in the ring) -> directory
    rings_dir: Path | None = None
    capacity_bytes: int | None = None  # per device; behaves like a full disk when reached
    orphan_grace_s: float | None = None  # None: storage.orphans' default
    segment_size_bytes: int = limits.segment_size_bytes_max
    io_threads: int = limits.io_threads
    in_memory_index: bool = False  # tests only


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self._executor = concurrent.futures.ThreadPoolExecutor(
            config.io_threads, thread_name_prefix="io")
        self.devices: dict[int, Device] = {
            dev_id: Device(dev_id, path, executor=self._executor,
                           capacity_bytes=config.capacity_bytes,
                           segment_size_bytes=config.segment_size_bytes,
                           in_memory_index=config.in_memory_index)
            for dev_id, path in config.devices.items()
        }

    async def open(self) -> None:
        for dev in self.devices.values():
            try:
                await dev.open()
            except Exception as e:  # one bad disk must not keep the node down
                dev.failed_reason = f"open failed: {e}"
        if self.config.rings_dir is not None:
            self.config.rings_dir.mkdir(parents=True, exist_ok=True)

    async def close(self) -> None:
        for dev in self.devices.values():
            if not dev.failed:
                await dev.close()
        self._executor.shutdown(wait=True)

    def device(self, dev_id: int) -> Device:
        dev = self.devices.get(dev_id)
        if dev is None:
            raise DeviceFailed(f"no device {dev_id} on this node")
        if dev.failed:
            raise DeviceFailed(dev.failed_reason or "device failed")
        return dev

    # -- rings -------------------------------------------------------------------------------
    def _ring_path(self, name: str) -> Path:
        if self.config.rings_dir is None:
            raise BadRequest("this node was started without --rings-dir")
        if not _RING_NAME.fullmatch(name):
            raise BadRequest("bad ring name")
        return self.config.rings_dir / name

    async def put_ring(self, name: str, data: bytes) -> None:
        path = self._ring_path(name)
        if len(data) > limits.ring_file_size_bytes_max:
            raise BadRequest("ring file too large")
        if _ring_version(data) is None:
            raise BadRequest("not a valid ring file")
        await asyncio.get_running_loop().run_in_executor(self._executor, _write_atomic,
                                                         path, data)

    async def get_ring(self, name: str) -> bytes:
        path = self._ring_path(name)
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, path.read_bytes)
        except FileNotFoundError:
            raise NotFound("no such ring") from None

    def rings_info(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.config.rings_dir is None or not self.config.rings_dir.is_dir():
            return out
        for path in sorted(self.config.rings_dir.iterdir()):
            if path.is_file() and _RING_NAME.fullmatch(path.name):
                data = path.read_bytes()
                out[path.name] = {"version": _ring_version(data), "bytes": len(data),
                                  "xxh3": xxhash.xxh3_64_hexdigest(data)}
        return out

    async def info(self) -> dict[str, object]:
        devices = [await dev.info() for dev in self.devices.values()]
        return {"devices": devices, "rings": self.rings_info()}


def _ring_version(data: bytes) -> int | None:
    """The ring's version, or None when ring.ringfile refuses the bytes."""
    from ring import ringfile  # the ring package is a sibling being built; import late

    try:
        return int(ringfile.loads(data).version)
    except Exception:  # RingFileError, or any parse failure of untrusted bytes
        return None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
