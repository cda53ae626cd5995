"""Byte ranges (the Range header, or a GET's partNumber) and the stripe arithmetic of
erasure-coded objects.

Pure functions: a Range header and a size in, a resolved (start, end) out; an object layout
and a byte range in, the stripes and per-fragment byte ranges that hold it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway import errors, limits
from gateway.numbers import is_decimal


@dataclass(frozen=True)
class ByteRange:
    start: int      # first byte, inclusive
    end: int        # last byte, inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Resolve a Range header against an object size.

    None means "the whole object" (no header, or one S3 ignores: a multi-range or a
    syntactically invalid one). An unsatisfiable range raises InvalidRange (416).
    """
    if header is None:
        return None
    text = header.strip()
    if not text.startswith("bytes=") or "," in text:
        return None
    spec = text[len("bytes="):].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    first, last = first.strip(), last.strip()
    if (first and not is_decimal(first)) or (last and not is_decimal(last)):
        return None
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(text, size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise _unsatisfiable(text, size)
    return ByteRange(start, min(end, size - 1))


def _unsatisfiable(asked: str, size: int) -> errors.S3Error:
    err = errors.InvalidRange(RangeRequested=asked, ActualObjectSize=str(size))
    return errors.with_headers(err, {"Content-Range": f"bytes */{size}"})


def parse_part_number(raw: str) -> int:
    """A partNumber query value: UploadPart's, UploadPartCopy's, GetObject's, HeadObject's."""
    if not is_decimal(raw) or not 1 <= int(raw) <= limits.part_number_max:
        raise errors.InvalidArgument(
            f"Part number must be an integer between 1 and {limits.part_number_max}, "
            "inclusive", ArgumentName="partNumber", ArgumentValue=raw)
    return int(raw)


def part_range(raw: str, part_sizes: Sequence[int], size: int, range_header: str | None
               ) -> ByteRange | None:
    """The bytes of part `raw` (GetObject/HeadObject ?partNumber=) of an object whose parts
    have `part_sizes` (none: not a multipart object, one part of `size` bytes).

    As AWS answers (OpenStack Swift's s3api tests, run against it): a Range beside it is
    InvalidRequest, before the number is even read; a number past the object's parts is 416
    InvalidPartNumber. None for an empty object: a 200 with no Content-Range (none can name
    a byte of it); an empty last part of a bigger object is refused for the same reason.
    """
    if range_header is not None:
        raise errors.InvalidRequest("Cannot specify both Range header and partNumber query "
                                    "parameter")
    number = parse_part_number(raw)
    sizes = tuple(part_sizes) or (size,)
    if size == 0 and number == 1:
        return None
    if number > len(sizes) or sizes[number - 1] == 0:
        raise errors.InvalidPartNumber()
    start = sum(sizes[: number - 1])
    return ByteRange(start, start + sizes[number - 1] - 1)


@dataclass(frozen=True)
class Layout:
    """How an object's bytes are cut into stripes of k blocks.

    Every stripe holds k * block bytes except the last, whose blocks are shorter (the
    remainder split in k, zero-padded): a 100 KiB object does not cost k full blocks.
    """

    size: int
    k: int
    block: int

    @property
    def stripe_bytes(self) -> int:
        return self.k * self.block

    @property
    def stripes(self) -> int:
        return -(-self.size // self.stripe_bytes) if self.size else 0

    def block_len(self, stripe: int) -> int:
        """Length of each of the k (and m) blocks of `stripe`."""
        if stripe < self.stripes - 1:
            return self.block
        rest = self.size - stripe * self.stripe_bytes
        return -(-rest // self.k)

    def data_len(self, stripe: int) -> int:
        """Object bytes held by `stripe` (the last one's padding excluded)."""
        return min(self.stripe_bytes, self.size - stripe * self.stripe_bytes)

    @property
    def fragment_bytes(self) -> int:
        if not self.stripes:
            return 0
        return (self.stripes - 1) * self.block + self.block_len(self.stripes - 1)

    def fragment_offset(self, stripe: int) -> int:
        return stripe * self.block

    def stripe_span(self, rng: ByteRange) -> tuple[int, int]:
        """First and last stripe that hold bytes of `rng`."""
        return rng.start // self.stripe_bytes, rng.end // self.stripe_bytes

    def data_pieces(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """Where object bytes start..end (inclusive) lie in the data fragments, in object
        order: (fragment index, offset in that fragment, length), each within one block.
        A fragment's pieces are contiguous in it (the blocks between the first and last
        stripe are whole), so each fragment is one read."""
        out = []
        pos = start
        while pos <= end:
            stripe = pos // self.stripe_bytes
            blen = self.block_len(stripe)
            index, in_block = divmod(pos - stripe * self.stripe_bytes, blen)
            take = min(blen - in_block, end + 1 - pos)
            out.append((index, self.fragment_offset(stripe) + in_block, take))
            pos += take
        return out
