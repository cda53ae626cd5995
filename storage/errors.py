"""Typed errors of the storage engine; the server maps each to one HTTP status.

Rules: a local fault (this device failed, this record is corrupt) is told apart from a bad
request (the caller's fault); the server never lets any other exception reach the wire.
"""

from __future__ import annotations


class StorageError(Exception):
    status = 500

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(StorageError):
    status = 400


class NotFound(StorageError):
    status = 404


class TooLarge(StorageError):
    """The answer would exceed the caller's size bound (the RPC channel: use HTTP)."""

    status = 413


class RangeNotSatisfiable(StorageError):
    status = 416


class Corrupt(StorageError):
    """A checksum mismatch; the record was quarantined and a repair job recorded."""

    status = 422


class DeviceFull(StorageError):
    status = 507


class DeviceFailed(StorageError):
    """The device saw an I/O error and is out of service until the node restarts."""

    status = 503


class SegmentGone(StorageError):
    """Internal: compaction retired the segment between an index lookup and the read."""
